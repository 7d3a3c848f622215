/**
 * `repair`: copy every intact record of a damaged database into a new one.
 *
 * @module
 */

import type { RepairReport } from "../../mod.ts";
import { option } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { lostLines, repairWith } from "./damage.ts";
import { ExitCode, usage } from "./exit.ts";
import { exists, mustExist, target } from "./open.ts";
import { formatBytes, plural } from "./output.ts";
import { withProgress } from "./progress.ts";

/** `repair`. */
export const repairCommand: Command = {
  synopsis: "repair --out <new> [--json]",
  summary: "copy every intact record of a damaged database into a new one",
  help: `Reads a damaged file database (without its lock, never changing it) and
copies every record that still checks out, with its metadata, into a new
database at <new> (same passphrase; written beside and renamed into place
once complete). Index definitions are carried over and rebuilt. Lists
each lost document (collection and key), index and damaged byte range.
Exits with 0 when nothing was lost, 2 when something was.

Options:
  --out <new>   the new database's path (must not exist)
  --json        the report as JSON: { "copied": n, "lost": [...], ... }`,
  options: { out: "value", json: "flag" },
  arity: [0, 0],
  run,
};

async function run(ctx: Context): Promise<number> {
  const where = target(ctx.parsed);
  if (where.kind !== "file") {
    throw usage("repair reads a file database: give --db <path>");
  }
  const out = option(ctx.parsed, "out");
  if (out === undefined || out === "") {
    throw usage("give the new database's path: --out <path>");
  }
  await mustExist(where);
  if (await exists(out)) {
    throw usage(`--out '${out}' already exists; give the path of a new file`);
  }
  const report: RepairReport = await withProgress(
    ctx,
    "repairing",
    "items",
    (onProgress) => repairWith(ctx, where, out, onProgress),
  );
  if (wantsJson(ctx)) {
    await ctx.out.json(report);
  } else {
    let text = `repaired ${where.location} into ${out}: copied ${
      plural(report.copied, "document")
    } and ${plural(report.indexes, "index definition")}${
      report.expired > 0 ? ` (${report.expired} expired, left out)` : ""
    }\n`;
    if (report.tornBytes > 0) {
      text += `left out ${
        formatBytes(report.tornBytes)
      } of an unfinished last commit (a write cut short, never acknowledged)\n`;
    }
    text += report.lost.length === 0
      ? "nothing lost\n"
      : `lost ${report.lost.length}:\n${lostLines(report)}`;
    await ctx.out.write(text);
  }
  return report.lost.length === 0 ? ExitCode.Ok : ExitCode.Problems;
}
