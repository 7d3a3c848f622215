/**
 * `import --from unosql DIR|FILE`: a unosql database directory, backup or
 * collection file, through `importUnosql` (src/import/unosql.ts).
 *
 * @module
 */

import { importUnosql } from "../../mod.ts";
import { describeDamage } from "../import/unosql.ts";
import { choice, flag, list, option, whole } from "./args.ts";
import { type Context, wantsJson } from "./context.ts";
import { asUsageAsync, CliError, ExitCode, usage } from "./exit.ts";
import { CREATE, withDatabase } from "./open.ts";
import { plural } from "./output.ts";
import { Progress } from "./progress.ts";

/** The options only `import --from unosql` takes. */
export const UNOSQL_OPTIONS = {
  from: "value",
  key: "value",
  "key-env": "value",
  iterations: "value",
  name: "value",
  collections: "value",
  "skip-damaged": "flag",
  epoch: "value",
} as const;

/**
 * Imports a unosql source into the database.
 *
 * @param ctx The command's context.
 * @param source The directory or file.
 * @returns The exit code.
 */
export async function importFromUnosql(
  ctx: Context,
  source: string,
): Promise<number> {
  const keyEnv = option(ctx.parsed, "key-env");
  let key = option(ctx.parsed, "key");
  if (keyEnv !== undefined) {
    if (key !== undefined) throw usage("give --key or --key-env, not both");
    key = ctx.env(keyEnv) || undefined;
    if (key === undefined) throw usage(`--key-env: ${keyEnv} is not set`);
  }
  const iterations = whole(ctx.parsed, "iterations");
  const name = option(ctx.parsed, "name");
  const collections = list(option(ctx.parsed, "collections"));
  const epoch = choice(ctx.parsed, "epoch", ["1970", "2000"] as const);
  for (
    const bare of ["format", "collection", "id-field", "mode", "skip-bad"]
  ) {
    if (ctx.parsed.options.has(bare)) {
      throw usage(`--${bare} is not an option of import --from unosql`);
    }
  }
  try {
    await Deno.stat(source);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        ExitCode.NoInput,
        `cannot open '${source}': no such file or directory`,
      );
    }
    throw e;
  }
  return await withDatabase(ctx, CREATE, async (db) => {
    const progress = new Progress(
      ctx.err,
      ctx.stderrIsTerminal,
      "importing from unosql",
    );
    let report;
    try {
      report = await asUsageAsync(() =>
        importUnosql(db, source, {
          ...(key === undefined ? {} : { key }),
          ...(iterations === undefined ? {} : { iterations }),
          ...(name === undefined ? {} : { name }),
          ...(collections === undefined ? {} : { collections }),
          ...(epoch === undefined
            ? {}
            : { epoch: Number(epoch) as 1970 | 2000 }),
          onDamage: flag(ctx.parsed, "skip-damaged") ? "skip" : "throw",
        })
      );
    } finally {
      await progress.stop();
    }
    if (wantsJson(ctx)) {
      await ctx.out.json(report);
    } else {
      const per = Object.entries(report.collections).map(([c, n]) =>
        `${c} ${n}`
      ).join(", ");
      await ctx.out.write(
        `imported ${plural(report.documents, "document")} from unosql${
          report.name === undefined ? "" : ` '${report.name}'`
        } (${report.format} format, ${report.kind})${
          per === "" ? "" : `: ${per}`
        }\n`,
      );
    }
    if (report.damaged.length > 0) {
      await ctx.err.write(
        `tether: ${ctx.paintErr.yellow("skipped")} ${
          plural(report.damaged.length, "damaged part")
        }:\n${report.damaged.map((d) => `  ${describeDamage(d)}\n`).join("")}`,
      );
    }
    return report.damaged.length === 0 ? ExitCode.Ok : ExitCode.Problems;
  });
}
