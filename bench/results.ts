/**
 * The shape of `bench/results/latest.json` (what `deno task bench` writes
 * and the charts are drawn from), and helpers that turn timings into its
 * measures and target rows.
 *
 * Every ratio is "ours ÷ peer" in speed (higher is better), computed from
 * the best (fastest) of the recorded samples of each side, except the rows
 * whose `unit` is `"time ratio"` or `"ms"` (lower is better).
 *
 * @module
 */

import type { Result } from "./harness.ts";

/** The version of this JSON shape. */
export const SCHEMA = 1;

/** One side of a measure: the timings of one implementation. */
export interface Side {
  /** Which implementation ("ours", "LokiJS (clone)"...). */
  readonly impl: string;
  /** What was run. */
  readonly op: string;
  /** Logical operations per sample. */
  readonly ops: number;
  /** Fastest sample, ms. */
  readonly bestMs: number;
  /** Median sample, ms. */
  readonly medianMs: number;
  /** Every recorded sample, ms. */
  readonly samples: readonly number[];
  /** `ops` per second at the fastest sample. */
  readonly opsPerSec: number;
}

/** Ours against one peer (or against ourselves, for the index cost). */
export interface Measure {
  /** The scenario it belongs to ("engine", "memory"...). */
  readonly scenario: string;
  /** Stable id within the scenario ("put.clone"). */
  readonly id: string;
  /** What it compares, in words. */
  readonly label: string;
  /** Our side. */
  readonly ours: Side;
  /** The peer's side; `null` when not measured. */
  readonly peer: Side | null;
  /** ours ÷ peer in speed (`peer.bestMs / ours.bestMs` per op); `null` when not measured. */
  readonly ratio: number | null;
}

/** PASS, MISS, or not measured in this build. */
export type Status = "PASS" | "MISS" | "n/a";

/** One row of a targets table. */
export interface TargetRow {
  /** The scenario it belongs to. */
  readonly scenario: string;
  /** Stable id ("put.clone"), or the row's name for older scenarios. */
  readonly id: string;
  /** What is measured, in words. */
  readonly label: string;
  /** The goal in words ("≥ 2.0x"). */
  readonly goal: string;
  /** `">="` when higher is better, `"<="` when lower is; `null` for a goal in words. */
  readonly cmp: ">=" | "<=" | null;
  /** The target number; `null` for a goal in words. */
  readonly target: number | null;
  /** The measured number; `null` when not measured or a goal in words. */
  readonly value: number | null;
  /** Unit of `value` and `target` ("x", "time ratio", "ms", ""). */
  readonly unit: string;
  /** The outcome. */
  readonly status: Status;
  /** The measurement in words. */
  readonly measured: string;
}

/** The machine the run was on. */
export interface Machine {
  /** `Deno.build.os`. */
  readonly os: string;
  /** `Deno.build.arch`. */
  readonly arch: string;
  /** Logical CPUs. */
  readonly cpus: number;
  /** CPU model (from `node:os`), if readable. */
  readonly cpuModel: string | null;
  /** Total memory, GiB, if readable. */
  readonly memoryGiB: number | null;
  /** Load average (1, 5, 15 min) at the start of the run, if readable. */
  readonly loadAvgStart: readonly number[] | null;
  /** Load average at the end. */
  readonly loadAvgEnd: readonly number[] | null;
}

/** The result of one scenario. */
export interface ScenarioResult {
  /** Its name (`--only` takes it). */
  readonly name: string;
  /** One line saying what it measures. */
  readonly title: string;
  /** ISO date it finished (a merged file mixes runs). */
  readonly date?: string;
  /** Short commit id of the code it measured. */
  readonly commit?: string | null;
  /** How long it ran, ms. */
  readonly ms: number;
  /** Its measures (ours against each peer). */
  readonly measures: readonly Measure[];
  /** Its target rows. */
  readonly targets: readonly TargetRow[];
  /** Its raw report (every sample, sizes, counts), as it returned it. */
  readonly data: unknown;
  /** Its markdown section, as it rendered it. */
  readonly markdown: string;
  /** Set when it failed: the error, and nothing else is valid. */
  readonly error?: string;
}

/** The whole file. */
export interface BenchResults {
  /** {@linkcode SCHEMA}. */
  readonly schema: number;
  /** ISO date of the start of the run. */
  readonly date: string;
  /** Short commit id of the code measured, if git could tell. */
  readonly commit: string | null;
  /** Whether the work tree had uncommitted changes. */
  readonly dirty: boolean | null;
  /** `Deno.version`. */
  readonly deno: {
    readonly deno: string;
    readonly v8: string;
    readonly typescript: string;
  };
  /** The machine. */
  readonly machine: Machine;
  /** How it was run. */
  readonly options: {
    readonly quick: boolean;
    readonly scenarios: readonly string[];
    readonly args: readonly string[];
    /** Scenarios kept from an earlier run by `--merge`. */
    readonly kept?: readonly string[];
  };
  /** Data sizes of the engine scenario and the others. */
  readonly sizes: Record<string, number>;
  /** How to read the numbers. */
  readonly method: string;
  /** Total duration, ms. */
  readonly totalMs: number;
  /** Every target row, the engine's first. */
  readonly targets: readonly TargetRow[];
  /** Every measure. */
  readonly measures: readonly Measure[];
  /** Each scenario's result, by name. */
  readonly scenarios: Record<string, ScenarioResult>;
}

/**
 * One side of a measure from a harness result.
 *
 * @param r The result.
 * @returns Its side.
 */
export function side(r: Result): Side {
  return {
    impl: r.impl,
    op: r.op,
    ops: r.ops,
    bestMs: round(r.minMs),
    medianMs: round(r.medianMs),
    samples: r.samples.map(round),
    opsPerSec: Math.round(r.bestOpsPerSec),
  };
}

/**
 * Rounds to 3 decimals (enough for ms, and keeps the JSON short).
 *
 * @param v A number.
 * @returns It, rounded.
 */
export function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/**
 * Ours against a peer, in speed, from the fastest sample of each.
 *
 * @param scenario Scenario name.
 * @param id Stable id.
 * @param label In words.
 * @param ours Our result.
 * @param peer The peer's (`null`: not measured).
 * @returns The measure.
 */
export function measure(
  scenario: string,
  id: string,
  label: string,
  ours: Result,
  peer: Result | null,
): Measure {
  const o = side(ours);
  const p = peer === null ? null : side(peer);
  const ratio = p === null
    ? null
    : round((p.bestMs / p.ops) / (o.bestMs / o.ops));
  return { scenario, id, label, ours: o, peer: p, ratio };
}

/**
 * Whether a value meets a target.
 *
 * @param value The measured value (`null`: not measured).
 * @param cmp Direction.
 * @param target The target.
 * @returns PASS, MISS or n/a.
 */
export function judge(
  value: number | null,
  cmp: ">=" | "<=",
  target: number,
): Status {
  if (value === null || !Number.isFinite(value)) return "n/a";
  return (cmp === ">=" ? value >= target : value <= target) ? "PASS" : "MISS";
}

/**
 * A target row for a numeric goal.
 *
 * @param scenario Scenario name.
 * @param id Stable id.
 * @param label In words.
 * @param cmp Direction.
 * @param target The target.
 * @param unit Unit ("x", "time ratio", "ms").
 * @param value The measured value (`null`: not measured).
 * @param measured The measurement in words (or why it is n/a).
 * @returns The row.
 */
export function targetRow(
  scenario: string,
  id: string,
  label: string,
  cmp: ">=" | "<=",
  target: number,
  unit: string,
  value: number | null,
  measured: string,
): TargetRow {
  const u = unit === "x" ? "x" : unit === "ms" ? " ms" : "";
  return {
    scenario,
    id,
    label,
    goal: `${cmp === ">=" ? "≥" : "≤"} ${
      unit === "ms"
        ? target
        : target < 1
        ? target.toFixed(2)
        : target.toFixed(1)
    }${u}`,
    cmp,
    target,
    value: value === null ? null : round(value),
    unit,
    status: judge(value, cmp, target),
    measured,
  };
}

/** The target rows the older scenarios return. */
export interface WordTarget {
  /** What is measured. */
  readonly name: string;
  /** The goal, in words. */
  readonly goal: string;
  /** The measurement, in words. */
  readonly measured: string;
  /** Whether it was met. */
  readonly met: boolean;
}

/**
 * Target rows from a scenario that states its goals in words.
 *
 * @param scenario Scenario name.
 * @param targets Its rows.
 * @returns The rows in this file's shape.
 */
export function wordTargets(
  scenario: string,
  targets: readonly WordTarget[],
): TargetRow[] {
  return targets.map((t) => ({
    scenario,
    id: t.name,
    label: t.name,
    goal: t.goal,
    cmp: null,
    target: null,
    value: null,
    unit: "",
    status: t.met ? "PASS" : "MISS",
    measured: t.measured,
  }));
}

/**
 * Measures from a list of harness results in which one is ours and the
 * others are peers doing the same work: each peer against ours.
 *
 * @param scenario Scenario name.
 * @param group Id prefix ("put").
 * @param list The results; the first whose impl is `"ours"` is the base.
 * @returns One measure per peer.
 */
export function peerMeasures(
  scenario: string,
  group: string,
  list: readonly Result[],
): Measure[] {
  const ours = list.find((r) => r.impl === "ours");
  if (ours === undefined) return [];
  return list.filter((r) => r !== ours).map((r) =>
    measure(
      scenario,
      `${group}.${r.impl}`,
      `${group}: ${ours.op} vs ${r.impl} ${r.op}`,
      ours,
      r,
    )
  );
}

/**
 * The markdown table of some target rows.
 *
 * @param rows The rows.
 * @returns Markdown.
 */
export function targetsMarkdown(rows: readonly TargetRow[]): string {
  const out = [
    "| Measure | Target | Measured | Status |",
    "|---|---|---|---|",
  ];
  for (const t of rows) {
    out.push(
      `| ${cell(t.label)} | ${cell(t.goal)} | ${cell(t.measured)} | ${
        t.status === "n/a" ? "n/a" : `**${t.status}**`
      } |`,
    );
  }
  return out.join("\n");
}

/** Text safe inside a markdown table cell. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/**
 * Checks that parsed JSON has the shape of {@linkcode BenchResults} (the
 * fields the charts and BENCHMARKS.md read), so a stale or hand-edited file
 * is refused with what is wrong rather than drawn wrong.
 *
 * @param x Parsed JSON.
 * @returns The problems found; empty when the shape is right.
 */
export function checkResults(x: unknown): string[] {
  const errors: string[] = [];
  const obj = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!obj(x)) return ["not an object"];
  if (x["schema"] !== SCHEMA) errors.push(`schema is not ${SCHEMA}`);
  for (const k of ["date", "method"]) {
    if (typeof x[k] !== "string") errors.push(`${k} is not a string`);
  }
  for (const k of ["deno", "machine", "options", "sizes", "scenarios"]) {
    if (!obj(x[k])) errors.push(`${k} is not an object`);
  }
  if (typeof x["totalMs"] !== "number") errors.push("totalMs is not a number");
  const targets = x["targets"];
  if (!Array.isArray(targets)) errors.push("targets is not an array");
  else {
    targets.forEach((t, i) => {
      if (!obj(t)) return errors.push(`targets[${i}] is not an object`);
      for (const k of ["scenario", "id", "label", "goal", "measured"]) {
        if (typeof t[k] !== "string") {
          errors.push(`targets[${i}].${k} is not a string`);
        }
      }
      if (!["PASS", "MISS", "n/a"].includes(t["status"] as string)) {
        errors.push(`targets[${i}].status is not PASS, MISS or n/a`);
      }
      if (t["value"] !== null && typeof t["value"] !== "number") {
        errors.push(`targets[${i}].value is neither a number nor null`);
      }
    });
  }
  const measures = x["measures"];
  if (!Array.isArray(measures)) errors.push("measures is not an array");
  else {
    measures.forEach((m, i) => {
      if (!obj(m) || !obj(m["ours"])) {
        return errors.push(`measures[${i}] has no ours side`);
      }
      if (m["peer"] !== null && !obj(m["peer"])) {
        errors.push(`measures[${i}].peer is neither a side nor null`);
      }
      if (m["ratio"] !== null && typeof m["ratio"] !== "number") {
        errors.push(`measures[${i}].ratio is neither a number nor null`);
      }
    });
  }
  return errors;
}
