/**
 * A quick engine benchmark (memory storage, 100,000 documents
 * `{ name, age, city }`): put, get, putBatch of 1,000, indexed find, put with
 * two indexes, full scan, unindexed count. Best of 3 per case. Not the
 * comparison with the peers (that is `deno task bench`).
 *
 * Run: `deno run -A bench/quick_engine.ts [--n=100000] [--readonly]`
 * Profile: `deno run -A --cpu-prof --cpu-prof-dir=.tmp/prof bench/quick_engine.ts`
 *
 * @module
 */

import { open } from "../mod.ts";
import process from "node:process";

/** CPU time of this process, ms (less disturbed by a busy machine). */
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const N = Number(arg("n") ?? 100_000);
const ONLY = arg("only");
const READONLY = Deno.args.includes("--readonly");
const CITIES = ["NY", "LA", "SF", "CHI", "SEA", "BOS", "AUS", "MIA"];
const docs = Array.from({ length: N }, (_, i) => ({
  name: `user${i}`,
  age: (i * 7919) % 80,
  city: CITIES[(i * 31) % 8]!,
}));
const keys = docs.map((_, i) => `k${i}`);

async function best(
  name: string,
  ops: number,
  setup: () => Promise<unknown>,
  run: (ctx: never) => Promise<unknown>,
): Promise<void> {
  if (ONLY !== undefined && !name.startsWith(ONLY)) return;
  let bestMs = Infinity;
  let bestCpu = Infinity;
  for (let r = 0; r < 3; r++) {
    const ctx = await setup();
    const t = performance.now();
    const c = cpu();
    await run(ctx as never);
    const ms = performance.now() - t;
    const cms = cpu() - c;
    if (ms < bestMs) bestMs = ms;
    if (cms < bestCpu) bestCpu = cms;
    await (ctx as { close?: () => Promise<void> })?.close?.();
  }
  const rate = Math.round(ops / bestMs * 1000);
  const cpuRate = Math.round(ops / bestCpu * 1000);
  console.log(
    `${name.padEnd(30)} ${bestMs.toFixed(1).padStart(8)} ms ${
      rate.toLocaleString("en-US").padStart(10)
    } /s | cpu ${bestCpu.toFixed(1).padStart(8)} ms ${
      cpuRate.toLocaleString("en-US").padStart(10)
    } /s`,
  );
}

type Db = Awaited<ReturnType<typeof open>>;
const opts = READONLY ? { readonly: true } as Record<string, unknown> : {};

async function filled(indexes = false): Promise<Db> {
  const db = await open(opts);
  const c = indexes
    ? db.collection("u", { indexes: [{ fields: "age" }, { fields: "city" }] })
    : db.collection("u");
  for (let s = 0; s < N; s += 1000) {
    const batch = new Map<string, unknown>();
    for (let i = s; i < Math.min(N, s + 1000); i++) {
      batch.set(keys[i]!, docs[i]);
    }
    await c.putBatch(batch);
  }
  return db;
}

let putMs = 0;
await best("put", N, () => open(opts), async (db: Db) => {
  const t = performance.now();
  for (let i = 0; i < N; i++) await db.put(keys[i]!, docs[i]);
  putMs = performance.now() - t;
});
const plainPut = putMs;
await best(
  "put with 2 indexes",
  N,
  () => open(opts),
  async (db: Db) => {
    const c = db.collection("u", {
      indexes: [{ fields: "age" }, { fields: "city" }],
    });
    const t = performance.now();
    for (let i = 0; i < N; i++) await c.put(keys[i]!, docs[i]);
    putMs = performance.now() - t;
  },
);
if (ONLY === undefined) {
  console.log(
    `  (2-index put / plain put, last runs: ${(putMs / plainPut).toFixed(2)})`,
  );
}
await best("putBatch of 1,000", N, () => open(opts), async (db: Db) => {
  for (let s = 0; s < N; s += 1000) {
    const batch = new Map<string, unknown>();
    for (let i = s; i < s + 1000; i++) batch.set(keys[i]!, docs[i]);
    await db.putBatch(batch);
  }
});
const order = Array.from({ length: N }, (_, i) => (i * 48271) % N);
await best("get", N, () => filled(), async (db: Db) => {
  const c = db.collection("u");
  let found = 0;
  for (let i = 0; i < N; i++) {
    if ((await c.get(keys[order[i]!]!)) !== null) found++;
  }
  if (found !== N) throw new Error(`found ${found}`);
});
await best(
  "indexed find({age: 42}) x50",
  50,
  () => filled(true),
  async (db: Db) => {
    const c = db.collection("u");
    for (let r = 0; r < 50; r++) await c.find({ age: 42 }).toArray();
  },
);
await best("full scan for await", N, () => filled(), async (db: Db) => {
  let n = 0;
  for await (const _ of db.collection("u").find({})) n++;
  if (n !== N) throw new Error(`scanned ${n}`);
});
await best(
  "unindexed count x10",
  10,
  () => filled(),
  async (db: Db) => {
    const c = db.collection("u");
    for (let r = 0; r < 10; r++) {
      await c.count({ city: "SF", age: { $gte: 30 } });
    }
  },
);
