/**
 * Parsing arguments: positionals and `--options`, and reading option values
 * as numbers, JSON, times and lists.
 *
 * @module
 */

import { usage } from "./exit.ts";

/** A flag (`--json`) or an option with a value (`--db path`). */
export type OptionKind = "flag" | "value";

/** Options every command takes. */
export const COMMON: Readonly<Record<string, OptionKind>> = {
  db: "value",
  kv: "value",
  prefix: "value",
  "passphrase-env": "value",
  "lock-timeout": "value",
  encrypt: "flag",
  help: "flag",
};

/** Arguments split into positionals and options. */
export interface Parsed {
  /** The arguments that are not options. */
  readonly positionals: string[];
  /** Each option given: its value, or `true` for a flag. */
  readonly options: Map<string, string | true>;
}

/**
 * Splits arguments into positionals and known options.
 *
 * @param args The arguments (without the command).
 * @param known The options allowed.
 * @param command For error messages.
 * @returns The split.
 * @throws {CliError} A usage error on an unknown option or a missing value.
 */
export function parse(
  args: readonly string[],
  known: Readonly<Record<string, OptionKind>>,
  command: string,
): Parsed {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      options.set("help", true);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) {
      throw usage(`unknown option '${arg}'${where(command)}`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = Object.hasOwn(known, name) ? known[name] : undefined;
    if (kind === undefined) {
      throw usage(`unknown option '--${name}'${where(command)}`);
    }
    if (kind === "flag") {
      if (eq >= 0) throw usage(`option '--${name}' takes no value`);
      options.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else value = args[++i];
    if (value === undefined) {
      throw usage(`option '--${name}' needs a value`);
    }
    options.set(name, value);
  }
  return { positionals, options };
}

function where(command: string): string {
  return command === ""
    ? " (see --help)"
    : ` for '${command}' (see '${command} --help')`;
}

/**
 * An option's value.
 *
 * @param parsed The arguments.
 * @param name The option.
 * @returns Its value, or `undefined` when not given.
 */
export function option(parsed: Parsed, name: string): string | undefined {
  const value = parsed.options.get(name);
  return typeof value === "string" ? value : undefined;
}

/**
 * Whether a flag was given.
 *
 * @param parsed The arguments.
 * @param name The flag.
 * @returns True when given.
 */
export function flag(parsed: Parsed, name: string): boolean {
  return parsed.options.get(name) === true;
}

/**
 * An option's value as a whole number.
 *
 * @param parsed The arguments.
 * @param name The option.
 * @returns The number, or `undefined` when not given.
 * @throws {CliError} A usage error when it is not a whole number.
 */
export function whole(parsed: Parsed, name: string): number | undefined {
  const text = option(parsed, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw usage(`--${name} must be a whole number, got '${text}'`);
  }
  return n;
}

/**
 * Parses JSON that must be an object.
 *
 * @param text The JSON.
 * @param what For error messages.
 * @returns The object.
 * @throws {CliError} A usage error when it is not a JSON object.
 */
export function jsonObject(
  text: string,
  what: string,
): Record<string, unknown> {
  const value = jsonValue(text, what);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw usage(`${what} must be a JSON object, got ${text}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Parses JSON.
 *
 * @param text The JSON.
 * @param what For error messages.
 * @returns The value.
 * @throws {CliError} A usage error when it is not JSON.
 */
export function jsonValue(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw usage(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Epoch ms from digits or an ISO date and time.
 *
 * @param text The option's value.
 * @param what For error messages.
 * @returns Epoch ms, or `undefined` when not given.
 */
export function time(
  text: string | undefined,
  what: string,
): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms)) {
    throw usage(
      `${what} must be epoch milliseconds or an ISO date, got '${text}'`,
    );
  }
  return ms;
}

/**
 * A comma-separated list.
 *
 * @param text The option's value.
 * @returns The parts, trimmed, empty ones left out.
 */
export function list(text: string | undefined): string[] | undefined {
  return text?.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * An option that must be one of some words.
 *
 * @param parsed The arguments.
 * @param name The option.
 * @param allowed The words.
 * @returns The word, or `undefined` when not given.
 */
export function choice<T extends string>(
  parsed: Parsed,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const value = option(parsed, name);
  if (value === undefined || (allowed as readonly string[]).includes(value)) {
    return value as T | undefined;
  }
  throw usage(
    `--${name} must be ${
      allowed.map((a) => `'${a}'`).join(", ").replace(/, ([^,]*)$/, " or $1")
    }, got '${value}'`,
  );
}
