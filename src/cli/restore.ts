/**
 * `restore`: a backup, verified before anything changes.
 *
 * @module
 */

import { choice } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { CliError, ExitCode } from "./exit.ts";
import { fromInput, inputSize } from "./files.ts";
import { backupSecret, CREATE, withDatabase } from "./open.ts";
import { plural } from "./output.ts";
import { WrongKeyError } from "../errors.ts";

/** `restore`. */
export const restore: Command = {
  synopsis:
    "restore <file|-> [--mode replace|merge] [--backup-passphrase-env NAME] [--encrypt] [--json]",
  summary: "restore a backup, verified before anything changes",
  help: `Restores a backup from <file> or stdin (-). All of it is verified first
(format, checksum, MACs, every document): a damaged, truncated or foreign
backup changes nothing (exit 65). Creates the database if missing
(encrypted only with --encrypt).

Options:
  --mode replace                the database becomes the backup (default for
                                a full backup)
  --mode merge                  overwrite documents with the same keys only
                                (the only mode of an incremental backup: its
                                deletions delete)
  --backup-passphrase-env NAME  the backup's passphrase, when it is not the
                                database's
  --encrypt                     create the database encrypted
  --json                        the summary as one line of JSON`,
  options: { mode: "value", "backup-passphrase-env": "value", json: "flag" },
  arity: [1, 1],
  run,
};

async function run(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  const how = choice(ctx.parsed, "mode", ["replace", "merge"] as const);
  const encryption = backupSecret(ctx);
  if (file !== "-") await inputSize(file); // before creating the database
  return await withDatabase(ctx, CREATE, async (db) => {
    const result = await fromInput(
      ctx,
      file,
      "restoring",
      async (source) => {
        try {
          return await db.restore(source, {
            ...(how === undefined ? {} : { mode: how }),
            ...(encryption === undefined ? {} : { encryption }),
          });
        } catch (e) {
          if (e instanceof WrongKeyError && encryption === undefined) {
            throw new CliError(
              ExitCode.WrongKey,
              "Cannot restore: the backup is encrypted and the database's secret does not open it; give its passphrase with --backup-passphrase-env NAME",
            );
          }
          throw e;
        }
      },
    );
    if (wantsJson(ctx)) {
      await ctx.out.json({
        documents: result.documents,
        deleted: result.deleted,
        expired: result.expired,
      });
      return ExitCode.Ok;
    }
    await ctx.out.write(
      `restored ${plural(result.documents, "document")}${
        result.deleted > 0
          ? `, ${plural(result.deleted, "deletion")} applied`
          : ""
      }${
        result.expired > 0
          ? ` (${result.expired} expired since the backup, skipped)`
          : ""
      }\n`,
    );
    return ExitCode.Ok;
  });
}
