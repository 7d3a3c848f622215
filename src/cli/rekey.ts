/**
 * `rekey`: re-encrypt an encrypted database under a new passphrase.
 *
 * @module
 */

import { option, whole } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { asUsageAsync, CliError, ExitCode, usage } from "./exit.ts";
import { withDatabase, WRITE } from "./open.ts";
import { plural } from "./output.ts";
import { askNew } from "./passphrase.ts";
import { withProgress } from "./progress.ts";

/** `rekey`. */
export const rekey: Command = {
  synopsis: "rekey [--new-passphrase-env NAME] [--iterations N] [--json]",
  summary: "re-encrypt an encrypted database under a new passphrase",
  help: `Re-encrypts every stored value of an encrypted database under a new
passphrase (the current one as for every command: TETHER_PASSPHRASE, or
--passphrase-env, or asked). The new one comes from the environment
variable --new-passphrase-env names, else it is asked twice on a terminal.
A plain database is refused (exit 1): to encrypt one, export it and import
into a new database with --encrypt.

Options:
  --new-passphrase-env NAME  the environment variable with the new passphrase
  --iterations N             PBKDF2 iterations of the new passphrase
  --json                     one line: { "reencrypted": n }`,
  options: {
    "new-passphrase-env": "value",
    iterations: "value",
    json: "flag",
  },
  arity: [0, 0],
  run,
};

async function run(ctx: Context): Promise<number> {
  const variable = option(ctx.parsed, "new-passphrase-env");
  const iterations = whole(ctx.parsed, "iterations");
  let next: string | undefined;
  if (variable !== undefined) {
    next = ctx.env(variable) || undefined;
    if (next === undefined) {
      throw usage(`--new-passphrase-env: ${variable} is not set`);
    }
  }
  return await withDatabase(ctx, WRITE, async (db, where) => {
    if (db.stats().storageStats?.encrypted !== true) {
      throw new CliError(
        ExitCode.Failed,
        `Cannot rekey '${where.location}': it is not encrypted (export it and import into a new database with --encrypt)`,
      );
    }
    if (next === undefined) {
      if (!ctx.stdinIsTerminal) {
        throw usage(
          "give the new passphrase: --new-passphrase-env NAME (or run on a terminal to be asked)",
        );
      }
      next = await askNew(ctx.prompt, `'${where.location}'`);
    }
    const secret = {
      passphrase: next,
      ...(iterations === undefined ? {} : { iterations }),
    };
    const n = await withProgress(
      ctx,
      "rekeying",
      "items",
      (onProgress) => asUsageAsync(() => db.rekey(secret, { onProgress })),
    );
    ctx.secret.passphrase = next;
    if (wantsJson(ctx)) await ctx.out.json({ reencrypted: n });
    else {
      await ctx.out.write(
        `rekeyed '${where.location}': ${
          plural(n, "stored value")
        } re-encrypted\n`,
      );
    }
    return ExitCode.Ok;
  });
}
