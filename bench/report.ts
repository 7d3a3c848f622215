/**
 * Fills the generated blocks of BENCHMARKS.md from a results file: the run
 * (date, commit, machine), the issue 14 targets table, the other targets
 * and the growth table. A block is the text between
 * `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; everything else in the
 * file is left as written. A full `deno task bench` calls it; to redo it
 * from a saved file:
 *
 * `deno run --allow-read --allow-write bench/report.ts [results.json] [BENCHMARKS.md]`
 *
 * @module
 */

import type { GrowthReport } from "./growth.ts";
import { type BenchResults, checkResults, type TargetRow } from "./results.ts";

const fmt = (v: number, digits = 2) =>
  v.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** At most about 100 characters, cut at a word. */
function clip(s: string, max = 100): string {
  if (s.length <= max) return s;
  const cut = s.lastIndexOf(" ", max);
  return `${s.slice(0, cut > 40 ? cut : max)} …`;
}

function status(t: TargetRow): string {
  return t.status === "n/a" ? "n/a" : `**${t.status}**`;
}

/**
 * The run block: when, what code, which machine, how loaded.
 *
 * @param r The results.
 * @returns Markdown lines.
 */
export function runBlock(r: BenchResults): string {
  const m = r.machine;
  const engineN = r.sizes["engine.n"];
  const stall = r.sizes["engine.stallItems"];
  return [
    `- Run: ${r.date.slice(0, 16).replace("T", " ")} UTC, ${
      (r.totalMs / 60_000).toFixed(1)
    } min, \`deno task bench${r.options.args.length > 0 ? " " : ""}${
      r.options.args.join(" ")
    }\`; scenarios: ${r.options.scenarios.join(", ")}.`,
    `- Code: commit \`${r.commit ?? "?"}\`${
      r.dirty ? " with uncommitted changes" : ""
    }.`,
    `- Deno ${r.deno.deno}, V8 ${r.deno.v8}, TypeScript ${r.deno.typescript}.`,
    `- Machine: ${m.cpus} logical CPUs${
      m.cpuModel === null ? "" : ` (${m.cpuModel})`
    }, ${m.memoryGiB ?? "?"} GiB, ${m.os}/${m.arch}; load average ${
      m.loadAvgStart?.join(" / ") ?? "?"
    } at the start and ${
      m.loadAvgEnd?.join(" / ") ?? "?"
    } at the end (1 / 5 / 15 min).`,
    ...(r.options.kept === undefined ? [] : [
      `- Merged: this run redid ${
        r.options.scenarios.filter((n) => !r.options.kept!.includes(n))
          .join(", ")
      }; kept from an earlier run: ${
        r.options.kept.map((n) => {
          const s = r.scenarios[n];
          return `${n} (${
            s?.date?.slice(0, 16).replace("T", " ") ?? "?"
          } UTC, commit \`${s?.commit ?? "?"}\`)`;
        }).join(", ")
      }.`,
    ]),
    ...(engineN === undefined ? [] : [
      `- Engine data: ${
        engineN.toLocaleString("en-US")
      } documents \`{ name, age, city }\`${
        stall === undefined
          ? ""
          : `; stalls over ${stall.toLocaleString("en-US")}`
      }.`,
    ]),
  ].join("\n");
}

/**
 * The issue 14 table: measure, target, ours, peer, ratio, status.
 *
 * @param r The results.
 * @returns Markdown.
 */
export function engineBlock(r: BenchResults): string {
  const rows = r.targets.filter((t) => t.scenario === "engine");
  if (rows.length === 0) return "_The engine scenario did not run._";
  const byId = new Map(
    r.measures.filter((x) => x.scenario === "engine").map((x) => [x.id, x]),
  );
  const out = [
    "| Measure | Target | Ours | Peer | Result | Status |",
    "|---|---|--:|--:|--:|---|",
  ];
  for (const t of rows) {
    const x = byId.get(t.id);
    let ours = "";
    let peer = "";
    if (x !== undefined && x.peer !== null) {
      const per = (ms: number, ops: number) =>
        ops === 1
          ? `${fmt(ms, 1)} ms`
          : `${fmt(ms, 1)} ms / ${ops.toLocaleString("en-US")}`;
      ours = per(x.ours.bestMs, x.ours.ops);
      peer = per(x.peer.bestMs, x.peer.ops);
    }
    const result = t.value === null
      ? cell(t.measured)
      : t.unit === "x"
      ? `${fmt(t.value)}x`
      : t.unit === "ms"
      ? `${fmt(t.value, 1)} ms`
      : fmt(t.value);
    out.push(
      `| ${cell(t.label)} | ${cell(t.goal)} | ${ours} | ${peer} | ${result} | ${
        status(t)
      } |`,
    );
  }
  const pass = rows.filter((t) => t.status === "PASS").length;
  const na = rows.filter((t) => t.status === "n/a").length;
  out.push(
    "",
    `${pass} of ${rows.length} met${
      na > 0 ? `, ${na} not measurable in this build` : ""
    }.`,
  );
  return out.join("\n");
}

/**
 * The other scenarios' targets, with their goal and result in words.
 *
 * @param r The results.
 * @returns Markdown.
 */
export function otherBlock(r: BenchResults): string {
  const rows = r.targets.filter((t) => t.scenario !== "engine");
  const failed = Object.values(r.scenarios).filter((s) =>
    s.error !== undefined
  );
  const out: string[] = [];
  if (rows.length > 0) {
    out.push(
      "| Scenario | Measure | Goal | Measured (in full in the JSON) | Status |",
      "|---|---|---|---|---|",
    );
    for (const t of rows) {
      out.push(
        `| ${t.scenario} | ${cell(t.label)} | ${cell(clip(t.goal))} | ${
          cell(clip(t.measured))
        } | ${status(t)} |`,
      );
    }
  } else out.push("_No other scenario ran._");
  for (const s of failed) {
    out.push("", `Scenario \`${s.name}\` failed: ${cell(s.error!)}`);
  }
  return out.join("\n");
}

/**
 * The growth table.
 *
 * @param r The results.
 * @returns Markdown.
 */
export function growthBlock(r: BenchResults): string {
  const g = r.scenarios["growth"]?.data as GrowthReport | undefined;
  if (g?.rows === undefined) return "_The growth scenario did not run._";
  const out = [
    "| Documents | ours file MB | ÷ NDJSON | node:sqlite MB | ours reopen ms | node:sqlite open + get ms | memory held open, MB (÷ NDJSON) |",
    "|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const row of g.rows) {
    out.push(
      `| ${row.docs.toLocaleString("en-US")} | ${
        fmt(row.oursBytes / 1e6, 1)
      } | ${fmt(row.oursBytes / row.ndjsonBytes)} | ${
        fmt(row.sqliteBytes / 1e6, 1)
      } | ${fmt(row.reopenBestMs, 1)} | ${fmt(row.sqliteOpenMs)} | ${
        row.heldBytes === undefined || row.heldBytes <= 0
          ? "n/a"
          : `${fmt(row.heldBytes / 1e6, 1)} (${
            fmt(row.heldBytes / row.ndjsonBytes, 1)
          }x)`
      } |`,
    );
  }
  return out.join("\n");
}

/**
 * Replaces each `<!-- bench:NAME -->...<!-- /bench:NAME -->` block.
 *
 * @param text The markdown.
 * @param blocks New content by name.
 * @returns The markdown with the blocks replaced (blocks it lacks are skipped).
 */
export function fillBlocks(
  text: string,
  blocks: Record<string, string>,
): string {
  let out = text;
  for (const [name, body] of Object.entries(blocks)) {
    const open = `<!-- bench:${name} -->`;
    const close = `<!-- /bench:${name} -->`;
    const i = out.indexOf(open);
    const j = out.indexOf(close);
    if (i < 0 || j < i) continue;
    out = `${out.slice(0, i + open.length)}\n${body}\n${out.slice(j)}`;
  }
  return out;
}

/**
 * Rewrites the generated blocks of a BENCHMARKS.md.
 *
 * @param r The results.
 * @param path The markdown file.
 */
export async function updateBenchmarksMd(
  r: BenchResults,
  path: string,
): Promise<void> {
  const text = await Deno.readTextFile(path);
  await Deno.writeTextFile(
    path,
    fillBlocks(text, {
      run: runBlock(r),
      engine: engineBlock(r),
      other: otherBlock(r),
      growth: growthBlock(r),
    }),
  );
}

if (import.meta.main) {
  const [input = "bench/results/latest.json", md = "BENCHMARKS.md"] = Deno.args;
  const parsed: unknown = JSON.parse(await Deno.readTextFile(input));
  const problems = checkResults(parsed);
  if (problems.length > 0) {
    console.error(`Cannot report '${input}': ${problems.join("; ")}`);
    Deno.exit(1);
  }
  await updateBenchmarksMd(parsed as BenchResults, md);
  console.log(`updated ${md}`);
}
