/**
 * Exit codes and the error that carries one, shared by every command.
 *
 * @module
 */

import {
  ConflictError,
  DuplicateKeyError,
  IntegrityError,
  LockedError,
  QuotaError,
  TooLargeError,
  WrongKeyError,
} from "../errors.ts";

/**
 * The exit codes of the command-line tool (after the BSD `sysexits.h`
 * where one fits), which scripts can rely on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExitCode } from "@tether/db/cli";
 * assert.equal(ExitCode.Usage, 64);
 * ```
 */
export const ExitCode = {
  /** The command succeeded. */
  Ok: 0,
  /** Not found (`get` or `delete` of an absent key), or the command failed as asked. */
  Failed: 1,
  /** `verify` found problems; `repair` lost something (listed). */
  Problems: 2,
  /** Usage error: unknown command or option, a bad argument, bad JSON. */
  Usage: 64,
  /** Data error: damaged data or backup (`IntegrityError`), a bad input line. */
  Data: 65,
  /** Cannot open: a missing or unreadable database or input file. */
  NoInput: 66,
  /** Any other (internal) error. */
  Internal: 70,
  /** The database file is locked by another writer (`LockedError`). */
  Locked: 75,
  /** The passphrase is wrong or missing (`WrongKeyError`). */
  WrongKey: 77,
} as const;

/** A failure with its exit code; its message is printed as is. */
export class CliError extends Error {
  /** The exit code. */
  readonly code: number;
  /**
   * @param code The exit code.
   * @param message The one-line message.
   */
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * A usage error (exit 64).
 *
 * @param message What is wrong.
 * @returns The error, to throw.
 */
export function usage(message: string): CliError {
  return new CliError(ExitCode.Usage, message);
}

/**
 * Runs `fn`, turning a `TypeError` or `RangeError` into a usage error.
 *
 * @param fn The call.
 * @returns What `fn` returns.
 */
export function asUsage<R>(fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) {
      throw usage(e.message);
    }
    throw e;
  }
}

/**
 * Awaits `fn`, turning a `TypeError` or `RangeError` into a usage error.
 *
 * @param fn The call.
 * @returns What it resolves to.
 */
export async function asUsageAsync<R>(fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) {
      throw usage(e.message);
    }
    throw e;
  }
}

/**
 * The exit code of an error thrown by a command.
 *
 * @param e The error.
 * @returns Its exit code.
 */
export function exitCode(e: unknown): number {
  if (e instanceof CliError) return e.code;
  if (e instanceof WrongKeyError) return ExitCode.WrongKey;
  if (e instanceof LockedError) return ExitCode.Locked;
  if (e instanceof IntegrityError) return ExitCode.Data;
  if (
    e instanceof Deno.errors.NotFound ||
    e instanceof Deno.errors.PermissionDenied ||
    e instanceof Deno.errors.NotCapable ||
    e instanceof Deno.errors.IsADirectory
  ) {
    return ExitCode.NoInput;
  }
  if (
    e instanceof TypeError || e instanceof RangeError ||
    e instanceof DuplicateKeyError || e instanceof ConflictError ||
    e instanceof QuotaError || e instanceof TooLargeError
  ) {
    return ExitCode.Failed;
  }
  return ExitCode.Internal;
}
