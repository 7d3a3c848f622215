/**
 * The memory scenario of `deno task bench` (`--only memory`, scenarios 1-6
 * of the older report): our memory storage against a `Map`, LokiJS, NeDB
 * and mingo on the full generated documents (with `score`, `tags`,
 * `address`): single puts, gets, batches, two unindexed full-scan queries,
 * the TTL sweep among 1,000,000 items and the event-loop stalls of a scan
 * of 1,000,000, against the same peers. The issue 14 targets are measured by
 * bench/engine.ts; the put and get targets this scenario had (put vs LokiJS
 * ≥ 3x, get vs NeDB ≥ 2.5x) are superseded by them and no longer judged
 * here.
 *
 * @module
 */

import { type Database, open } from "../mod.ts";
import { Query } from "mingo";
import { shuffledIndices, type UserDoc } from "./data.ts";
import {
  check,
  collectGarbage,
  fail,
  fmtMs,
  fmtOps,
  median,
  type Result,
  runCase,
} from "./harness.ts";
import { type MemoryStall, runTtlBench } from "./ttl.ts";
import {
  type LokiCollection,
  type LokiDb,
  type NeDBStore,
  newLoki,
  newNeDB,
} from "./peers.ts";

/** What the memory scenario needs. */
export interface MemoryBenchContext {
  /** The generated documents (not modified). */
  readonly docs: readonly UserDoc[];
  /** 10x smaller TTL and stall tests. */
  readonly quick: boolean;
  /** Progress output (stderr). */
  readonly log: (line: string) => void;
}

/** The outcome of the memory scenario. */
export interface MemoryReport {
  /** Documents, TTL items, expiring items, batch size. */
  readonly sizes: { N: number; M: number; E: number; batch: number };
  /** Results by group: put, get, batch, query, ttl. */
  readonly results: Record<string, Result[]>;
  /** Matches of each query on each side. */
  readonly queryCounts: Record<string, Record<string, number>>;
  /** The stall records. */
  readonly stalls: MemoryStall[];
  /** Notes (load times). */
  readonly notes: string[];
  /** Target rows. */
  readonly targets: Target[];
  /** The markdown sections 1-6. */
  readonly markdown: string;
}

/** A row of the Targets table. */
export interface Target {
  /** What is measured. */
  name: string;
  /** The goal. */
  goal: string;
  /** The measured value, in words. */
  measured: string;
  /** Whether the goal was met. */
  met: boolean;
}

const BATCH = 1_000;
const WARMUP = 1;
const REPS = 5;

type KeyedDoc = UserDoc & { key: string };

function openOurs(clock?: { now(): number }): Promise<Database<unknown>> {
  // Infinity disables the timers.
  return open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
    ...(clock === undefined ? {} : { clock }),
  });
}

/**
 * Runs scenarios 1-6.
 *
 * @param ctx Documents, size and output.
 * @returns Their results and markdown.
 */
export async function runMemoryBench(
  ctx: MemoryBenchContext,
): Promise<MemoryReport> {
  const { docs, log } = ctx;
  const N = docs.length;
  const M = ctx.quick ? 100_000 : 1_000_000;
  const E = M / 100;
  const keys = docs.map((_, i) => `k${i}`);
  const order = shuffledIndices(N, 7);
  const results: Record<string, Result[]> = {
    put: [],
    get: [],
    batch: [],
    query: [],
    ttl: [],
  };

  // ---------------------------------------------------------------------------
  // 1. Single puts. The last run of each side is kept for scenarios 2 and 4.
  log(`# 1. put: ${N} single inserts`);
  let ours!: Database<unknown>;
  let map!: Map<string, UserDoc>;
  let lokiPlain!: { db: LokiDb; coll: LokiCollection<UserDoc> };
  let lokiKeyed!: { db: LokiDb; coll: LokiCollection<KeyedDoc> };
  let nedb!: NeDBStore;

  results.put!.push(
    await runCase(
      {
        impl: "ours",
        op: "await db.put(key, doc)",
        ops: N,
        setup: () => openOurs(),
        run: async (db) => {
          for (let i = 0; i < N; i++) await db.put(keys[i]!, docs[i]);
        },
        teardown: async (db) => {
          check(db.stats().items === N, `ours holds ${db.stats().items} items`);
          if (ours !== undefined) await ours.close();
          ours = db;
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "Map",
        op: "map.set(key, structuredClone(doc))",
        ops: N,
        setup: () => new Map<string, UserDoc>(),
        run: (m) => {
          for (let i = 0; i < N; i++) {
            m.set(keys[i]!, structuredClone(docs[i]!));
          }
        },
        teardown: (m) => map = m,
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "Map (no copy)",
        op: "map.set(key, doc)",
        ops: N,
        setup: () => new Map<string, UserDoc>(),
        run: (m) => {
          for (let i = 0; i < N; i++) m.set(keys[i]!, docs[i]!);
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "LokiJS",
        op: "coll.insert({...doc})",
        ops: N,
        setup: () => {
          const db = newLoki();
          return { db, coll: db.addCollection<UserDoc>("users") };
        },
        run: ({ coll }) => {
          for (let i = 0; i < N; i++) coll.insert({ ...docs[i]! });
        },
        teardown: (s) => {
          check(s.coll.count() === N, "LokiJS count");
          lokiPlain?.db.close();
          lokiPlain = s;
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "LokiJS (unique key index)",
        op: "coll.insert({...doc, key})",
        ops: N,
        setup: () => {
          const db = newLoki();
          return {
            db,
            coll: db.addCollection<KeyedDoc>("users", { unique: ["key"] }),
          };
        },
        run: ({ coll }) => {
          for (let i = 0; i < N; i++) {
            coll.insert({ ...docs[i]!, key: keys[i]! });
          }
        },
        teardown: (s) => {
          lokiKeyed?.db.close();
          lokiKeyed = s;
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "NeDB",
        op: "await insertAsync({...doc, _id: key})",
        ops: N,
        setup: () => newNeDB(),
        run: async (store) => {
          for (let i = 0; i < N; i++) {
            await store.insertAsync({ ...docs[i]!, _id: keys[i]! });
          }
        },
        teardown: async (store) => {
          check(await store.countAsync({}) === N, "NeDB count");
          nedb = store;
        },
      },
      WARMUP,
      REPS,
      log,
    ),
  );

  // ---------------------------------------------------------------------------
  // 2. Lookups by key in a random order.
  log(`# 2. get: ${N} lookups by key, random order`);
  function checkFound(found: number, who: string): void {
    check(found === N, `${who} found ${found} of ${N} keys`);
  }
  results.get!.push(
    await runCase(
      {
        impl: "ours",
        op: "await db.get(key)",
        ops: N,
        run: async () => {
          let found = 0;
          for (let i = 0; i < N; i++) {
            const k = keys[order[i]!]!;
            if ((await ours.get(k) as UserDoc | null)?.name !== undefined) {
              found++;
            }
          }
          checkFound(found, "ours");
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "Map",
        op: "structuredClone(map.get(key))",
        ops: N,
        run: () => {
          let found = 0;
          for (let i = 0; i < N; i++) {
            const k = keys[order[i]!]!;
            if (structuredClone(map.get(k))?.name !== undefined) found++;
          }
          checkFound(found, "Map");
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "Map (no copy)",
        op: "map.get(key)",
        ops: N,
        run: () => {
          let found = 0;
          for (let i = 0; i < N; i++) {
            if (map.get(keys[order[i]!]!)?.name !== undefined) found++;
          }
          checkFound(found, "Map");
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "LokiJS",
        op: 'coll.by("key", key) (unique index)',
        ops: N,
        run: () => {
          let found = 0;
          for (let i = 0; i < N; i++) {
            const k = keys[order[i]!]!;
            if (lokiKeyed.coll.by("key", k)?.name !== undefined) found++;
          }
          checkFound(found, "LokiJS");
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "NeDB",
        op: "await findOneAsync({ _id: key })",
        ops: N,
        run: async () => {
          let found = 0;
          for (let i = 0; i < N; i++) {
            const k = keys[order[i]!]!;
            const doc = await nedb.findOneAsync({ _id: k }) as UserDoc | null;
            if (doc?.name !== undefined) found++;
          }
          checkFound(found, "NeDB");
        },
      },
      WARMUP,
      REPS,
      log,
    ),
  );
  lokiKeyed.db.close();

  // ---------------------------------------------------------------------------
  // 3. Batches of 1,000.
  log(`# 3. batch put: ${N} documents in batches of ${BATCH}`);
  results.batch!.push(
    await runCase(
      {
        impl: "ours",
        op: "await db.putBatch(Map of 1,000)",
        ops: N,
        setup: () => openOurs(),
        run: async (db) => {
          for (let s = 0; s < N; s += BATCH) {
            const batch = new Map<string, UserDoc>();
            for (let i = s; i < s + BATCH; i++) batch.set(keys[i]!, docs[i]!);
            await db.putBatch(batch);
          }
        },
        teardown: async (db) => {
          check(db.stats().items === N, "ours batch count");
          await db.close();
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "Map",
        op: "map.set(key, structuredClone(doc)) loop",
        ops: N,
        setup: () => new Map<string, UserDoc>(),
        run: (m) => {
          for (let s = 0; s < N; s += BATCH) {
            for (let i = s; i < s + BATCH; i++) {
              m.set(keys[i]!, structuredClone(docs[i]!));
            }
          }
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "LokiJS",
        op: "coll.insert(array of 1,000)",
        ops: N,
        setup: () => {
          const db = newLoki();
          return { db, coll: db.addCollection<UserDoc>("users") };
        },
        run: ({ coll }) => {
          for (let s = 0; s < N; s += BATCH) {
            const batch: UserDoc[] = [];
            for (let i = s; i < s + BATCH; i++) batch.push({ ...docs[i]! });
            coll.insert(batch);
          }
        },
        teardown: ({ db, coll }) => {
          check(coll.count() === N, "LokiJS batch count");
          db.close();
        },
      },
      WARMUP,
      REPS,
      log,
    ),
    await runCase(
      {
        impl: "NeDB",
        op: "await insertAsync(array of 1,000)",
        ops: N,
        setup: () => newNeDB(),
        run: async (store) => {
          for (let s = 0; s < N; s += BATCH) {
            const batch = [];
            for (let i = s; i < s + BATCH; i++) {
              batch.push({ ...docs[i]!, _id: keys[i]! });
            }
            await store.insertAsync(batch);
          }
        },
        teardown: async (store) => {
          check(await store.countAsync({}) === N, "NeDB batch count");
        },
      },
      WARMUP,
      REPS,
      log,
    ),
  );

  // ---------------------------------------------------------------------------
  // 4. Unindexed full-scan queries.
  const QUERIES: {
    name: string;
    filter: Record<string, unknown>;
    loki: Record<string, unknown>;
    predicate: (d: UserDoc) => boolean;
  }[] = [
    {
      name: 'Q1 { age: { $gt: 30 }, city: "NY" }',
      filter: { age: { $gt: 30 }, city: "NY" },
      loki: { age: { $gt: 30 }, city: "NY" },
      predicate: (d) => d.age > 30 && d.city === "NY",
    },
    {
      name:
        'Q2 { tags: { $in: ["red", "blue"] }, "address.zip": { $gte: 50000 } }',
      filter: {
        tags: { $in: ["red", "blue"] },
        "address.zip": { $gte: 50000 },
      },
      // LokiJS's $in does not look inside arrays; $containsAny is its spelling.
      loki: {
        tags: { $containsAny: ["red", "blue"] },
        "address.zip": { $gte: 50000 },
      },
      predicate: (d) =>
        (d.tags.includes("red") || d.tags.includes("blue")) &&
        d.address.zip >= 50000,
    },
  ];
  const QUERY_REPS = 7;
  log(`# 4. full-scan queries over ${N} documents`);
  const queryCounts: Record<string, Record<string, number>> = {};
  for (const q of QUERIES) {
    const counts: Record<string, number> = {};
    queryCounts[q.name] = counts;
    const record = (impl: string) => (n: number) => {
      counts[impl] = n;
    };
    const cases: {
      impl: string;
      op: string;
      run: () => Promise<number> | number;
    }[] = [
      {
        impl: "ours",
        op: "await db.query(filter)",
        run: async () => (await ours.query(q.filter)).length,
      },
      {
        impl: "ours (count)",
        op: "await db.count(filter)",
        run: () => ours.count(q.filter),
      },
      {
        impl: "mingo",
        op: "new Query(filter).find(docs).all()",
        run: () => new Query(q.filter).find(docs).all().length,
      },
      {
        impl: "LokiJS",
        op: "coll.find(filter)",
        run: () => lokiPlain.coll.find(q.loki).length,
      },
      {
        impl: "NeDB",
        op: "await findAsync(filter)",
        run: async () => (await nedb.findAsync(q.filter)).length,
      },
      {
        impl: "Array.filter",
        op: "docs.filter(handWrittenPredicate)",
        run: () => docs.filter(q.predicate).length,
      },
    ];
    log(`  ${q.name}`);
    for (const c of cases) {
      const set = record(c.impl);
      const r = await runCase(
        {
          impl: c.impl,
          op: c.op,
          ops: 1,
          run: async () => set(await c.run()),
        },
        WARMUP,
        QUERY_REPS,
        log,
      );
      results.query!.push({
        ...r,
        op: `${q.name}: ${c.op}`,
        extra: { query: q.name, matches: counts[c.impl]! },
      });
    }
    const distinct = new Set(Object.values(counts));
    if (distinct.size !== 1) {
      fail(`${q.name} returned different counts: ${JSON.stringify(counts)}`);
    }
  }
  map.clear();
  lokiPlain.db.close();
  await ours.close();
  // Nothing of sections 1-4 stays reachable through these variables into
  // the TTL and stall sections (100,000 full documents in four stores):
  // they start from a heap of their own (40 MiB used, measured there).
  map = undefined!;
  lokiPlain = undefined!;
  lokiKeyed = undefined!;
  nedb = undefined!;
  ours = undefined!;
  collectGarbage();

  // 5 and 6. TTL sweep and event-loop stalls (bench/ttl.ts).
  const { ttl, stalls, notes } = await runTtlBench({ M, log });
  results.ttl!.push(...ttl);

  function find(list: Result[], impl: string, op?: string): Result {
    const r = list.find((x) =>
      x.impl === impl && (op === undefined || x.op.startsWith(op))
    );
    if (r === undefined) fail(`no result for ${impl} ${op ?? ""}`);
    return r;
  }

  function ratioTable(list: Result[], unit: string): string {
    const base = list.find((r) => r.impl === "ours");
    const lines = [
      `| Implementation | Operation | median ms | min ms | median ${unit} | best ${unit} | ours ÷ this |`,
      "|---|---|--:|--:|--:|--:|--:|",
    ];
    for (const r of list) {
      const ratio = base === undefined || r === base
        ? "—"
        : `${(base.opsPerSec / r.opsPerSec).toFixed(2)}x`;
      lines.push(
        `| ${r.impl} | \`${r.op}\` | ${fmtMs(r.medianMs)} | ${
          fmtMs(r.minMs)
        } | ${fmtOps(r.opsPerSec)} | ${fmtOps(r.bestOpsPerSec)} | ${ratio} |`,
      );
    }
    return lines.join("\n");
  }

  interface Target {
    name: string;
    goal: string;
    measured: string;
    met: boolean;
  }
  const targets: Target[] = [];
  for (const q of QUERIES) {
    const mine = results.query!.find((r) =>
      r.impl === "ours" && r.extra?.query === q.name
    )!;
    const theirs = results.query!.find((r) =>
      r.impl === "mingo" && r.extra?.query === q.name
    )!;
    const ratio = mine.opsPerSec / theirs.opsPerSec;
    targets.push({
      name: `full-scan query vs mingo, ${q.name.slice(0, 2)}`,
      goal: "≥ 1x",
      measured: `${ratio.toFixed(2)}x (${fmtMs(mine.medianMs)} vs ${
        fmtMs(theirs.medianMs)
      } ms)`,
      met: ratio >= 1,
    });
  }
  {
    const sweep = find(
      results.ttl!,
      "ours",
      `await db.cleanup() (${E} expired of ${M})`,
    );
    const scan = find(results.ttl!, "ours", "await db.count");
    const ratio = scan.medianMs / sweep.medianMs;
    const tenth = find(
      results.ttl!,
      "ours",
      `await db.cleanup() (${E} expired of ${M / 10})`,
    );
    const growth = sweep.medianMs / tenth.medianMs;
    targets.push({
      name: `expire ${E.toLocaleString("en-US")} of ${
        M.toLocaleString("en-US")
      } without touching the rest`,
      goal:
        "cost set by the expired items, not the others: 10x more untouched items costs < 2x (a scan would cost 10x)",
      measured: `${fmtMs(tenth.medianMs)} ms among ${
        (M / 10).toLocaleString("en-US")
      } items, ${fmtMs(sweep.medianMs)} ms among ${
        M.toLocaleString("en-US")
      } (${growth.toFixed(2)}x); exactly ${E} removed and ${
        M - E
      } left every run; a full scan of the ${M - E} takes ${
        fmtMs(scan.medianMs)
      } ms (${ratio.toFixed(1)}x the sweep)`,
      met: growth < 2,
    });
  }
  for (const s of stalls.filter((s) => s.impl === "ours")) {
    const stall = median(s.maxStallMs);
    targets.push({
      name: `event loop: ${s.op} over ${s.items.toLocaleString("en-US")}`,
      goal: "max stall ≤ 20 ms",
      measured: `median max stall ${fmtMs(stall)} ms (worst ${
        fmtMs(Math.max(...s.maxStallMs))
      } ms) during a ${fmtMs(median(s.durationMs))} ms scan`,
      met: stall <= 20,
    });
  }
  const out: string[] = [];
  const p = (s = "") => out.push(s);
  p(`## 1. put: ${N.toLocaleString("en-US")} single inserts`);
  p();
  p(ratioTable(results.put!, "ops/s"));
  p();
  p(`## 2. get: ${N.toLocaleString("en-US")} lookups by key, random order`);
  p();
  p(ratioTable(results.get!, "ops/s"));
  p();
  p(
    `## 3. batch put: ${N.toLocaleString("en-US")} documents in batches of ${
      BATCH.toLocaleString("en-US")
    }`,
  );
  p();
  p(ratioTable(results.batch!, "docs/s"));
  p();
  p(
    `## 4. unindexed full-scan queries over ${
      N.toLocaleString("en-US")
    } documents`,
  );
  for (const q of QUERIES) {
    p();
    p(
      `### ${q.name} — ${queryCounts[q.name]!["ours"]} matches on every side`,
    );
    p();
    p(ratioTable(
      results.query!.filter((r) => r.extra?.query === q.name).map((r) => ({
        ...r,
        op: r.op.slice(q.name.length + 2),
      })),
      "queries/s",
    ));
  }
  p();
  p(
    `## 5. TTL: expiring ${E.toLocaleString("en-US")} of ${
      M.toLocaleString("en-US")
    } items`,
  );
  p();
  p("| Implementation | Operation | median ms | min ms | items/s at median |");
  p("|---|---|--:|--:|--:|");
  for (const r of results.ttl!) {
    p(
      `| ${r.impl} | \`${r.op}\` | ${fmtMs(r.medianMs)} | ${fmtMs(r.minMs)} | ${
        fmtOps(r.opsPerSec)
      } |`,
    );
  }
  p();
  p(`## 6. event-loop stalls during a scan of ${M.toLocaleString("en-US")}`);
  p();
  p(
    "| Implementation | Operation | median duration ms | median max stall ms | worst max stall ms |",
  );
  p("|---|---|--:|--:|--:|");
  for (const s of stalls) {
    p(
      `| ${s.impl} | \`${s.op}\` | ${fmtMs(median(s.durationMs))} | ${
        fmtMs(median(s.maxStallMs))
      } | ${fmtMs(Math.max(...s.maxStallMs))} |`,
    );
  }
  if (notes.length > 0) {
    p();
    for (const n of notes) p(`- ${n}`);
  }
  return {
    sizes: { N, M, E, batch: BATCH },
    results,
    queryCounts,
    stalls,
    notes,
    targets,
    markdown: out.join("\n"),
  };
}
