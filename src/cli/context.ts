/**
 * What a command runs with: its arguments, the streams, the environment,
 * colour and the passphrase once known.
 *
 * @module
 */

import type { Parsed } from "./args.ts";
import type { Paint } from "./colour.ts";
import type { Out } from "./output.ts";

/**
 * Where {@linkcode main} reads and writes; every field defaults to the
 * process's own (`Deno.stdin`, `Deno.stdout`, `Deno.stderr`, `Deno.env`, and
 * whether they are terminals). A stream given here counts as not a terminal
 * unless its `...IsTerminal` flag says otherwise.
 */
export interface CliIO {
  /** Input of `import -`, `restore -` and `put` without a value. */
  readonly stdin?: ReadableStream<Uint8Array>;
  /** Results. */
  readonly stdout?: WritableStream<Uint8Array>;
  /** Errors (`tether: <message>`), notes, progress and prompts. */
  readonly stderr?: WritableStream<Uint8Array>;
  /** Whether to ask for a missing passphrase (with {@linkcode CliIO.prompt}). */
  readonly stdinIsTerminal?: boolean;
  /** Whether stdout is a terminal (colour in its tables). */
  readonly stdoutIsTerminal?: boolean;
  /** Whether to show progress (and colour) on stderr. */
  readonly stderrIsTerminal?: boolean;
  /** The terminal's width, to fit `find`'s table (none: not a terminal). */
  readonly columns?: number;
  /** Reads an environment variable. */
  readonly env?: (name: string) => string | undefined;
  /**
   * Asks for a passphrase without echoing it; `null` when none was given.
   * The default reads the terminal in raw mode.
   */
  readonly prompt?: (message: string) => Promise<string | null>;
  /** Ends `follow` (default: never; Ctrl-C ends the process). */
  readonly signal?: AbortSignal;
}

/** What a command runs with. */
export interface Context {
  /** Its arguments. */
  readonly parsed: Parsed;
  /** Standard input (opened on first use). */
  readonly stdin: () => ReadableStream<Uint8Array>;
  /** Results. */
  readonly out: Out;
  /** Errors, notes and progress. */
  readonly err: Out;
  /** Whether a passphrase may be asked. */
  readonly stdinIsTerminal: boolean;
  /** Whether progress is drawn on stderr. */
  readonly stderrIsTerminal: boolean;
  /** The terminal's width, when stdout is one. */
  readonly columns: number | undefined;
  /** Reads an environment variable. */
  readonly env: (name: string) => string | undefined;
  /** Asks for a passphrase. */
  readonly prompt: (message: string) => Promise<string | null>;
  /** Colour for stdout (off unless a terminal without NO_COLOR). */
  readonly paint: Paint;
  /** Colour for stderr. */
  readonly paintErr: Paint;
  /** Ends a live command (`follow`). */
  readonly signal: AbortSignal | undefined;
  /** The passphrase that opened the database, once one did. */
  readonly secret: { passphrase?: string | undefined };
}

/**
 * Whether `--json` was given.
 *
 * @param ctx The command's context.
 * @returns True for JSON output.
 */
export function wantsJson(ctx: Context): boolean {
  return ctx.parsed.options.get("json") === true;
}
