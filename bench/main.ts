/**
 * `deno task bench`: runs the benchmark scenarios in one process, writes
 * every figure to a JSON file, draws the SVG charts from it, and prints a
 * markdown report on stdout (progress on stderr).
 *
 * Scenarios, in the order they run:
 *
 * - `engine`: the issue 14 targets table (bench/engine.ts);
 * - `memory`: put, get, batches, full-scan queries, TTL sweep and stalls
 *   against a `Map`, LokiJS, NeDB and mingo (bench/memory.ts);
 * - `indexes`: secondary indexes and the planner (bench/indexes.ts);
 * - `growth`: file size and reopen time against documents (bench/growth.ts);
 * - `file`: the file storage against node:sqlite and Deno KV (bench/file.ts);
 * - `kv`: the Deno KV storage against raw Deno KV calls (bench/kv.ts);
 * - `codec`: compression and encryption against plain (bench/codec.ts);
 * - `backup`: backups and restore against NDJSON (bench/backup.ts);
 * - `gateway`: bench/gateway.ts, when that file exists.
 *
 * Flags:
 *
 * - `--quick`: every scenario about 10x smaller (or `TETHER_BENCH_QUICK=1`);
 *   with no `--only`, runs `engine` and `growth` only, in well under a minute;
 * - `--only engine` / `--only=engine,growth`: those scenarios only;
 * - `--in-process`: run several scenarios in this process (by default each
 *   runs in a child process of its own, so one's heap does not slow the
 *   next);
 * - `--merge`: with `--only`, replace those scenarios in
 *   bench/results/latest.json and keep the others from the earlier full
 *   run (each scenario records its own date and commit);
 * - `--json`: print the JSON instead of the markdown report;
 * - `--out=PATH`: where to write the JSON; `--charts=DIR`: where to draw;
 *   `--md=PATH`: a markdown file whose generated blocks to refresh.
 *
 * A full run (no `--quick`, no `--only`) writes bench/results/latest.json,
 * draws docs/bench/*.svg and refreshes the generated blocks of
 * BENCHMARKS.md (bench/report.ts); any other run writes
 * .tmp/bench/results.json and .tmp/bench/*.svg and leaves BENCHMARKS.md
 * alone, so a trial never overwrites the committed figures.
 *
 * @module
 */

import { cpus } from "node:os";
import { makeDocs } from "./data.ts";
import { collectGarbage, denoCommand } from "./harness.ts";
import { writeCharts } from "./charts.ts";
import { updateBenchmarksMd } from "./report.ts";
// Each scenario's module is imported when it runs, so one that no longer
// loads (an export it needs was renamed) fails alone, as that scenario.
import {
  type BenchResults,
  checkResults,
  type Machine,
  type Measure,
  peerMeasures,
  type ScenarioResult,
  SCHEMA,
  type TargetRow,
  targetsMarkdown,
  type WordTarget,
  wordTargets,
} from "./results.ts";

/** What a scenario hands back to this file. */
interface Outcome {
  readonly measures?: readonly Measure[];
  readonly targets: readonly TargetRow[];
  readonly data: unknown;
  readonly markdown: string;
  readonly sizes?: Record<string, number>;
}

/** A scenario: a name for `--only`, a title, and how to run it. */
interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly run: () => Promise<Outcome>;
}

const argv = [...Deno.args];
const flag = (name: string) => argv.includes(name);
const value = (name: string): string | undefined => {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const a = argv[i]!;
  return a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[i + 1];
};
const QUICK = flag("--quick") || Deno.env.get("TETHER_BENCH_QUICK") === "1";
const JSON_OUT = flag("--json");
const onlyArg = value("--only");
const REPS = 5;
const WARMUP = 1;
const SCALE = QUICK ? 10 : 1;
const N = 100_000 / SCALE;

function log(line: string): void {
  console.error(line);
}

/** A report without its markdown (kept apart in the JSON). */
function strip<T extends { markdown: string }>(r: T): Omit<T, "markdown"> {
  const { markdown: _, ...rest } = r;
  return rest;
}

function words(
  name: string,
  r: { targets: readonly WordTarget[]; markdown: string },
): Outcome {
  return {
    targets: wordTargets(name, r.targets),
    data: strip(r),
    markdown: r.markdown,
  };
}

let sharedDocs: ReturnType<typeof makeDocs> | undefined;
const docs = () => sharedDocs ??= makeDocs(N, 42);

const GATEWAY = new URL("./gateway.ts", import.meta.url);
const hasGateway = await Deno.stat(GATEWAY).then(() => true, () => false);

const SCENARIOS: Scenario[] = [
  {
    name: "engine",
    title: "issue 14 targets: ours vs LokiJS and NeDB on { name, age, city }",
    run: async () => {
      const r = await (await import("./engine.ts")).runEngineBench({
        quick: QUICK,
        log,
      });
      return {
        measures: r.measures,
        targets: r.targets,
        data: strip(r),
        markdown: r.markdown,
        sizes: { "engine.n": r.n, "engine.stallItems": r.stallItems },
      };
    },
  },
  {
    name: "memory",
    title:
      "memory storage vs Map, LokiJS, NeDB, mingo (puts, gets, queries, TTL)",
    run: async () => {
      const r = await (await import("./memory.ts")).runMemoryBench({
        docs: docs(),
        quick: QUICK,
        log,
      });
      return {
        measures: ["put", "get", "batch"].flatMap((g) =>
          peerMeasures("memory", g, r.results[g] ?? [])
        ),
        targets: wordTargets("memory", r.targets),
        data: strip(r),
        markdown: r.markdown,
        sizes: { "memory.N": r.sizes.N, "memory.M": r.sizes.M },
      };
    },
  },
  {
    name: "indexes",
    title: "secondary indexes and the planner",
    run: async () =>
      words(
        "indexes",
        await (await import("./indexes.ts")).runIndexBench({
          docs: docs(),
          warmup: WARMUP,
          reps: REPS,
          queryReps: 7,
          log,
        }),
      ),
  },
  {
    name: "growth",
    title: "file size and reopen time against documents",
    run: async () => {
      const r = await (await import("./growth.ts")).runGrowthBench({
        quick: QUICK,
        log,
      });
      return { targets: r.targets, data: strip(r), markdown: r.markdown };
    },
  },
  {
    name: "file10m",
    title: "the file storage at 10,000,000 documents (issue 15)",
    run: async () => {
      const r = await (await import("./file_10m.ts")).runFile10mBench({
        ...(QUICK ? { n: 1_000_000 } : {}),
        log,
      });
      return { targets: r.targets, data: strip(r), markdown: r.markdown };
    },
  },
  {
    name: "file",
    title: "file storage vs node:sqlite and Deno KV",
    run: async () =>
      words(
        "file",
        await (await import("./file.ts")).runFileBench({
          docs: docs(),
          quick: QUICK,
          warmup: WARMUP,
          reps: REPS,
          log,
        }),
      ),
  },
  {
    name: "kv",
    title: "Deno KV storage vs raw Deno KV",
    run: async () =>
      words(
        "kv",
        await (await import("./kv.ts")).runKvBench({
          quick: QUICK,
          warmup: WARMUP,
          log,
        }),
      ),
  },
  {
    name: "codec",
    title: "compression and encryption vs plain",
    run: async () =>
      words(
        "codec",
        await (await import("./codec.ts")).runCodecBench({
          quick: QUICK,
          warmup: WARMUP,
          log,
        }),
      ),
  },
  {
    name: "backup",
    title: "backups and restore vs NDJSON export and import",
    run: async () =>
      words(
        "backup",
        await (await import("./backup.ts")).runBackupBench({
          quick: QUICK,
          log,
        }),
      ),
  },
  {
    name: "aggregate",
    title: "aggregation ($group by device and hour) vs mingo and a hand loop",
    run: async () =>
      words(
        "aggregate",
        await (await import("./aggregate.ts")).runAggregateBench({
          quick: QUICK,
          log,
        }),
      ),
  },
  {
    name: "gateway",
    title: "gateway vs a node:sqlite server (bench/gateway.ts)",
    run: runGateway,
  },
];

/**
 * Runs bench/gateway.ts: it exports `runGatewayBench({ quick, log })`
 * (or a default function of the same shape) returning at least
 * `{ targets, markdown }`, targets as `{ name, goal, measured, met }`.
 */
async function runGateway(): Promise<Outcome> {
  const mod = await import(GATEWAY.href) as Record<string, unknown>;
  const fn = (mod["runGatewayBench"] ?? mod["default"]) as
    | ((ctx: { quick: boolean; log: typeof log }) => Promise<unknown>)
    | undefined;
  if (typeof fn !== "function") {
    throw new Error(
      "bench/gateway.ts exports neither runGatewayBench nor a default function",
    );
  }
  const r = await fn({ quick: QUICK, log }) as {
    targets?: WordTarget[];
    markdown?: string;
  };
  return {
    targets: wordTargets("gateway", r.targets ?? []),
    data: { ...r, markdown: undefined },
    markdown: r.markdown ?? "",
  };
}

function selected(): Scenario[] {
  const known = new Map(SCENARIOS.map((s) => [s.name, s]));
  if (onlyArg !== undefined) {
    const names = onlyArg.split(",").map((s) => s.trim()).filter(Boolean);
    for (const n of names) {
      if (!known.has(n)) {
        throw new TypeError(
          `Cannot run scenario '${n}': unknown (known: ${
            [...known.keys()].join(", ")
          })`,
        );
      }
      if (n === "gateway" && !hasGateway) {
        throw new TypeError(
          "Cannot run scenario 'gateway': bench/gateway.ts does not exist yet",
        );
      }
    }
    return names.map((n) => known.get(n)!);
  }
  if (QUICK) return [known.get("engine")!, known.get("growth")!];
  return SCENARIOS.filter((s) => s.name !== "gateway" || hasGateway);
}

async function git(args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

function machine(start: number[] | null): Machine {
  let cpuModel: string | null = null;
  try {
    // Deno needs --allow-all to read /proc/cpuinfo; node:os asks --allow-sys.
    cpuModel = cpus()[0]?.model.trim() || null;
  } catch { /* no --allow-sys */ }
  let memoryGiB: number | null = null;
  try {
    memoryGiB = Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10;
  } catch { /* no --allow-sys */ }
  return {
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    memoryGiB,
    loadAvgStart: start,
    loadAvgEnd: loadavg(),
  };
}

function loadavg(): number[] | null {
  try {
    return Deno.loadavg().map((x) => Math.round(x * 100) / 100);
  } catch {
    return null;
  }
}

const METHOD =
  "Each ratio is ours ÷ peer in speed, from the best (fastest) recorded sample of each side; " +
  "the cases of a row run round-robin (1 warm-up round, then 3 recorded rounds in the engine " +
  "scenario, 5 in the others) on the same generated data, with gc() before each sample (but query samples: see Case.collect). " +
  "Stalls: the longest gap between ticks of a setInterval(1) while a scan runs, best of 3. " +
  "Every case checks its result (counts, found keys), so a fast wrong answer fails the run.";

const MERGE = flag("--merge");

/**
 * Runs one scenario in a child process (this file with `--only NAME`) and
 * takes its outcome from the JSON it writes. Its progress goes to stderr
 * as it runs.
 */
async function runApart(name: string): Promise<Outcome> {
  const out = await Deno.makeTempFile({ prefix: `tether-bench-${name}-` });
  const charts = await Deno.makeTempDir({ prefix: "tether-bench-charts-" });
  try {
    const { code } = await new Deno.Command(denoCommand(), {
      args: [
        "run",
        "--unstable-kv",
        "-A",
        "--v8-flags=--expose-gc,--max-old-space-size=16384",
        new URL(import.meta.url).pathname,
        "--only",
        name,
        `--out=${out}`,
        `--charts=${charts}`,
        "--json",
        ...(QUICK ? ["--quick"] : []),
      ],
      stdout: "null",
      stderr: "inherit",
    }).output();
    const r = JSON.parse(await Deno.readTextFile(out)) as BenchResults;
    const sc = r.scenarios[name];
    if (code !== 0 || sc === undefined || sc.error !== undefined) {
      throw new Error(
        `the child process exited with ${code}${
          sc?.error === undefined ? "" : `: ${sc.error}`
        }`,
      );
    }
    return {
      measures: sc.measures,
      targets: sc.targets,
      data: sc.data,
      markdown: sc.markdown,
      sizes: r.sizes,
    };
  } finally {
    await Deno.remove(out).catch(() => {});
    await Deno.remove(charts, { recursive: true }).catch(() => {});
  }
}
const date = new Date().toISOString();
const load0 = loadavg();
const commit = await git(["rev-parse", "--short", "HEAD"]);
const dirty = await git(["status", "--porcelain", "--untracked-files=no"])
  .then((s) => s === null ? null : s.length > 0);
const started = performance.now();
const scenarios: Record<string, ScenarioResult> = {};
const sizes: Record<string, number> = {};
let failed = false;
const chosen = selected();
// Several scenarios: each in a process of its own, so that one's heap (the
// memory scenario's 1,000,000 documents) does not slow the next one's
// collector (indexed finds ran 3-6x slower after it). `--in-process` keeps
// them in this one.
const isolate = chosen.length > 1 && !flag("--in-process");
for (const s of chosen) {
  log(`## scenario ${s.name}: ${s.title}`);
  const t0 = performance.now();
  try {
    const o = isolate ? await runApart(s.name) : await s.run();
    Object.assign(sizes, o.sizes ?? {});
    scenarios[s.name] = {
      name: s.name,
      title: s.title,
      date: new Date().toISOString(),
      commit,
      ms: Math.round(performance.now() - t0),
      measures: o.measures ?? [],
      targets: o.targets,
      data: o.data,
      markdown: o.markdown,
    };
  } catch (e) {
    failed = true;
    log(`scenario ${s.name} failed: ${e instanceof Error ? e.stack : e}`);
    scenarios[s.name] = {
      name: s.name,
      title: s.title,
      date: new Date().toISOString(),
      commit,
      ms: Math.round(performance.now() - t0),
      measures: [],
      targets: [],
      data: null,
      markdown: "",
      error: String(e),
    };
  }
  collectGarbage();
}

const full = (MERGE && !QUICK) || (!QUICK && onlyArg === undefined);
const outPath = value("--out") ??
  (full ? "bench/results/latest.json" : ".tmp/bench/results.json");
const kept: string[] = [];
if (MERGE) {
  // Keep the scenarios of the earlier full run that this run did not redo.
  const prev: unknown = JSON.parse(await Deno.readTextFile(outPath));
  const problems = checkResults(prev);
  if (problems.length > 0) {
    throw new TypeError(
      `Cannot merge into '${outPath}': ${problems.join("; ")}`,
    );
  }
  const p = prev as BenchResults;
  if (p.options.quick !== QUICK) {
    throw new TypeError(
      `Cannot merge into '${outPath}': it is ${
        p.options.quick ? "" : "not "
      }a --quick run and this one is ${QUICK ? "" : "not"} (sizes differ)`,
    );
  }
  for (const [k, v] of Object.entries(p.sizes)) sizes[k] ??= v;
  for (const [name, sc] of Object.entries(p.scenarios)) {
    if (scenarios[name] !== undefined) continue;
    scenarios[name] = {
      ...sc,
      date: sc.date ?? p.date,
      commit: sc.commit ?? p.commit,
    };
    kept.push(name);
  }
}
const order = SCENARIOS.map((s) => s.name);
const all = Object.values(scenarios).sort((a, b) =>
  order.indexOf(a.name) - order.indexOf(b.name)
);
const results: BenchResults = {
  schema: SCHEMA,
  date,
  commit,
  dirty,
  deno: { ...Deno.version },
  machine: machine(load0),
  options: {
    quick: QUICK,
    scenarios: all.map((s) => s.name),
    args: argv,
    ...(kept.length > 0 ? { kept } : {}),
  },
  sizes,
  method: METHOD,
  totalMs: Math.round(performance.now() - started),
  targets: all.flatMap((s) => s.targets),
  measures: all.flatMap((s) => s.measures),
  scenarios: Object.fromEntries(all.map((s) => [s.name, s])),
};

const chartDir = value("--charts") ?? (full ? "docs/bench" : ".tmp/bench");
await Deno.mkdir(outPath.replace(/\/[^/]*$/, "") || ".", { recursive: true });
await Deno.writeTextFile(outPath, JSON.stringify(results, null, 2) + "\n");
log(`wrote ${outPath}`);
for (const p of await writeCharts(results, chartDir)) log(`wrote ${p}`);
const mdPath = value("--md") ?? (full ? "BENCHMARKS.md" : undefined);
if (mdPath !== undefined) {
  await updateBenchmarksMd(results, mdPath);
  log(`updated the generated blocks of ${mdPath}`);
}

if (full) {
  // The committed outputs pass `deno fmt --check` as they are written.
  const files = [outPath, ...(mdPath === undefined ? [] : [mdPath])];
  const ok = await new Deno.Command("deno", {
    args: ["fmt", "--quiet", ...files],
    stdout: "null",
    stderr: "null",
  }).output().then((o) => o.success, () => false);
  if (!ok) log(`could not run deno fmt: run \`deno fmt ${files.join(" ")}\``);
}

if (JSON_OUT) {
  console.log(JSON.stringify(results, null, 1));
} else {
  const out: string[] = [
    `# @tether/db benchmark${QUICK ? " (--quick, about 10x smaller)" : ""}`,
    "",
    `${date}, commit ${results.commit ?? "?"}${
      results.dirty ? " (uncommitted changes)" : ""
    }, Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${results.machine.cpus} CPUs, ${results.machine.os}/${results.machine.arch}; load average ${
      results.machine.loadAvgStart?.join(" ") ?? "?"
    } at the start. Total ${(results.totalMs / 1000).toFixed(0)} s.`,
    "",
    METHOD,
  ];
  const engine = results.targets.filter((t) => t.scenario === "engine");
  if (engine.length > 0) {
    out.push("", "## Issue 14 targets", "", targetsMarkdown(engine));
  }
  const other = results.targets.filter((t) => t.scenario !== "engine");
  if (other.length > 0) {
    out.push("", "## Other targets", "", targetsMarkdown(other));
  }
  for (const s of all) {
    out.push(
      "",
      s.error === undefined ? s.markdown : `## ${s.name}: FAILED\n\n${s.error}`,
    );
  }
  console.log(out.join("\n"));
}
if (failed) Deno.exit(1);
