/**
 * Timing helpers: warm-up, repeated samples, median and min.
 *
 * @module
 */

/** The timings of one benchmarked operation. */
export interface Result {
  /** Which implementation ("ours", "LokiJS", ...). */
  readonly impl: string;
  /** What was run. */
  readonly op: string;
  /** Logical operations per sample (items put, lookups, queries...). */
  readonly ops: number;
  /** Each recorded sample, in ms (warm-up excluded). */
  readonly samples: number[];
  /** Median sample, ms. */
  readonly medianMs: number;
  /** Fastest sample, ms. */
  readonly minMs: number;
  /** `ops` per second at the median sample. */
  readonly opsPerSec: number;
  /** `ops` per second at the fastest sample. */
  readonly bestOpsPerSec: number;
  /** Anything measured alongside (result counts, stalls...). */
  readonly extra?: Record<string, number | string | boolean>;
}

/** One benchmark: set up (untimed), run (timed), tear down (untimed). */
export interface Case<S> {
  /** Which implementation. */
  readonly impl: string;
  /** What is run. */
  readonly op: string;
  /** Logical operations per run. */
  readonly ops: number;
  /** Builds the state of one run (untimed). */
  readonly setup?: () => S | Promise<S>;
  /** The timed work. */
  readonly run: (state: S) => unknown | Promise<unknown>;
  /** Releases the state or checks the outcome (untimed). */
  readonly teardown?: (state: S) => unknown | Promise<unknown>;
  /**
   * Collect garbage before each run (default `true`). Short queries turn it
   * off: after a forced full collection V8 regrows its young generation
   * over the next runs, and any side that allocates (LokiJS with `clone`
   * too) runs its next ~20 queries 2–10x slower than in a steady state.
   */
  readonly collect?: boolean;
}

/** Collects garbage when the runtime exposes `gc` (`--expose-gc`). */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) gc();
}

/**
 * How long a stall measurement waits after its forced full GC before it
 * starts: V8 sweeps the collected pages on helper threads after the pause,
 * and a run that allocates before they are done sweeps them itself on the
 * main thread (with a heap of ~900 MB on 2 cores, tens of ms landing in the
 * measured run). That is the harness's own `gc()`, not the code measured:
 * both sides get the same wait.
 */
export const SWEEP_SETTLE_MS = 300;

/**
 * Collects garbage (see {@linkcode collectGarbage}), then waits
 * {@linkcode SWEEP_SETTLE_MS} for the concurrent sweeping it started.
 *
 * @returns When the wait is over.
 */
export async function collectAndSettle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
  collectGarbage();
  await new Promise((r) => setTimeout(r, SWEEP_SETTLE_MS));
}

/**
 * The median of some numbers.
 *
 * @param xs The numbers (not empty).
 * @returns The median.
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Summarises samples.
 *
 * @param impl Implementation.
 * @param op Operation.
 * @param ops Operations per sample.
 * @param samples Samples in ms.
 * @param extra Anything else to keep.
 * @returns The result.
 */
export function summarise(
  impl: string,
  op: string,
  ops: number,
  samples: number[],
  extra?: Record<string, number | string | boolean>,
): Result {
  const medianMs = median(samples);
  const minMs = Math.min(...samples);
  return {
    impl,
    op,
    ops,
    samples,
    medianMs,
    minMs,
    opsPerSec: ops / (medianMs / 1000),
    bestOpsPerSec: ops / (minMs / 1000),
    ...(extra === undefined ? {} : { extra }),
  };
}

/**
 * Runs a case `warmup` times unrecorded, then `reps` times recorded.
 *
 * @param c The case.
 * @param warmup Unrecorded runs.
 * @param reps Recorded runs.
 * @param log Progress output.
 * @returns The result.
 */
export async function runCase<S>(
  c: Case<S>,
  warmup: number,
  reps: number,
  log: (line: string) => void,
): Promise<Result> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + reps; i++) {
    const state = c.setup === undefined ? undefined as S : await c.setup();
    if (c.collect !== false) collectGarbage();
    const t0 = performance.now();
    await c.run(state);
    const ms = performance.now() - t0;
    if (c.teardown !== undefined) await c.teardown(state);
    if (i >= warmup) samples.push(ms);
  }
  const r = summarise(c.impl, c.op, c.ops, samples);
  log(
    `  ${c.impl} ${c.op}: median ${r.medianMs.toFixed(1)} ms, ${
      fmtOps(r.opsPerSec)
    } ops/s`,
  );
  return r;
}

/**
 * Measures the longest gap between ticks of a 1 ms interval while `work`
 * runs: how long the event loop was blocked at a stretch.
 *
 * @param work The work (sync or async).
 * @returns The work's duration, the largest gap and the number of ticks.
 */
export async function measureStall(
  work: () => unknown | Promise<unknown>,
): Promise<{ ms: number; maxGapMs: number; ticks: number; result: unknown }> {
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  let running = false;
  const id = setInterval(() => {
    const t = performance.now();
    if (running) {
      maxGap = Math.max(maxGap, t - last);
      ticks++;
    }
    last = t;
  }, 1);
  await collectAndSettle();
  running = true;
  last = performance.now();
  const t0 = last;
  const result = await work();
  const ms = performance.now() - t0;
  // Let the interval fire once more so a stall at the very end is counted.
  await new Promise((r) => setTimeout(r, 5));
  running = false;
  clearInterval(id);
  return { ms, maxGapMs: maxGap, ticks, result };
}

/**
 * Formats ops/s with thousands separators.
 *
 * @param n Ops per second.
 * @returns The text.
 */
export function fmtOps(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/**
 * Formats milliseconds.
 *
 * @param ms Milliseconds.
 * @returns The text.
 */
export function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

/**
 * Runs several cases round-robin: warm-up rounds, then `reps` rounds in
 * which each case runs once, so a slow spell of a noisy machine hits every
 * case alike rather than the one that happened to be running.
 *
 * @param cases The cases (their states may differ).
 * @param warmup Unrecorded rounds.
 * @param reps Recorded rounds.
 * @param log Progress output.
 * @returns One result per case, in the order given.
 */
export async function runInterleaved(
  // deno-lint-ignore no-explicit-any
  cases: readonly Case<any>[],
  warmup: number,
  reps: number,
  log: (line: string) => void,
): Promise<Result[]> {
  const samples: number[][] = cases.map(() => []);
  for (let i = 0; i < warmup + reps; i++) {
    for (let j = 0; j < cases.length; j++) {
      const c = cases[j]!;
      const state = c.setup === undefined ? undefined : await c.setup();
      if (c.collect !== false) collectGarbage();
      const t0 = performance.now();
      await c.run(state);
      const ms = performance.now() - t0;
      if (c.teardown !== undefined) await c.teardown(state);
      if (i >= warmup) samples[j]!.push(ms);
    }
  }
  return cases.map((c, j) => {
    const r = summarise(c.impl, c.op, c.ops, samples[j]!);
    log(
      `  ${c.impl} ${c.op}: median ${r.medianMs.toFixed(1)} ms, ${
        fmtOps(r.opsPerSec)
      } ops/s`,
    );
    return r;
  });
}

/**
 * Stops a benchmark whose own check of its results failed.
 *
 * @param message What was wrong.
 */
export function fail(message: string): never {
  throw new Error(`Benchmark check failed: ${message}`);
}

/**
 * Checks a benchmark's result.
 *
 * @param ok Whether it is right.
 * @param message What is wrong otherwise.
 */
export function check(ok: boolean, message: string): void {
  if (!ok) fail(message);
}

/**
 * A whole number with thousands separators.
 *
 * @param x The number.
 * @returns E.g. "1,000,000".
 */
export const nf = (x: number): string => x.toLocaleString("en-US");

/**
 * Bytes in MB (10^6), one decimal.
 *
 * @param bytes The size.
 * @returns E.g. "20.1".
 */
export const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** What {@linkcode recordLoop} saw while some work ran. */
export interface LoopRecord {
  /** The work's duration, ms. */
  readonly ms: number;
  /** The largest gap between two ticks of a 1 ms interval, ms. */
  readonly maxGapMs: number;
  /** Ticks seen while the work ran. */
  readonly ticks: number;
  /** Each tick: `[ms since the work started, gap since the previous tick]`. */
  readonly points: [number, number][];
  /** What the work returned. */
  readonly result: unknown;
}

/**
 * Like {@linkcode measureStall}, and keeps every tick, so that the stalls
 * can be drawn as a timeline. With `"interval"` (the default) the probe is
 * a 1 ms `setInterval`, whose gap includes its own 1 ms (on an idle loop
 * Deno fires it every 1-2 ms): what a timer waits. With `"message"` it is a
 * `MessageChannel` ping: what a message turn waits (only gaps of 1 ms or
 * more are kept as points).
 *
 * @param work The work (sync or async).
 * @param probe What ticks: a 1 ms interval or a message ping.
 * @returns Its duration, the largest gap and every tick.
 */
export async function recordLoop(
  work: () => unknown | Promise<unknown>,
  probe: "interval" | "message" = "interval",
): Promise<LoopRecord> {
  let last = performance.now();
  let t0 = last;
  let maxGap = 0;
  let running = false;
  const points: [number, number][] = [];
  const round = (v: number) => Math.round(v * 100) / 100;
  const tick = () => {
    const t = performance.now();
    if (running) {
      const gap = t - last;
      if (gap > maxGap) maxGap = gap;
      // A message ping ticks every few µs: keep only gaps of 1 ms or more.
      if (probe === "interval" || gap >= 1) {
        points.push([round(t - t0), round(gap)]);
      }
    }
    last = t;
  };
  let stop: () => void;
  if (probe === "interval") {
    const id = setInterval(tick, 1);
    stop = () => clearInterval(id);
  } else {
    // A ping through a MessageChannel: each arrival posts the next, so the
    // gaps are how long other macrotasks (message turns) waited.
    const ch = new MessageChannel();
    let on = true;
    ch.port1.onmessage = () => {
      tick();
      if (on) ch.port2.postMessage(0);
    };
    ch.port2.postMessage(0);
    stop = () => {
      on = false;
      ch.port1.close();
      ch.port2.close();
    };
  }
  await collectAndSettle();
  running = true;
  last = performance.now();
  t0 = last;
  const result = await work();
  const ms = performance.now() - t0;
  // Let the interval fire once more so a stall at the very end is counted.
  await new Promise((r) => setTimeout(r, 5));
  running = false;
  stop();
  return { ms, maxGapMs: maxGap, ticks: points.length, points, result };
}

/**
 * The command that runs this Deno in a child process: its full path when
 * allowed, else `deno` by name (`deno task bench` allows only that).
 *
 * @returns The command.
 */
export function denoCommand(): string {
  return Deno.permissions.querySync({ name: "run", command: Deno.execPath() })
      .state === "granted"
    ? Deno.execPath()
    : "deno";
}
