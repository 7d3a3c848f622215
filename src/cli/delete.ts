/**
 * `delete`: remove documents by key, or those matching a filter.
 *
 * @module
 */

import { jsonObject, option } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { asUsageAsync, ExitCode, usage } from "./exit.ts";
import { collectionOf, withDatabase, WRITE } from "./open.ts";
import { plural } from "./output.ts";

/** `delete`. */
export const deleteCommand: Command = {
  synopsis: "delete <collection> <key...> | --filter JSON [--json]",
  summary:
    "remove documents by key or filter (exit 1 when a key was not there)",
  help: `Removes the documents stored under each <key> in <collection>, or with
--filter every document matching a Mongo-style query (e.g. '{"age":{"$lt":18}}';
'{}' removes all). Exits with 1 when a key given was not there (the others
are still removed).

Options:
  --filter JSON   remove the documents matching it, instead of keys
  --json          one line: { "deleted": n, "missing": [keys not there] }`,
  options: { filter: "value", json: "flag" },
  arity: [1, Infinity],
  run,
};

async function run(ctx: Context): Promise<number> {
  const [name, ...keys] = ctx.parsed.positionals as [string, ...string[]];
  const filterText = option(ctx.parsed, "filter");
  if ((filterText === undefined) === (keys.length === 0)) {
    throw usage(
      keys.length === 0
        ? "give the keys to delete, or --filter JSON"
        : "give either keys or --filter, not both",
    );
  }
  const filter = filterText === undefined
    ? undefined
    : jsonObject(filterText, "--filter");
  return await withDatabase(ctx, WRITE, async (db) => {
    const collection = collectionOf(db, name);
    let deleted = 0;
    const missing: string[] = [];
    if (filter !== undefined) {
      deleted = await asUsageAsync(() => collection.deleteMany(filter));
    } else {
      for (const key of keys) {
        if (await asUsageAsync(() => collection.delete(key))) deleted++;
        else missing.push(key);
      }
    }
    if (wantsJson(ctx)) {
      await ctx.out.json({ deleted, missing });
    } else {
      await ctx.out.write(
        `deleted ${plural(deleted, "document")} from '${name}'\n`,
      );
      for (const key of missing) {
        await ctx.err.write(`tether: no document '${key}' in '${name}'\n`);
      }
    }
    return missing.length === 0 ? ExitCode.Ok : ExitCode.Failed;
  });
}
