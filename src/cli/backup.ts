/**
 * `backup`: a compressed, checksummed (encrypted) point-in-time backup.
 *
 * @module
 */

import { option, time } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { ExitCode } from "./exit.ts";
import { report, toOutput } from "./files.ts";
import { backupSecret, collectionsOption, READ, withDatabase } from "./open.ts";
import { formatBytes, plural } from "./output.ts";

/** `backup`. */
export const backup: Command = {
  synopsis:
    "backup <file|-> [--since TIME] [--collections a,b] [--backup-passphrase-env NAME] [--json]",
  summary: "write a compressed, checksummed (encrypted) backup",
  help:
    `Writes a point-in-time backup of every live document: compressed, with a
SHA-256 checksum, encrypted when the database is (under its own secret) or
under a passphrase of its own. <file> is written beside and renamed into
place once complete; - writes to stdout.

Options:
  --since TIME                  incremental: only the documents written and
                                deleted since TIME (epoch ms or an ISO date,
                                e.g. 2026-01-31T12:00:00Z); refused when
                                older than the last purge of tombstones
                                (tombstoneRetention, default 7 days)
  --collections a,b             only these collections
  --backup-passphrase-env NAME  encrypt the backup under the passphrase in the
                                environment variable NAME
  --json                        the summary as one line of JSON (on stderr
                                when the backup goes to stdout)`,
  options: {
    since: "value",
    collections: "value",
    "backup-passphrase-env": "value",
    json: "flag",
  },
  arity: [1, 1],
  run,
};

async function run(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  const encryption = backupSecret(ctx);
  const since = time(option(ctx.parsed, "since"), "--since");
  return await withDatabase(ctx, READ, async (db) => {
    const collections = collectionsOption(db, ctx.parsed);
    // A full backup copies every live document: the total is known.
    let total: number | undefined;
    if (since === undefined) {
      total = 0;
      for (const c of collections ?? await db.collections()) {
        total += await db.collection(c).count();
      }
    }
    let done = 0;
    const result = await toOutput(
      ctx,
      file,
      "backing up",
      (stream) =>
        db.backup(stream, {
          ...(since === undefined ? {} : { since }),
          ...(collections === undefined ? {} : { collections }),
          ...(encryption === undefined ? {} : { encryption }),
          onProgress: (n) => done = n,
        }),
      { progress: () => ({ done, total }), unit: "items" },
    );
    const encrypted = encryption !== undefined ||
      db.stats().storageStats?.encrypted === true;
    if (wantsJson(ctx)) {
      await report(ctx, file).json({
        documents: result.documents,
        deleted: result.deleted,
        bytes: result.bytes,
        encrypted,
        incremental: since !== undefined,
        ...(file === "-" ? {} : { file }),
      });
      return ExitCode.Ok;
    }
    const what = since === undefined
      ? plural(result.documents, "document")
      : `${plural(result.documents + result.deleted, "change")} since ${
        new Date(since).toISOString()
      }`;
    await report(ctx, file).write(
      `backed up ${what} (${formatBytes(result.bytes)}${
        encrypted ? ", encrypted" : ""
      })${file === "-" ? "" : ` to ${file}`}\n`,
    );
    return ExitCode.Ok;
  });
}
