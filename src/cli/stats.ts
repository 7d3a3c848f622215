/**
 * `stats`: the database's counters and sizes.
 *
 * @module
 */

import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { ExitCode } from "./exit.ts";
import { READ, withDatabase } from "./open.ts";

/** `stats`. */
export const stats: Command = {
  synopsis: "stats [--json]",
  summary: "counters and sizes (items, bytes, storage figures)",
  help:
    `Prints the database's counters and sizes as stats() returns them: items,
items with a TTL, bytes, and the storage's own figures (file size, live
bytes, encryption, compression). Operation counters count this process's
operations only, so they are zero here: 'info' shows the contents.

Options:
  --json    the same as one JSON object`,
  options: { json: "flag" },
  arity: [0, 0],
  run,
};

/**
 * Flattens an object into `a.b  value` lines.
 *
 * @param value The object.
 * @param prefix The path so far.
 * @returns The pairs.
 */
function flatten(value: unknown, prefix = ""): [string, string][] {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) =>
      flatten(v, prefix === "" ? k : `${prefix}.${k}`)
    );
  }
  return [[prefix, JSON.stringify(value) ?? "undefined"]];
}

async function run(ctx: Context): Promise<number> {
  return await withDatabase(ctx, READ, async (db) => {
    const figures = db.stats();
    if (wantsJson(ctx)) {
      await ctx.out.json(figures, 2);
      return ExitCode.Ok;
    }
    const rows = flatten(figures);
    const width = Math.max(...rows.map(([k]) => k.length));
    await ctx.out.write(
      rows.map(([k, v]) => `${ctx.paint.bold(k.padEnd(width))}  ${v}\n`).join(
        "",
      ),
    );
    return ExitCode.Ok;
  });
}
