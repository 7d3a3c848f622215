/**
 * The command-line tool of `@tether/db`: look into a database file or a
 * Deno KV database, read, write and count documents, manage indexes, import
 * and export NDJSON, JSON and CSV, follow changes live, take and restore
 * backups, verify, compact, repair and rekey, from a shell.
 *
 * ```sh
 * deno run -A --unstable-kv jsr:@tether/db/cli info --db data/app.tdb
 * deno run -A --unstable-kv jsr:@tether/db/cli find users '{"age":{"$gt":25}}' --db data/app.tdb
 * deno run -A --unstable-kv jsr:@tether/db/cli import users.csv --db data/app.tdb
 * deno run -A --unstable-kv jsr:@tether/db/cli backup app.tbk --db data/app.tdb
 * ```
 *
 * The database is `--db <path>` (a file database) or
 * `--kv <path|:memory:|url>` (Deno KV, with `--prefix a,b`). An encrypted
 * database's passphrase comes from the environment variable
 * `TETHER_PASSPHRASE` (or the one `--passphrase-env NAME` names); without
 * it, a terminal is asked, without echo. A new database is encrypted only
 * with `--encrypt`; a plain one opens even with a passphrase set (with a
 * note on stderr). Every command takes `--json`. `help` lists the commands
 * and the exit codes; `<command> --help` gives a command's options.
 *
 * Programs and tests can run it in-process with {@linkcode main}, which
 * returns the exit code instead of exiting.
 *
 * @module
 */

import { COMMON, parse, type Parsed } from "./src/cli/args.ts";
import { paint, useColour } from "./src/cli/colour.ts";
import { COMMANDS } from "./src/cli/commands.ts";
import type { CliIO, Context } from "./src/cli/context.ts";
import { ExitCode, exitCode, usage } from "./src/cli/exit.ts";
import { commandHelp, mainHelp, RUN } from "./src/cli/help.ts";
import { oneLine, Out } from "./src/cli/output.ts";
import { promptTerminal } from "./src/cli/passphrase.ts";

export { ExitCode } from "./src/cli/exit.ts";
export type { CliIO } from "./src/cli/context.ts";

/**
 * Where the command is among the arguments: the first one that is neither
 * an option nor the value of one of the options every command takes (which
 * may come before it).
 */
function commandIndex(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return i + 1 < args.length ? i + 1 : -1;
    if (!arg.startsWith("-") || arg === "-") return i;
    const name = arg.slice(2);
    if (arg.startsWith("--") && COMMON[name] === "value") i++;
  }
  return -1;
}

/** An environment variable; unset when the permission to read it is not given. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) return undefined;
    throw e;
  }
}

function isTerminal(
  given: unknown,
  flag: boolean | undefined,
  real: { isTerminal(): boolean },
): boolean {
  if (flag !== undefined) return flag;
  if (given !== undefined) return false;
  try {
    return real.isTerminal();
  } catch {
    return false;
  }
}

/**
 * Runs the command-line tool on `args` (without the program name) and
 * returns its exit code (see {@linkcode ExitCode}); it never exits the
 * process itself. Errors are printed to stderr as one line,
 * `tether: <message>`.
 *
 * @param args The arguments, e.g. `["info", "--db", "app.tdb", "--json"]`.
 * @param io Where to read and write instead of the process's own streams.
 * @returns The exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "@tether/db/cli";
 * let text = "";
 * const stdout = new WritableStream<Uint8Array>({
 *   write: (chunk) => void (text += new TextDecoder().decode(chunk)),
 * });
 * assert.equal(await main(["--help"], { stdout }), 0);
 * assert.match(text, /backup/);
 * ```
 */
export async function main(
  args: readonly string[],
  io: CliIO = {},
): Promise<number> {
  const stdout = new Out(io.stdout ?? Deno.stdout.writable);
  const err = new Out(io.stderr ?? Deno.stderr.writable);
  let columns = io.columns;
  if (columns === undefined && io.stdout === undefined) {
    try {
      if (Deno.stdout.isTerminal()) columns = Deno.consoleSize().columns;
    } catch {
      // Not a terminal after all.
    }
  }
  const env = io.env ?? readEnv;
  const stdinIsTerminal = isTerminal(io.stdin, io.stdinIsTerminal, Deno.stdin);
  const stdoutIsTerminal = isTerminal(
    io.stdout,
    io.stdoutIsTerminal,
    Deno.stdout,
  );
  const stderrIsTerminal = isTerminal(
    io.stderr,
    io.stderrIsTerminal,
    Deno.stderr,
  );
  const ctx = (parsed: Parsed): Context => ({
    parsed,
    stdin: () => io.stdin ?? Deno.stdin.readable,
    out: stdout,
    err,
    stdinIsTerminal,
    stderrIsTerminal,
    columns,
    env,
    prompt: io.prompt ??
      (io.stdin === undefined ? promptTerminal : () => Promise.resolve(null)),
    paint: paint(useColour(stdoutIsTerminal, env)),
    paintErr: paint(useColour(stderrIsTerminal, env)),
    signal: io.signal,
    secret: {},
  });
  try {
    const at = commandIndex(args);
    const name = at < 0 ? undefined : args[at]!;
    if (name === undefined) {
      const parsed = parse(args, COMMON, "");
      if (parsed.options.has("help")) {
        await stdout.write(mainHelp(COMMANDS));
        return ExitCode.Ok;
      }
      throw usage(
        `give a command: ${Object.keys(COMMANDS).join(", ")} (see --help)`,
      );
    }
    if (name === "help") {
      const topic = args.slice(at + 1).find((a) => !a.startsWith("-"));
      if (topic === undefined) {
        await stdout.write(mainHelp(COMMANDS));
        return ExitCode.Ok;
      }
      const command = Object.hasOwn(COMMANDS, topic)
        ? COMMANDS[topic]
        : undefined;
      if (command === undefined) {
        throw usage(`unknown command '${topic}' (see --help)`);
      }
      await stdout.write(commandHelp(command));
      return ExitCode.Ok;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (command === undefined) {
      throw usage(`unknown command '${name}' (see --help)`);
    }
    const rest = [...args.slice(0, at), ...args.slice(at + 1)];
    const parsed = parse(rest, { ...COMMON, ...command.options }, name);
    if (parsed.options.has("help")) {
      await stdout.write(commandHelp(command));
      return ExitCode.Ok;
    }
    const [min, max] = command.arity;
    const n = parsed.positionals.length;
    if (n < min || n > max) {
      throw usage(
        `${
          n < min ? "missing arguments" : "too many arguments"
        }: ${RUN} ${command.synopsis}`,
      );
    }
    return await command.run(ctx(parsed));
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) {
      // stdout was closed (e.g. piped into head): nothing more to say.
      return ExitCode.Ok;
    }
    const message = e instanceof Error ? e.message : String(e);
    await err.write(`tether: ${oneLine(message)}\n`).catch(() => {});
    return exitCode(e);
  } finally {
    await stdout.flush().catch(() => {});
    await err.flush().catch(() => {});
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
