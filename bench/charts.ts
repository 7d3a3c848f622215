/**
 * Draws the benchmark charts from `bench/results/latest.json` (or any file
 * of that shape): the issue 14 ratios against their targets, the event-loop
 * stall timeline, and file size and reopen time against documents. Each
 * chart is drawn only when its scenario ran.
 *
 * `deno run --allow-read --allow-write bench/charts.ts [results.json] [dir]`
 * redraws them without running anything.
 *
 * @module
 */

import type { EngineReport } from "./engine.ts";
import type { GrowthReport } from "./growth.ts";
import { type BenchResults, checkResults, type TargetRow } from "./results.ts";
import { barChart, type BarGroup, lineChart, type Series } from "./svg.ts";

/** A chart: its file name and SVG text. */
export interface Chart {
  /** File name, e.g. `engine_ratios.svg`. */
  readonly file: string;
  /** What it shows (alt text). */
  readonly alt: string;
  /** The SVG document. */
  readonly svg: string;
}

/** The groups of the ratio chart: the targets rows by operation. */
const GROUPS: readonly { label: string; ids: readonly string[] }[] = [
  { label: "put", ids: ["put.clone", "put.plain"] },
  { label: "putBatch of 1,000", ids: ["putBatch"] },
  { label: "get", ids: ["get.clone", "get.nedb", "readonly.get"] },
  {
    label: "indexed find({ age: 42 })",
    ids: ["find.indexed", "readonly.find"],
  },
  { label: "unindexed count", ids: ["count.unindexed"] },
  { label: "full scan", ids: ["scan.full", "readonly.scan"] },
  { label: "put with 2 indexes (speed vs none)", ids: ["put.indexes"] },
];

const BAR_LABELS: Record<string, string> = {
  "put.clone": "vs LokiJS insert, clone",
  "put.plain": "vs LokiJS insert, no clone",
  "putBatch": "vs LokiJS insert(array), clone",
  "get.clone": "vs LokiJS by(), clone",
  "get.nedb": "vs NeDB findOne",
  "readonly.get": "readonly: true vs LokiJS by(), plain",
  "find.indexed": "vs LokiJS indexed find, clone",
  "readonly.find": "readonly: true vs LokiJS find, plain",
  "count.unindexed": "vs LokiJS find().length",
  "scan.full": "for await vs LokiJS find(), clone",
  "readonly.scan": "readonly: true vs LokiJS find(), plain",
  "put.indexes": "2 indexes ÷ none, in speed",
};

function shortDate(r: BenchResults): string {
  return `${r.date.slice(0, 16).replace("T", " ")} UTC, commit ${
    r.commit ?? "?"
  }${r.dirty ? "+" : ""}, Deno ${r.deno.deno}, ${r.machine.cpus} CPUs${
    r.options.quick ? ", --quick" : ""
  }`;
}

/**
 * The ratio chart: ours ÷ peer per operation (best of 3), the 1.0x line,
 * each target marked. "put with 2 indexes" is drawn as speed with the
 * indexes ÷ speed without, so its target ≤ 2.0 (time) becomes ≥ 0.5.
 *
 * @param r The results.
 * @returns The chart, or `null` when the engine scenario did not run.
 */
export function ratioChart(r: BenchResults): Chart | null {
  const rows = new Map<string, TargetRow>();
  for (const t of r.targets) if (t.scenario === "engine") rows.set(t.id, t);
  if (rows.size === 0) return null;
  const groups: BarGroup[] = [];
  for (const g of GROUPS) {
    const bars = g.ids.flatMap((id) => {
      const t = rows.get(id);
      if (t === undefined) return [];
      if (id === "put.indexes") {
        const v = t.value === null ? null : 1 / t.value;
        return [{
          label: `${BAR_LABELS[id]!} (≥ ${(1 / t.target!).toFixed(2)}x)`,
          value: v,
          target: 1 / t.target!,
          ...(v === null ? { text: "n/a" } : {}),
        }];
      }
      return [{
        label: `${BAR_LABELS[id] ?? t.label} (${t.goal})`,
        value: t.value,
        target: t.target!,
        ...(t.value === null
          ? { text: "n/a (not supported by this build)" }
          : {}),
      }];
    });
    if (bars.length > 0) groups.push({ label: g.label, bars });
  }
  const n = (r.sizes["engine.n"] ?? 0).toLocaleString("en-US");
  return {
    file: "engine_ratios.svg",
    alt: "ours ÷ peer per operation, with the 1.0x line and each target",
    svg: barChart({
      title:
        `@tether/db vs LokiJS and NeDB: speed ratio per operation (${n} docs, best of 3)`,
      subtitle:
        "Higher is better: above 1.0x ours is faster than the peer. The dark mark is the target.",
      note: shortDate(r),
      groups,
      reference: 1,
      unit: "x",
      max: 8,
    }),
  };
}

/** Keeps the largest gap per `bucketMs` so a long timeline stays small. */
export function downsample(
  points: readonly (readonly [number, number])[],
  bucketMs: number,
): [number, number][] {
  const out: [number, number][] = [];
  let bucket = -1;
  for (const [t, g] of points) {
    const b = Math.floor(t / bucketMs);
    const last = out[out.length - 1];
    if (b === bucket && last !== undefined) {
      if (g > last[1]) out[out.length - 1] = [t, g];
    } else {
      out.push([t, g]);
      bucket = b;
    }
  }
  return out;
}

/**
 * Ticks as steps: each gap drawn as a level from the previous tick to its
 * own, so a long block shows as a long high step.
 *
 * @param points `[t, gap]` per tick.
 * @returns The polyline's points.
 */
export function steps(
  points: readonly (readonly [number, number])[],
): [number, number][] {
  const out: [number, number][] = [];
  for (const [t, g] of points) {
    out.push([Math.max(0, t - g), g], [t, g]);
  }
  return out;
}

/**
 * The stall timeline: the gap between ticks of a 1 ms interval against
 * time, during our `toArray()` and `count()` over the stall items (the run
 * with the smallest longest gap of each), with the 20 ms target.
 *
 * @param r The results.
 * @returns The chart, or `null` when the engine scenario did not run.
 */
export function stallChart(r: BenchResults): Chart | null {
  const engine = r.scenarios["engine"]?.data as EngineReport | undefined;
  if (engine?.stalls === undefined) return null;
  const ours = engine.stalls.filter((s) => s.impl === "ours");
  if (ours.length === 0) return null;
  const longest = Math.max(...ours.map((s) => s.best.durationMs));
  const bucket = Math.max(1, longest / 700);
  const series: Series[] = ours.map((s) => ({
    label: `${s.op.replace(/^await /, "")} (longest ${
      s.best.maxGapMs.toFixed(1)
    } ms)`,
    points: steps(downsample(s.best.points, bucket)),
  }));
  const loki = engine.stalls.find((s) => s.impl !== "ours");
  return {
    file: "stall_timeline.svg",
    alt:
      "event-loop gaps during a toArray() and a count() over the stall items",
    svg: lineChart({
      title: `Event-loop gaps during a scan of ${
        engine.stallItems.toLocaleString("en-US")
      } documents`,
      note: shortDate(r),
      subtitle: `Each step: how long a setInterval(1) waited; lower is better.${
        loki === undefined
          ? ""
          : ` LokiJS find() of the same: one ${
            Math.min(...loki.maxGapMs).toFixed(0)
          } ms block.`
      }`,
      xLabel: "ms since the scan started",
      yLabel: "gap between ticks, ms",
      series,
      hLines: [{ y: 20, label: "target ≤ 20 ms" }],
    }),
  };
}

/**
 * File size and reopen time against documents (log x axis).
 *
 * @param r The results.
 * @returns Two charts, or none when the growth scenario did not run.
 */
export function growthCharts(r: BenchResults): Chart[] {
  const g = r.scenarios["growth"]?.data as GrowthReport | undefined;
  if (g?.rows === undefined || g.rows.length === 0) return [];
  const pts = (f: (row: GrowthReport["rows"][number]) => number) =>
    g.rows.map((row) => [row.docs, f(row)] as [number, number]);
  return [
    {
      file: "file_size.svg",
      alt: "file size against number of documents",
      svg: lineChart({
        title: "File size against documents { name, age, city }",
        note: shortDate(r),
        xLabel: "documents (log scale)",
        yLabel: "MB (log scale)",
        xLog: true,
        yLog: true,
        series: [
          {
            label: "ours (file storage)",
            points: pts((x) => x.oursBytes / 1e6),
            dots: true,
          },
          {
            label: "NDJSON of the same",
            points: pts((x) => x.ndjsonBytes / 1e6),
            dots: true,
          },
          {
            label: "node:sqlite (WAL, checkpointed)",
            points: pts((x) => x.sqliteBytes / 1e6),
            dots: true,
          },
        ],
      }),
    },
    {
      file: "reopen_time.svg",
      alt: "reopen time against number of documents",
      svg: lineChart({
        title: "Reopen time against documents (best of 3)",
        subtitle: "open({ path }) and a first get(); node:sqlite opens lazily.",
        note: shortDate(r),
        xLabel: "documents (log scale)",
        yLabel: "ms (log scale)",
        xLog: true,
        yLog: true,
        series: [
          {
            label: "ours: open + first get",
            points: pts((x) => x.reopenBestMs),
            dots: true,
          },
          {
            label: "node:sqlite: open + first get",
            points: pts((x) => x.sqliteOpenMs),
            dots: true,
          },
        ],
      }),
    },
  ];
}

/**
 * Every chart the results allow.
 *
 * @param r The results.
 * @returns The charts.
 */
export function drawCharts(r: BenchResults): Chart[] {
  const out: Chart[] = [];
  const a = ratioChart(r);
  if (a !== null) out.push(a);
  const b = stallChart(r);
  if (b !== null) out.push(b);
  out.push(...growthCharts(r));
  return out;
}

/**
 * Writes every chart into a directory.
 *
 * @param r The results.
 * @param dir The directory (created if missing).
 * @returns The paths written.
 */
export async function writeCharts(
  r: BenchResults,
  dir: string,
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const c of drawCharts(r)) {
    const p = `${dir}/${c.file}`;
    await Deno.writeTextFile(p, c.svg);
    paths.push(p);
  }
  return paths;
}

if (import.meta.main) {
  const [input = "bench/results/latest.json", dir = "docs/bench"] = Deno.args;
  const parsed: unknown = JSON.parse(await Deno.readTextFile(input));
  const problems = checkResults(parsed);
  if (problems.length > 0) {
    console.error(`Cannot draw charts from '${input}': ${problems.join("; ")}`);
    Deno.exit(1);
  }
  const r = parsed as BenchResults;
  for (const p of await writeCharts(r, dir)) console.log(p);
}
