/**
 * Scenarios 5 and 6 of the memory scenario (bench/memory.ts): the TTL sweep
 * of 10,000 expired items among 1,000,000 (100,000 with `--quick`) against
 * a `Map` with an expiry field, LokiJS's TTL daemon and NeDB's TTL index,
 * and the event-loop stalls of scans of the same items.
 *
 * @module
 */

import { type Database, open } from "../mod.ts";
import {
  check,
  collectGarbage,
  fmtMs,
  measureStall,
  median,
  type Result,
  runCase,
} from "./harness.ts";
import { newLoki, newNeDB } from "./peers.ts";

/** One stall record of scenario 6. */
export interface MemoryStall {
  /** Which implementation. */
  readonly impl: string;
  /** What ran. */
  readonly op: string;
  /** Items scanned. */
  readonly items: number;
  /** Each recorded run's duration, ms. */
  readonly durationMs: number[];
  /** Each recorded run's longest gap, ms. */
  readonly maxStallMs: number[];
}

/** What scenarios 5 and 6 measured. */
export interface TtlReport {
  /** The TTL cases (and a full-scan count for comparison). */
  readonly ttl: Result[];
  /** The stall records. */
  readonly stalls: MemoryStall[];
  /** Notes (load times). */
  readonly notes: string[];
}

const WARMUP = 1;

function openOurs(clock?: { now(): number }): Promise<Database<unknown>> {
  // Infinity disables the timers.
  return open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
    ...(clock === undefined ? {} : { clock }),
  });
}

/**
 * Runs scenarios 5 and 6.
 *
 * @param ctx Sizes and output.
 * @returns The TTL results, stalls and notes.
 */
export async function runTtlBench(
  ctx: { readonly M: number; readonly log: (line: string) => void },
): Promise<TtlReport> {
  const { M, log } = ctx;
  const E = M / 100;
  const ttl: Result[] = [];
  const stalls: MemoryStall[] = [];
  const notes: string[] = [];
  // ---------------------------------------------------------------------------
  // 5 and 6. TTL sweep and event-loop stalls, over M items, one side at a time.
  const TTL_REPS = 5;
  const EXPIRE_EVERY = M / E;
  const SHORT_TTL = 1_000;
  const LONG_TTL = 86_400_000;
  const STALL_REPS = 3;
  interface Small {
    n: number;
    age: number;
  }
  const small = (i: number): Small => ({ n: i, age: i % 80 });
  const smallKey = (i: number) => `t${String(i).padStart(7, "0")}`;
  const isExpiring = (i: number) => i % EXPIRE_EVERY === 0;
  const expiringIds: number[] = [];
  for (let i = 0; i < M; i += EXPIRE_EVERY) expiringIds.push(i);

  async function stallCase(
    impl: string,
    op: string,
    items: number,
    work: () => unknown | Promise<unknown>,
    expect: number,
  ): Promise<void> {
    const durationMs: number[] = [];
    const maxStallMs: number[] = [];
    for (let i = 0; i < 1 + STALL_REPS; i++) {
      const r = await measureStall(work);
      check(
        r.result === expect,
        `${impl} ${op} gave ${r.result}, not ${expect}`,
      );
      if (i === 0) continue; // warm-up
      durationMs.push(r.ms);
      maxStallMs.push(r.maxGapMs);
    }
    log(
      `  ${impl} ${op}: ${fmtMs(median(durationMs))} ms, max stall ${
        fmtMs(median(maxStallMs))
      } ms`,
    );
    stalls.push({ impl, op, items, durationMs, maxStallMs });
  }

  async function oursSweep(
    total: number,
  ): Promise<{ db: Database<unknown> }> {
    let now = 1_700_000_000_000;
    const db = await openOurs({ now: () => now });
    const every = total / E;
    const ids: number[] = [];
    for (let i = 0; i < total; i += every) ids.push(i);
    const t0 = performance.now();
    const CHUNK = 10_000;
    for (let s = 0; s < total; s += CHUNK) {
      const batch = new Map<string, Small>();
      const ttl: number[] = [];
      for (let i = s; i < s + CHUNK; i++) {
        batch.set(smallKey(i), small(i));
        ttl.push(i % every === 0 ? SHORT_TTL : LONG_TTL);
      }
      await db.putBatch(batch, { ttl });
    }
    const loadMs = performance.now() - t0;
    log(`  loaded ${total} in ${fmtMs(loadMs)} ms`);
    notes.push(
      `Loading ${
        total.toLocaleString("en-US")
      } small items into ours with putBatch (10,000 per batch, all with a TTL) took ${
        fmtMs(loadMs)
      } ms.`,
    );
    check(db.stats().items === total, "ours TTL load");
    let first = true;
    ttl.push(
      await runCase(
        {
          impl: "ours",
          op: `await db.cleanup() (${E} expired of ${total})`,
          ops: E,
          setup: async () => {
            if (!first) {
              const batch = new Map<string, Small>();
              for (const i of ids) batch.set(smallKey(i), small(i));
              await db.putBatch(batch, { ttl: SHORT_TTL });
            }
            first = false;
            check(db.stats().items === total, "ours before sweep");
            now += SHORT_TTL + 1;
            check(db.stats().items === total - E, "ours expired are invisible");
          },
          run: async () => {
            const removed = await db.cleanup();
            check(removed === E, `ours cleanup removed ${removed}, not ${E}`);
          },
          teardown: () => {
            const s = db.stats();
            check(s.items === total - E, `ours after sweep: ${s.items} items`);
            check(s.ttlItems === total - E, `ours ttlItems ${s.ttlItems}`);
          },
        },
        WARMUP,
        TTL_REPS,
        log,
      ),
    );
    return { db };
  }

  {
    log(`# 5/6. ours: ${E} expiring among ${M / 10} and among ${M} items`);
    // The same sweep among 10x fewer items: if the sweep touched the other
    // items, its time would grow with them.
    const smaller = await oursSweep(M / 10);
    await smaller.db.close();
    collectGarbage();
    const { db } = await oursSweep(M);
    const scanned = await runCase(
      {
        impl: "ours",
        op: `await db.count({ age: { $gte: 0 } }) (full scan of ${M - E})`,
        ops: M - E,
        run: async () => {
          const n = await db.count({ age: { $gte: 0 } });
          check(n === M - E, `ours full scan counted ${n}`);
        },
      },
      WARMUP,
      3,
      log,
    );
    ttl.push(scanned);
    // Back to M visible items for the stall test.
    const back = new Map<string, Small>();
    for (const i of expiringIds) back.set(smallKey(i), small(i));
    await db.putBatch(back);
    check(db.stats().items === M, "ours refill");
    await stallCase(
      "ours",
      "await db.find({}).toArray()",
      M,
      async () => (await db.find({}).toArray()).length,
      M,
    );
    await stallCase(
      "ours",
      "for await (const v of db.find({ age: { $gte: 0 } })) n++",
      M,
      async () => {
        let n = 0;
        for await (const _ of db.find({ age: { $gte: 0 } })) n++;
        return n;
      },
      M,
    );
    await stallCase(
      "ours",
      "await db.count({ age: { $gte: 0 } })",
      M,
      () => db.count({ age: { $gte: 0 } }),
      M,
    );
    await db.close();
    collectGarbage();
  }

  {
    log(`# 5. Map with an expiry field: ${M} items`);
    let now = 1_700_000_000_000;
    const m = new Map<string, { value: Small; expiresAt: number }>();
    for (let i = 0; i < M; i++) {
      m.set(smallKey(i), {
        value: small(i),
        expiresAt: now + (isExpiring(i) ? SHORT_TTL : LONG_TTL),
      });
    }
    ttl.push(
      await runCase(
        {
          impl: "Map",
          op: `full pass deleting expired (${E} of ${M})`,
          ops: E,
          setup: () => {
            for (const i of expiringIds) {
              m.set(smallKey(i), {
                value: small(i),
                expiresAt: now + SHORT_TTL,
              });
            }
            now += SHORT_TTL + 1;
          },
          run: () => {
            let removed = 0;
            for (const [k, v] of m) {
              if (v.expiresAt <= now) {
                m.delete(k);
                removed++;
              }
            }
            check(
              removed === E && m.size === M - E,
              `Map sweep removed ${removed}`,
            );
          },
        },
        WARMUP,
        TTL_REPS,
        log,
      ),
    );
    m.clear();
    collectGarbage();
  }

  {
    log(`# 5/6. LokiJS: ${M} items`);
    const db = newLoki();
    const coll = db.addCollection<Small>("ttl");
    for (let s = 0; s < M; s += 10_000) {
      const batch: Small[] = [];
      for (let i = s; i < s + 10_000; i++) batch.push(small(i));
      coll.insert(batch);
    }
    // LokiJS's TTL compares meta.created (or meta.updated) with Date.now():
    // age the expiring documents by hand, then run the daemon the TTL timer
    // would run (setTTL(age, interval) starts a setInterval of it).
    const ageOut = () => {
      const old = Date.now() - 2 * 3_600_000;
      for (const doc of coll.data) {
        if (isExpiring(doc.n)) doc.meta.created = old;
      }
    };
    coll.setTTL(3_600_000, 2 ** 31 - 1);
    const daemon = coll.ttlDaemonFuncGen();
    coll.setTTL(-1, 0); // stop the timer; the daemon keeps its age
    let first = true;
    ttl.push(
      await runCase(
        {
          impl: "LokiJS",
          op: `TTL daemon (${E} expired of ${M})`,
          ops: E,
          setup: () => {
            if (!first) coll.insert(expiringIds.map(small));
            first = false;
            check(coll.count() === M, "LokiJS before sweep");
            ageOut();
          },
          run: () => daemon(),
          teardown: () => {
            const n = coll.count();
            check(n === M - E, `LokiJS after sweep: ${n} documents`);
          },
        },
        WARMUP,
        TTL_REPS,
        log,
      ),
    );
    coll.insert(expiringIds.map(small));
    check(coll.count() === M, "LokiJS refill");
    await stallCase(
      "LokiJS",
      "coll.find({ age: { $gte: 0 } })",
      M,
      () => coll.find({ age: { $gte: 0 } }).length,
      M,
    );
    db.close();
    collectGarbage();
  }

  {
    log(`# 5/6. NeDB: ${M} items`);
    const store = newNeDB();
    await store.ensureIndexAsync({ fieldName: "at", expireAfterSeconds: 3600 });
    const t0 = performance.now();
    const fresh = new Date();
    const old = new Date(Date.now() - 2 * 3_600_000);
    const doc = (i: number) => ({
      ...small(i),
      _id: smallKey(i),
      at: isExpiring(i) ? old : fresh,
    });
    for (let s = 0; s < M; s += 10_000) {
      const batch = [];
      for (let i = s; i < s + 10_000; i++) batch.push(doc(i));
      await store.insertAsync(batch);
    }
    log(`  loaded in ${fmtMs(performance.now() - t0)} ms`);
    let first = true;
    // NeDB removes expired documents lazily, when a read's candidates include
    // them; a read of everything (countAsync({})) visits all M.
    ttl.push(
      await runCase(
        {
          impl: "NeDB",
          op: `await countAsync({}) expiring ${E} of ${M} (TTL index)`,
          ops: E,
          setup: async () => {
            if (!first) await store.insertAsync(expiringIds.map(doc));
            first = false;
          },
          run: async () => {
            const n = await store.countAsync({});
            check(n === M - E, `NeDB counted ${n}`);
          },
          teardown: async () => {
            const n = await store.countAsync({});
            check(n === M - E, `NeDB after sweep: ${n}`);
          },
        },
        WARMUP,
        TTL_REPS,
        log,
      ),
    );
    ttl.push(
      await runCase(
        {
          impl: "NeDB",
          op: `await countAsync({}) with nothing to expire (${M - E})`,
          ops: M - E,
          run: async () => {
            const n = await store.countAsync({});
            check(n === M - E, `NeDB counted ${n}`);
          },
        },
        WARMUP,
        3,
        log,
      ),
    );
    await store.insertAsync(
      expiringIds.map((i) => ({ ...small(i), _id: smallKey(i), at: fresh })),
    );
    await stallCase(
      "NeDB",
      "await countAsync({ age: { $gte: 0 } })",
      M,
      () => store.countAsync({ age: { $gte: 0 } }),
      M,
    );
    collectGarbage();
  }
  return { ttl, stalls, notes };
}
