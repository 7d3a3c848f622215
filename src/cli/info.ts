/**
 * `info`: storage, collections, counts, indexes, sizes, encryption.
 *
 * @module
 */

import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { ExitCode } from "./exit.ts";
import { READ, withDatabase } from "./open.ts";
import { formatBytes, layout, plural } from "./output.ts";

/** `info`. */
export const info: Command = {
  synopsis: "info [--json]",
  summary: "storage, collections, counts, indexes, sizes, encryption",
  help: `Shows the storage, whether values are encrypted and compressed, each
collection with its document count and indexes, and the database's sizes:
for a file database the log's size, its live data and the garbage ratio
(what compaction would drop). On Deno KV, sizes are not shown: stats()
covers only what this process wrote.

Options:
  --json    the same as one JSON object`,
  options: { json: "flag" },
  arity: [0, 0],
  run,
};

async function run(ctx: Context): Promise<number> {
  return await withDatabase(ctx, READ, async (db, where) => {
    const stats = db.stats();
    const storageStats = stats.storageStats ?? {};
    const encrypted = storageStats.encrypted === true;
    const compression = typeof storageStats.compression === "number"
      ? { minBytes: storageStats.compression }
      : false;
    const collections = [];
    let documents = 0;
    for (const name of await db.collections()) {
      const collection = db.collection(name);
      const n = await collection.count();
      documents += n;
      collections.push({
        name,
        count: n,
        indexes: await collection.indexes(),
      });
    }
    const fileBytes = storageStats.fileBytes;
    const liveBytes = storageStats.liveBytes;
    const tornBytes = storageStats.tornBytes;
    const garbageRatio =
      typeof fileBytes === "number" && typeof liveBytes === "number" &&
        fileBytes > 0
        ? Math.max(0, (fileBytes - liveBytes) / fileBytes)
        : undefined;
    if (wantsJson(ctx)) {
      await ctx.out.json({
        storage: where.kind,
        ...(where.kind === "file"
          ? { path: where.location }
          : { kv: where.location, prefix: where.prefix ?? ["tether"] }),
        encrypted,
        compression,
        documents,
        collections,
        stats: {
          storage: stats.storage,
          items: stats.items,
          ttlItems: stats.ttlItems,
          bytes: stats.bytes,
          storageStats,
        },
        ...(garbageRatio === undefined ? {} : { garbageRatio }),
        ...(typeof tornBytes === "number" ? { tornBytes } : {}),
      }, 2);
      return ExitCode.Ok;
    }
    const rows: [string, string][] = [
      [
        "storage",
        where.kind === "file"
          ? `file ${where.location}`
          : `Deno KV ${where.location}, prefix ${
            (where.prefix ?? ["tether"]).join(",")
          }`,
      ],
      ["encrypted", encrypted ? "yes" : "no"],
      [
        "compressed",
        compression === false
          ? "no"
          : `yes (values of ${compression.minBytes} bytes or more)`,
      ],
      [
        "documents",
        `${documents} in ${plural(collections.length, "collection")}${
          where.kind === "file" ? `, ${stats.ttlItems} with a TTL` : ""
        }`,
      ],
    ];
    if (where.kind === "file") {
      rows.push(["data", `${formatBytes(stats.bytes)} (keys and records)`]);
    }
    if (typeof tornBytes === "number" && tornBytes > 0) {
      rows.push([
        "torn tail",
        `${
          formatBytes(tornBytes)
        } of an unfinished last commit (a write cut short, never acknowledged) left out`,
      ]);
    }
    if (typeof fileBytes === "number" && typeof liveBytes === "number") {
      rows.push([
        "file",
        `${formatBytes(fileBytes)}, ${formatBytes(liveBytes)} live, garbage ${
          Math.round((garbageRatio ?? 0) * 100)
        }%`,
      ]);
    }
    let text = rows.map(([k, v]) => `${ctx.paint.bold(k.padEnd(11))} ${v}\n`)
      .join("");
    if (collections.length > 0) {
      text += "\n" + layout(
        ["collection", "documents", "indexes"],
        collections.map((c) => [
          c.name,
          String(c.count),
          c.indexes.length === 0 ? "-" : c.indexes.map((i) =>
            `${i.name} (${
              [
                i.fields.join(", "),
                ...(i.unique ? ["unique"] : []),
                ...(i.sparse ? ["sparse"] : []),
                ...(i.multikey ? ["multikey"] : []),
              ].join("; ")
            })`
          ).join(", "),
        ]),
        [false, true, false],
      );
    }
    await ctx.out.write(text);
    return ExitCode.Ok;
  });
}
