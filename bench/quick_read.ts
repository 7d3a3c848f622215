/**
 * Quick read-path measurement (issue 14, items 4 and 5): compiled filters
 * and chunked scans.
 *
 * On 100,000 documents `{ name, age, city }` in memory storage:
 *
 * - unindexed `count({ city: "SF", age: { $gte: 30 } })`, 10 times;
 * - a full scan with `for await`;
 * - indexed `find({ age: 42 }).toArray()`, 50 times;
 *
 * and on 1,000,000 documents, the longest event-loop stall during
 * `find({}).toArray()` and during an unindexed `count(...)`, recorded by a
 * `MessageChannel` ping (each message posts the next; the longest gap
 * between two messages is the stall).
 *
 * Each timing is the best of 3 runs after a warm-up, in wall time and in
 * process CPU time (all threads; steadier on a busy machine). A stall is
 * reported for each of the 3 runs, in wall time and as the CPU time the
 * JavaScript thread spent between two pings (which a busy machine does not
 * inflate by descheduling the process).
 *
 * Run: `deno run -A --v8-flags=--expose-gc bench/quick_read.ts`
 * (`--big=200000` shrinks the stall data set, `--big=0` skips it,
 * `--only-stall` skips the 100,000-document timings;
 * `--interpreted` forces the filter interpreter).
 *
 * @module
 */

import process from "node:process";
import { open } from "../mod.ts";
import { setCodeGeneration } from "../src/query/codegen.ts";
import { compileFilter } from "../src/query/compile.ts";

if (Deno.args.includes("--interpreted")) setCodeGeneration("off");

const N = Deno.args.includes("--only-stall") ? 0 : 100_000;
const BIG = Number(
  Deno.args.find((a) => a.startsWith("--big="))?.slice(6) ?? 1_000_000,
);
const CITIES = ["NY", "LA", "SF", "CHI", "SEA", "BOS", "AUS", "MIA"];

function doc(i: number): { name: string; age: number; city: string } {
  // Deterministic, spread over every age and city.
  return {
    name: `user${i}`,
    age: (i * 7919) % 80,
    city: CITIES[(i * 104729) % CITIES.length]!,
  };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * CPU time of the calling (JavaScript) thread, ms, from Linux's schedstat
 * (nanoseconds on the CPU): a stall measured in it is not inflated when a
 * busy machine deschedules the process, nor by GC helper threads running
 * beside it. `NaN` where there is no /proc.
 */
function threadCpuMs(): number {
  try {
    const text = Deno.readTextFileSync("/proc/thread-self/schedstat");
    return Number(text.slice(0, text.indexOf(" "))) / 1e6;
  } catch {
    return NaN;
  }
}

/** Process CPU time (every thread), ms: less noisy than wall time on a shared machine. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function best(
  label: string,
  runs: number,
  work: () => Promise<unknown>,
): Promise<number> {
  await work(); // warm-up
  let min = Infinity;
  let minCpu = Infinity;
  let result: unknown;
  for (let r = 0; r < 3; r++) {
    gc();
    const c0 = cpuMs();
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) result = await work();
    min = Math.min(min, performance.now() - t0);
    minCpu = Math.min(minCpu, cpuMs() - c0);
  }
  console.log(
    `${label.padEnd(52)} ${min.toFixed(1).padStart(8)} ms wall, ${
      minCpu.toFixed(1).padStart(8)
    } ms cpu (result ${String(result)})`,
  );
  return min;
}

/** Records the longest gap between MessageChannel pings while `work` runs. */
async function maxStall(
  work: () => Promise<unknown>,
): Promise<
  {
    ms: number;
    stall: number;
    cpuStall: number;
    pings: number;
    result: unknown;
  }
> {
  const channel = new MessageChannel();
  let last = 0;
  let lastCpu = 0;
  let stall = 0;
  let cpuStall = 0;
  let pings = 0;
  let running = true;
  channel.port1.onmessage = () => {
    const t = performance.now();
    const c = threadCpuMs();
    if (t - last > stall) stall = t - last;
    if (c - lastCpu > cpuStall) cpuStall = c - lastCpu;
    last = t;
    lastCpu = c;
    pings++;
    if (running) channel.port2.postMessage(0);
  };
  gc();
  lastCpu = threadCpuMs();
  last = performance.now();
  const t0 = last;
  channel.port2.postMessage(0);
  const result = await work();
  const ms = performance.now() - t0;
  // One more ping so that a stall at the very end is counted.
  await new Promise<void>((resolve) => {
    const tail = new MessageChannel();
    tail.port1.onmessage = () => {
      tail.port1.close();
      resolve();
    };
    tail.port2.postMessage(0);
  });
  running = false;
  channel.port1.close();
  return { ms, stall, cpuStall, pings, result };
}

const filter = { city: "SF", age: { $gte: 30 } };

if (N > 0) {
  // The filter alone, over decoded documents in an array: what compiling
  // buys before storage and copies are counted.
  const docs = Array.from({ length: N }, (_, i) => doc(i));
  for (const mode of ["auto", "off"] as const) {
    const before = setCodeGeneration(mode);
    const p = compileFilter(filter);
    await best(
      `filter only, ${mode === "auto" ? "compiled" : "interpreted"}, x10`,
      10,
      () => {
        let n = 0;
        for (let i = 0; i < docs.length; i++) if (p(docs[i])) n++;
        return Promise.resolve(n);
      },
    );
    setCodeGeneration(before);
  }
}

if (N > 0) {
  await using db = await open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  const plain = db.collection("plain");
  const indexed = db.collection("indexed");
  await indexed.createIndex("age");
  for (let i = 0; i < N; i += 10_000) {
    const batch = [];
    for (let j = i; j < i + 10_000; j++) batch.push(doc(j));
    await plain.insertMany(batch);
    await indexed.insertMany(batch);
  }
  console.log(`# ${N} documents`);
  await best(
    "unindexed count({city:'SF', age:{$gte:30}}) x10",
    10,
    () => plain.count(filter),
  );
  await best("full scan for await", 1, async () => {
    let n = 0;
    for await (const _ of plain.find({})) n++;
    return n;
  });
  await best(
    "indexed find({age:42}).toArray() x50",
    50,
    async () => (await indexed.find({ age: 42 }).toArray()).length,
  );
}

if (BIG > 0) {
  await using db = await open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  const big = db.collection("big");
  for (let i = 0; i < BIG; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(BIG, i + 10_000); j++) batch.push(doc(j));
    await big.insertMany(batch);
  }
  console.log(`# ${BIG} documents, max loop stall (MessageChannel ping)`);
  for (
    const [label, work] of [
      ["find({}).toArray()", async () => (await big.find({}).toArray()).length],
      ["unindexed count(filter)", () => big.count(filter)],
    ] as const
  ) {
    await maxStall(work); // warm-up
    const runs = [];
    for (let r = 0; r < 3; r++) runs.push(await maxStall(work));
    const ms = Math.min(...runs.map((m) => m.ms));
    const stalls = runs.map((m) => m.stall.toFixed(1)).join(" / ");
    const cpu = runs.map((m) => m.cpuStall.toFixed(1)).join(" / ");
    console.log(
      `${label.padEnd(52)} ${
        ms.toFixed(0).padStart(8)
      } ms, max stall ${stalls} ms wall, ${cpu} ms thread cpu, ${
        runs[0]!.pings
      } pings (result ${String(runs[0]!.result)})`,
    );
  }
}
