/**
 * Aggregation benchmark: a `$group` by device and hour (average, min, max
 * temperature) over N readings (default 1,000,000; `N=200000` to shorten),
 * against mingo's aggregate on the same documents and a hand-written loop,
 * in the same run.
 *
 * Run: deno run -A --v8-flags=--max-old-space-size=8192 bench/aggregate.ts
 */
import { Aggregator } from "mingo";
import { open } from "../mod.ts";

const N = Number(Deno.env.get("N") ?? 1_000_000);
const DEVICES = 100;
const base = Date.UTC(2026, 0, 1);
await using db = await open();
const docs = [];
for (let i = 0; i < N; i++) {
  docs.push({
    device: `d${i % DEVICES}`,
    at: new Date(base + i * 1000),
    temp: 15 + (i % 97) / 10,
  });
}
for (let i = 0; i < N; i += 50_000) {
  await db.putBatch(docs.slice(i, i + 50_000));
}

const pipeline = [{
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

async function time(name: string, f: () => Promise<number>): Promise<number> {
  const t0 = performance.now();
  const groups = await f();
  const ms = performance.now() - t0;
  console.log(
    `${name.padEnd(40)} ${ms.toFixed(0).padStart(7)} ms  (${groups} groups)`,
  );
  return ms;
}

const ours = await time(
  "db.aggregate",
  async () => (await db.aggregate(pipeline).toArray()).length,
);
const loop = await time("hand loop over db.find()", async () => {
  const m = new Map<string, { s: number; n: number; lo: number; hi: number }>();
  for await (const r of db.find()) {
    const d = r as { device: string; at: Date; temp: number };
    const k = `${d.device}|${Math.floor(d.at.getTime() / 3_600_000)}`;
    const g = m.get(k);
    if (g === undefined) m.set(k, { s: d.temp, n: 1, lo: d.temp, hi: d.temp });
    else {
      g.s += d.temp;
      g.n++;
      if (d.temp < g.lo) g.lo = d.temp;
      if (d.temp > g.hi) g.hi = d.temp;
    }
  }
  return m.size;
});
let arr: unknown[] = [];
const read = await time(
  "db.find().toArray() (mingo's input)",
  async () => (arr = await db.find().toArray()).length,
);
const mingo = await time(
  "mingo Aggregator on that array",
  () => Promise.resolve((new Aggregator(pipeline).run(arr as object[])).length),
);
console.log(
  `N=${N}: aggregate vs mingo (incl. its read): ${
    ((mingo + read) / ours).toFixed(2)
  }x faster; vs mingo alone ${(mingo / ours).toFixed(2)}x; vs hand loop: ${
    (ours / loop).toFixed(2)
  }x the time`,
);
