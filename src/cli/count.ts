/**
 * `count`: how many documents a collection (or each one) holds, or match a
 * filter.
 *
 * @module
 */

import { jsonObject } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { asUsageAsync, ExitCode } from "./exit.ts";
import { collectionOf, READ, withDatabase } from "./open.ts";
import { layout } from "./output.ts";

/** `count`. */
export const count: Command = {
  synopsis: "count [collection] [filter] [--json]",
  summary: "count documents: of a collection, matching a filter, or of each",
  help: `Prints how many documents <collection> holds, or how many match
[filter] (a Mongo-style query as JSON). Without a collection, the count of
every collection and the total.

Options:
  --json    { "count": n } for a collection; { "collections": { name: n },
            "total": n } without one`,
  options: { json: "flag" },
  arity: [0, 2],
  run,
};

async function run(ctx: Context): Promise<number> {
  const [name, filterText] = ctx.parsed.positionals as [string?, string?];
  const filter = filterText === undefined
    ? undefined
    : jsonObject(filterText, "the filter");
  return await withDatabase(ctx, READ, async (db) => {
    if (name !== undefined) {
      const collection = collectionOf(db, name);
      const n = await asUsageAsync(() => collection.count(filter));
      if (wantsJson(ctx)) await ctx.out.json({ count: n });
      else await ctx.out.write(`${n}\n`);
      return ExitCode.Ok;
    }
    const counts: Record<string, number> = {};
    let total = 0;
    for (const c of await db.collections()) {
      const n = await db.collection(c).count();
      counts[c] = n;
      total += n;
    }
    if (wantsJson(ctx)) {
      await ctx.out.json({ collections: counts, total });
    } else {
      await ctx.out.write(layout(
        ["collection", "documents"],
        [
          ...Object.entries(counts).map(([c, n]) => [c, String(n)]),
          ["(total)", String(total)],
        ],
        [false, true],
      ));
    }
    return ExitCode.Ok;
  });
}
