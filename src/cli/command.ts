/**
 * What a command is: its help, options, arity and how it runs.
 *
 * @module
 */

import type { OptionKind } from "./args.ts";
import type { Context } from "./context.ts";

/** A command of the tool. */
export interface Command {
  /** `<command> ...` in the usage line. */
  readonly synopsis: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The command's help, after its usage line. */
  readonly help: string;
  /** Its own options. */
  readonly options: Readonly<Record<string, OptionKind>>;
  /** How many positionals: at least, at most. */
  readonly arity: readonly [number, number];
  /** Runs it; returns the exit code. */
  run(ctx: Context): Promise<number>;
}
