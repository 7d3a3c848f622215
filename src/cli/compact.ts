/**
 * `compact`: drop expired items and rewrite the file log.
 *
 * @module
 */

import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { ExitCode } from "./exit.ts";
import { withDatabase, WRITE } from "./open.ts";
import { formatBytes } from "./output.ts";
import { withProgress } from "./progress.ts";

/** `compact`. */
export const compact: Command = {
  synopsis: "compact [--json]",
  summary: "drop expired items and rewrite the file log",
  help:
    `Removes expired items, then rewrites a file database's log with only its
live data (Deno KV has nothing to rewrite).

Options:
  --json    one line: { "rewrote": bool, "bytesBefore", "bytesAfter" }`,
  options: { json: "flag" },
  arity: [0, 0],
  run,
};

async function run(ctx: Context): Promise<number> {
  return await withDatabase(ctx, WRITE, async (db, where) => {
    const size = () => db.stats().storageStats?.fileBytes;
    const before = size();
    const rewrote = await withProgress(
      ctx,
      "compacting",
      "bytes",
      (onProgress) => db.compact({ onProgress }),
    );
    const after = size();
    if (wantsJson(ctx)) {
      await ctx.out.json({
        rewrote,
        ...(typeof before === "number" ? { bytesBefore: before } : {}),
        ...(typeof after === "number" ? { bytesAfter: after } : {}),
      });
      return ExitCode.Ok;
    }
    await ctx.out.write(
      rewrote && typeof before === "number" && typeof after === "number"
        ? `compacted ${where.location}: ${formatBytes(before)} -> ${
          formatBytes(after)
        }\n`
        : `nothing to compact in ${where.location} (expired items removed)\n`,
    );
    return ExitCode.Ok;
  });
}
