/**
 * `get`: one document as JSON.
 *
 * @module
 */

import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { ExitCode, usage } from "./exit.ts";
import { collectionOf, READ, withDatabase } from "./open.ts";

/** `get`. */
export const get: Command = {
  synopsis: "get <collection> <key> [--json]",
  summary: "print a document as JSON (exit 1 when absent)",
  help: `Prints the document stored under <key> in <collection> as JSON. Items
put on the database itself are in the collection 'default'. Exits with 1
when there is no such document (or it has expired).

Options:
  --json    one line: { "key", "value", "tags", "createdAt", "updatedAt",
            "version", "expiresAt" } (null when absent, with exit 1)`,
  options: { json: "flag" },
  arity: [2, 2],
  run,
};

async function run(ctx: Context): Promise<number> {
  const [name, key] = ctx.parsed.positionals as [string, string];
  return await withDatabase(ctx, READ, async (db) => {
    const collection = collectionOf(db, name);
    const entry = await collection.getEntry(key).catch((e) => {
      if (e instanceof TypeError || e instanceof RangeError) {
        throw usage(e.message);
      }
      throw e;
    });
    if (wantsJson(ctx)) {
      await ctx.out.json(
        entry === null ? null : {
          key: entry.key,
          value: entry.value,
          tags: entry.tags,
          createdAt: entry.createdAt,
          updatedAt: entry.updatedAt,
          version: entry.version,
          expiresAt: entry.expiresAt ?? null,
        },
      );
    }
    if (entry === null) {
      await ctx.err.write(`tether: no document '${key}' in '${name}'\n`);
      return ExitCode.Failed;
    }
    if (!wantsJson(ctx)) await ctx.out.json(entry.value, 2);
    return ExitCode.Ok;
  });
}
