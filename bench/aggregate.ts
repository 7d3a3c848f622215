/**
 * Aggregation scenario: a `$group` by device and hour (average, min and max
 * temperature) over 1,000,000 readings (100,000 with `--quick`), against
 * mingo's `Aggregator` on the same documents and a hand-written loop over
 * `db.find()`, in the same run, best of 3 each (round-robin).
 *
 * Targets (issue 16): at least 2x faster than mingo (counting the read
 * mingo needs: its input is the array `db.find().toArray()` gives; mingo
 * alone is reported beside it), and within 2x of the hand loop.
 *
 * Run alone: `deno run -A --v8-flags=--expose-gc,--max-old-space-size=8192
 * bench/aggregate.ts [--quick]`; in the suite: `deno task bench --only
 * aggregate`.
 *
 * @module
 */
import { Aggregator } from "mingo";
import { open } from "../mod.ts";
import type { WordTarget } from "./results.ts";

/** How the scenario is run. */
export interface AggregateBenchContext {
  /** 100,000 readings instead of 1,000,000. */
  readonly quick: boolean;
  /** Progress lines (stderr). */
  readonly log: (line: string) => void;
}

/** What the scenario measured. */
export interface AggregateReport {
  /** Readings grouped. */
  readonly readings: number;
  /** Groups out. */
  readonly groups: number;
  /** Best time of each case, ms. */
  readonly ms: {
    readonly aggregate: number;
    readonly handLoop: number;
    readonly read: number;
    readonly mingo: number;
  };
  /** The targets, in words. */
  readonly targets: WordTarget[];
  /** The markdown table. */
  readonly markdown: string;
}

const DEVICES = 100;
const ROUNDS = 3;
const PIPELINE = [{
  $group: {
    _id: {
      device: "$device",
      hour: { $dateTrunc: { date: "$at", unit: "hour" } },
    },
    avg: { $avg: "$temp" },
    lo: { $min: "$temp" },
    hi: { $max: "$temp" },
  },
}];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * Runs the scenario.
 *
 * @param ctx Size and log.
 * @returns Times, targets and a markdown table.
 */
export async function runAggregateBench(
  ctx: AggregateBenchContext,
): Promise<AggregateReport> {
  const n = ctx.quick ? 100_000 : 1_000_000;
  const base = Date.UTC(2026, 0, 1);
  await using db = await open();
  const docs = [];
  for (let i = 0; i < n; i++) {
    docs.push({
      device: `d${i % DEVICES}`,
      at: new Date(base + i * 1000),
      temp: 15 + (i % 97) / 10,
    });
  }
  for (let i = 0; i < n; i += 50_000) {
    await db.putBatch(docs.slice(i, i + 50_000));
  }
  docs.length = 0;
  const handLoop = async (): Promise<number> => {
    const m = new Map<
      string,
      { s: number; n: number; lo: number; hi: number }
    >();
    for await (const r of db.find()) {
      const d = r as { device: string; at: Date; temp: number };
      const k = `${d.device}|${Math.floor(d.at.getTime() / 3_600_000)}`;
      const g = m.get(k);
      if (g === undefined) {
        m.set(k, { s: d.temp, n: 1, lo: d.temp, hi: d.temp });
      } else {
        g.s += d.temp;
        g.n++;
        if (d.temp < g.lo) g.lo = d.temp;
        if (d.temp > g.hi) g.hi = d.temp;
      }
    }
    return m.size;
  };
  const best = {
    aggregate: Infinity,
    handLoop: Infinity,
    read: Infinity,
    mingo: Infinity,
  };
  let groups = -1;
  const check = (name: string, got: number) => {
    if (groups === -1) groups = got;
    if (got !== groups) {
      throw new Error(
        `aggregate bench: ${name} gave ${got} groups, not ${groups}`,
      );
    }
  };
  const time = async (f: () => Promise<number>): Promise<[number, number]> => {
    gc();
    const t0 = performance.now();
    const out = await f();
    return [performance.now() - t0, out];
  };
  for (let round = 0; round <= ROUNDS; round++) {
    const [a, ga] = await time(async () =>
      (await db.aggregate(PIPELINE).toArray()).length
    );
    check("db.aggregate", ga);
    const [h, gh] = await time(handLoop);
    check("the hand loop", gh);
    let arr: object[] = [];
    const [r] = await time(async () =>
      (arr = await db.find().toArray() as object[]).length
    );
    const [m, gm] = await time(() =>
      Promise.resolve(new Aggregator(PIPELINE).run(arr).length)
    );
    check("mingo", gm);
    arr = [];
    if (round === 0) continue; // warm-up
    best.aggregate = Math.min(best.aggregate, a);
    best.handLoop = Math.min(best.handLoop, h);
    best.read = Math.min(best.read, r);
    best.mingo = Math.min(best.mingo, m);
    ctx.log(
      `aggregate round ${round}: ours ${a.toFixed(0)} ms, hand loop ${
        h.toFixed(0)
      } ms, read ${r.toFixed(0)} ms + mingo ${m.toFixed(0)} ms`,
    );
  }
  const vsMingo = (best.read + best.mingo) / best.aggregate;
  const vsMingoAlone = best.mingo / best.aggregate;
  const vsLoop = best.aggregate / best.handLoop;
  const f = (x: number) =>
    x.toLocaleString("en-US", { maximumFractionDigits: 0 });
  const targets: WordTarget[] = [
    {
      name: `$group by device and hour over ${f(n)} readings vs mingo`,
      goal: "≥ 2.0x faster",
      measured: `${vsMingo.toFixed(2)}x (mingo alone, given the array: ${
        vsMingoAlone.toFixed(2)
      }x)`,
      met: vsMingo >= 2,
    },
    {
      name: "the same vs a hand-written loop over find()",
      goal: "≤ 2.0x the time",
      measured: `${vsLoop.toFixed(2)}x`,
      met: vsLoop <= 2,
    },
  ];
  const markdown = [
    `A \`$group\` by device and hour (\`$dateTrunc\`; \`$avg\`, \`$min\`, \`$max\` of the temperature) over ${
      f(n)
    } readings of ${DEVICES} devices in memory storage, giving ${
      f(groups)
    } groups; best of ${ROUNDS} after a warm-up.`,
    "",
    "| case | ms |",
    "| --- | ---: |",
    `| \`db.aggregate(pipeline).toArray()\` | ${f(best.aggregate)} |`,
    `| hand-written loop over \`db.find()\` | ${f(best.handLoop)} |`,
    `| \`db.find().toArray()\` (mingo's input) | ${f(best.read)} |`,
    `| mingo \`Aggregator.run\` on that array | ${f(best.mingo)} |`,
    "",
  ].join("\n");
  return { readings: n, groups, ms: best, targets, markdown };
}

if (import.meta.main) {
  const r = await runAggregateBench({
    quick: Deno.args.includes("--quick"),
    log: (l) => console.error(l),
  });
  console.log(r.markdown);
  for (const t of r.targets) {
    console.log(
      `${t.name}: ${t.measured} (goal ${t.goal}) ${t.met ? "PASS" : "MISS"}`,
    );
  }
}
