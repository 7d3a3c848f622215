/**
 * `verify`: check every stored value; a database too damaged to open gets
 * the report of what `repair` would lose.
 *
 * @module
 */

import { IntegrityError, type RepairReport } from "../../mod.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { lostLines, repairWith } from "./damage.ts";
import { CliError, ExitCode } from "./exit.ts";
import { READ, type Target, target, withDatabase } from "./open.ts";
import { formatBytes, layout, oneLine, plural } from "./output.ts";
import { withProgress } from "./progress.ts";

/** `verify`. */
export const verify: Command = {
  synopsis: "verify [--json]",
  summary: "check every stored value (exit 2 on problems)",
  help: `Reads everything stored and reports each value failing its MAC or
checksum, each record that does not decode and each index entry without
its document. Exits with 0 when all is well, 2 when there are problems.
A file database too damaged to open exits with 65, after the report of
what 'repair' would lose (its "error" says why it does not open).

Options:
  --json    the report as JSON: { "checked": n, "problems": [...] }`,
  options: { json: "flag" },
  arity: [0, 0],
  run,
};

async function run(ctx: Context): Promise<number> {
  try {
    return await verifyOpen(ctx);
  } catch (e) {
    const where = target(ctx.parsed);
    if (!(e instanceof IntegrityError) || where.kind !== "file") throw e;
    return await verifyDamaged(ctx, where, e);
  }
}

/**
 * `verify` of a file database that does not open: the report of what a
 * repair would lose, then exit 65.
 */
async function verifyDamaged(
  ctx: Context,
  where: Target,
  error: IntegrityError,
): Promise<number> {
  let report: RepairReport | undefined;
  try {
    report = await withProgress(
      ctx,
      "verifying",
      "items",
      (onProgress) => repairWith(ctx, where, undefined, onProgress),
    );
  } catch (e) {
    if (!(e instanceof IntegrityError)) throw e;
  }
  const problems = (report?.lost ?? []).map((l) => ({
    collection: l.collection ?? "",
    key: l.key ?? "",
    problem: l.reason,
    ...(l.index === undefined ? {} : { index: l.index }),
    ...(l.offset === undefined ? {} : { offset: l.offset, bytes: l.bytes }),
  }));
  if (wantsJson(ctx)) {
    await ctx.out.json({
      checked: report?.checked ?? 0,
      problems,
      opens: false,
      error: error.message,
      ...(report === undefined ? {} : {
        damagedRanges: report.damagedRanges,
        tornBytes: report.tornBytes,
      }),
    });
  } else {
    let text = `cannot open: ${oneLine(error.message)}\n`;
    if (report !== undefined) {
      text +=
        `checked ${plural(report.checked, "stored value")}: ${
          plural(problems.length, "problem")
        }\n` + lostLines(report) +
        `to copy what is intact into a new database: repair --db ${where.location} --out <new>\n`;
    }
    await ctx.out.write(text);
  }
  throw new CliError(ExitCode.Data, error.message);
}

async function verifyOpen(ctx: Context): Promise<number> {
  return await withDatabase(ctx, READ, async (db) => {
    const result = await withProgress(
      ctx,
      "verifying",
      "items",
      (onProgress) => db.verify({ onProgress }),
    );
    const { checked, problems } = result;
    const torn = db.stats().storageStats?.tornBytes;
    const tornBytes = typeof torn === "number" && torn > 0 ? torn : undefined;
    if (wantsJson(ctx)) {
      await ctx.out.json({
        checked,
        problems,
        ...(tornBytes === undefined ? {} : { tornBytes }),
      });
    } else {
      let text = `checked ${plural(checked, "stored value")}: ${
        problems.length === 0
          ? ctx.paint.green("no problems")
          : ctx.paint.red(plural(problems.length, "problem"))
      }\n`;
      if (problems.length > 0) {
        text += layout(
          ["collection", "key", "problem"],
          problems.map((p) => [p.collection, p.key, oneLine(p.problem)]),
          [false, false, false],
        );
      }
      if (tornBytes !== undefined) {
        text += `torn tail: ${
          formatBytes(tornBytes)
        } of an unfinished last commit (never acknowledged) left out\n`;
      }
      await ctx.out.write(text);
    }
    return problems.length === 0 ? ExitCode.Ok : ExitCode.Problems;
  });
}
