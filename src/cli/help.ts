/**
 * The help texts: the command list, and each command's.
 *
 * @module
 */

import type { Command } from "./command.ts";

/** How the tool is run, for usage lines. */
export const RUN = "deno run -A --unstable-kv jsr:@tether/db/cli";

/** The exit codes, as help lists them. */
export const EXIT_CODES = `Exit codes:
  0   success
  1   not found (get, delete or indexes drop of something absent), or the
      command failed as asked (a duplicate key, a plain database to rekey)
  2   verify found problems; repair lost something (listed)
  64  usage error: unknown command or option, bad argument, bad JSON
  65  data error: damaged database or backup, a bad input record
  66  cannot open: missing or unreadable database or input file
  70  internal error
  75  the database file is locked by another writer
  77  wrong or missing passphrase`;

const DATABASE_OPTIONS = `Database options (every command):
  --db <path>               a file database
  --kv <path|:memory:|url>  a Deno KV database (a SQLite file, or a KV Connect
                            URL with DENO_KV_ACCESS_TOKEN set)
  --prefix a,b              with --kv: the key prefix (default: tether)
  --passphrase-env NAME     the environment variable holding the passphrase of
                            an encrypted database (default: TETHER_PASSPHRASE);
                            when it is unset, a terminal is asked. A plain
                            database opens without it (with a note)
  --encrypt                 import, restore, put: create the database
                            encrypted (never without this flag)
  --lock-timeout MS         file: how long to wait for another writer's lock
                            (default 5000; info, stats, get, find, count,
                            export, follow, backup, verify and repair read
                            without taking it)
  -h, --help                help`;

const ENVIRONMENT = `Environment:
  TETHER_PASSPHRASE  the passphrase of an encrypted database (see above)
  NO_COLOR           no colour, even on a terminal
  TMPDIR             where 'import -' stages stdin (Deno KV databases)`;

/**
 * The tool's help.
 *
 * @param commands The commands.
 * @returns The text.
 */
export function mainHelp(commands: Readonly<Record<string, Command>>): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, c]) =>
    `  ${name.padEnd(width)}  ${c.summary}`
  );
  return `tether: the command-line tool of @tether/db

Usage: ${RUN} <command> [options]

Commands:
${lines.join("\n")}
  ${"help".padEnd(width)}  this text, or 'help <command>'

${DATABASE_OPTIONS}

${ENVIRONMENT}

${EXIT_CODES}

Errors are one line on stderr: 'tether: <message>'. Progress (percentage,
rate and ETA when the total is known) is shown on stderr only when it is a
terminal, colour only on a terminal without NO_COLOR. Every command takes
--json. Run '<command> --help' for a command's options.
`;
}

/**
 * A command's help.
 *
 * @param command The command.
 * @returns The text.
 */
export function commandHelp(command: Command): string {
  return `Usage: ${RUN} ${command.synopsis} [database options]

${command.help}

${DATABASE_OPTIONS}

${EXIT_CODES}
`;
}
