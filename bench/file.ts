/**
 * Scenario 8 of `deno task bench`: the file storage (`open({ path })`)
 * against `node:sqlite` in WAL mode and raw Deno KV on a SQLite file, on the
 * same data in one run:
 *
 * - 8a. the scenario 1-4 documents inserted in batches of 1,000, each batch
 *   durable before the next (ours `durability: "strict"`, SQLite
 *   `synchronous=FULL` and `NORMAL`, one transaction per batch; Deno KV one
 *   `atomic()` per batch);
 * - 8b. 1,000 strict single puts started at once (group commit) against
 *   1,000 awaited one after the other, with the fsyncs each needed;
 * - 8c. reopening a file of 1,000,000 small documents (before and after
 *   `compact()`) against reading and parsing their NDJSON (the target), with
 *   SQLite and Deno KV reopens as context;
 * - 8d. file sizes against the JSON of the same documents.
 *
 * {@linkcode runFileBench} runs it and returns its results, targets and a
 * markdown section; `bench/main.ts` calls it last (or alone with
 * `--only=file`). Every file lives under one temporary directory, removed at
 * the end.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type Database, type FileStorageStats, open } from "../mod.ts";
import { FileStorage } from "../storage.ts";
import { mulberry32, type UserDoc } from "./data.ts";
import {
  type Case,
  check,
  collectGarbage,
  fail,
  fmtMs,
  fmtOps,
  mb,
  median,
  nf,
  type Result,
  runInterleaved,
  summarise,
} from "./harness.ts";

/** What scenario 8 needs from the main benchmark. */
export interface FileBenchContext {
  /** The generated documents of scenarios 1-4 (not modified). */
  readonly docs: readonly UserDoc[];
  /** `--quick`: 10x fewer concurrent puts and reopened documents. */
  readonly quick: boolean;
  /** Unrecorded runs per case. */
  readonly warmup: number;
  /** Recorded runs of the batch-insert cases. */
  readonly reps: number;
  /** Progress output (stderr). */
  readonly log: (line: string) => void;
}

/** A row of the Targets table (the same shape as `bench/main.ts`'s). */
export interface FileTarget {
  /** What is measured. */
  name: string;
  /** The goal. */
  goal: string;
  /** The measured value, in words. */
  measured: string;
  /** Whether the goal was met. */
  met: boolean;
}

/** One row of the file-size table. */
export interface SizeRow {
  /** Which data set ("100,000 user documents", ...). */
  readonly data: string;
  /** Documents in it. */
  readonly docs: number;
  /** What was measured ("ours file", "node:sqlite file", ...). */
  readonly what: string;
  /** Bytes. */
  readonly bytes: number;
}

/** The outcome of scenario 8. */
export interface FileReport {
  /** Documents of the batch inserts. */
  readonly n: number;
  /** Documents per batch. */
  readonly batch: number;
  /** Single puts of 8b. */
  readonly puts: number;
  /** Documents of the reopen test. */
  readonly reopenDocs: number;
  /** Median time of one 100-byte write + fdatasync on the temp directory's disk, ms. */
  readonly fdatasyncMs: number;
  /** Every timed case; `extra.group` says which table it belongs to. */
  readonly results: Result[];
  /** File sizes. */
  readonly sizes: SizeRow[];
  /** Rows for the Targets table. */
  readonly targets: FileTarget[];
  /** The report section, markdown, starting with its `##` heading. */
  readonly markdown: string;
}

const BATCH = 1_000;
/** Documents per `putBatch` / transaction when loading the reopen test. */
const LOAD_CHUNK = 10_000;
/** Deno KV's limit of mutations per atomic operation. */
const KV_MAX_MUTATIONS = 1_000;
/** Recorded runs of the short single-put cases (they last ~10-200 ms). */
const PUT_REPS = 11;
/** Recorded runs of the reopen cases. */
const REOPEN_REPS = 3;

/** The small documents of the reopen test. */
interface Reading {
  /** Its number. */
  n: number;
  /** One of 100 sensors. */
  name: string;
  /** A temperature, one decimal. */
  temp: number;
}

function makeReadings(n: number, seed = 11): Reading[] {
  const rnd = mulberry32(seed);
  const out: Reading[] = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      n: i,
      name: `sensor-${i % 100}`,
      temp: Math.round(rnd() * 400 - 100) / 10,
    };
  }
  return out;
}

function openFile(
  path: string,
  durability?: "strict" | "batched" | "none",
): Promise<Database<unknown>> {
  // The same timer settings as the other scenarios: no sweeper, no periodic
  // compaction (neither would run during a sample anyway).
  return open({
    path,
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
    ...(durability === undefined ? {} : { durability }),
  });
}

function fileStats(db: Database<unknown>): FileStorageStats {
  const s = db.stats().storageStats;
  if (s === undefined) fail("no storageStats on a file database");
  return s as unknown as FileStorageStats;
}

/** Bytes of a SQLite file plus its WAL, if one was left. */
async function sqliteBytes(path: string): Promise<number> {
  let total = 0;
  for (const p of [path, `${path}-wal`]) {
    try {
      total += (await Deno.stat(p)).size;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return total;
}

function openSqlite(
  path: string,
  synchronous: "FULL" | "NORMAL",
): DatabaseSync {
  const db = new DatabaseSync(path);
  const mode = db.prepare("PRAGMA journal_mode=WAL").get() as {
    journal_mode: string;
  };
  check(
    mode.journal_mode === "wal",
    `SQLite journal mode ${mode.journal_mode}`,
  );
  db.exec(`PRAGMA synchronous=${synchronous}`);
  db.exec(
    "CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
  );
  return db;
}

function sqliteCount(db: DatabaseSync): number {
  const row = db.prepare("SELECT count(*) AS n FROM docs").get() as {
    n: number;
  };
  return Number(row.n);
}

/**
 * Commits `entries` to Deno KV in atomic operations of up to 1,000 sets;
 * an operation that Deno KV refuses as too large (800 KiB) is split in two
 * and retried (a refused operation writes nothing).
 *
 * @returns How many splits were needed.
 */
async function kvCommit(
  kv: Deno.Kv,
  entries: readonly (readonly [Deno.KvKey, unknown])[],
): Promise<number> {
  if (entries.length > KV_MAX_MUTATIONS) {
    const half = entries.length >> 1;
    return 1 + await kvCommit(kv, entries.slice(0, half)) +
      await kvCommit(kv, entries.slice(half));
  }
  const op = kv.atomic();
  for (const [k, v] of entries) op.set(k, v);
  let result: Deno.KvCommitResult | Deno.KvCommitError;
  try {
    result = await op.commit();
  } catch (e) {
    if (entries.length === 1 || !(e instanceof TypeError)) throw e;
    const half = entries.length >> 1;
    return 1 + await kvCommit(kv, entries.slice(0, half)) +
      await kvCommit(kv, entries.slice(half));
  }
  check(result.ok, "Deno KV atomic commit failed");
  return 0;
}

async function kvCount(kv: Deno.Kv): Promise<number> {
  let n = 0;
  for await (const _ of kv.list({ prefix: ["docs"] }, { batchSize: 1000 })) {
    n++;
  }
  return n;
}

/** Median of one 100-byte append + fdatasync, 200 times, in `dir`. */
async function probeFdatasync(dir: string): Promise<number> {
  const path = `${dir}/fsync-probe`;
  const f = await Deno.open(path, { write: true, create: true });
  const bytes = new Uint8Array(100);
  const ms: number[] = [];
  try {
    for (let i = 0; i < 220; i++) {
      const t0 = performance.now();
      await f.write(bytes);
      await f.syncData();
      if (i >= 20) ms.push(performance.now() - t0);
    }
  } finally {
    f.close();
  }
  await Deno.remove(path);
  return median(ms);
}

/**
 * Runs scenario 8.
 *
 * @param ctx Documents, repetitions and logging.
 * @returns Results, sizes, targets, notes and the report section.
 */
export async function runFileBench(ctx: FileBenchContext): Promise<FileReport> {
  const { docs, warmup, reps, log } = ctx;
  const scale = ctx.quick ? 10 : 1;
  const N = docs.length;
  const C = 1_000 / scale;
  const R = 1_000_000 / scale;
  check(N % BATCH === 0 && N >= BATCH, `N = ${N} is not a multiple of 1,000`);
  const keys = docs.map((_, i) => `k${i}`);
  const results: Result[] = [];
  const sizes: SizeRow[] = [];
  const targets: FileTarget[] = [];
  const md: string[] = [];
  const p = (s = "") => md.push(s);

  const root = await Deno.makeTempDir({ prefix: "tether-bench-file-" });
  let sampleNo = 0;
  const freshDir = async (): Promise<string> => {
    const dir = `${root}/s${sampleNo++}`;
    await Deno.mkdir(dir);
    return dir;
  };
  const drop = (dir: string) => Deno.remove(dir, { recursive: true });

  try {
    const fdatasyncMs = await probeFdatasync(root);
    log(
      `# 8. file storage (temp dir ${root}); 100-byte write + fdatasync: ${
        fmtMs(fdatasyncMs)
      } ms`,
    );

    // -----------------------------------------------------------------------
    // 8a. N documents in batches of 1,000, each batch durable. The cases run
    // round-robin (one sample of each in turn), each sample on a new file.
    log(`# 8a. ${N} documents in batches of ${BATCH}, each batch durable`);
    const batchData = `${nf(N)} user documents`;
    const batchSize: Record<string, number> = {};
    const putBatchSyncs: number[] = [];
    const insertManySyncs: number[] = [];
    const kvSplits: number[] = [];
    const oursCase = (
      op: string,
      size: string,
      syncs: number[],
      write: (db: Database<unknown>) => Promise<void>,
    ): Case<{ dir: string; db: Database<unknown> }> => ({
      impl: "ours (strict)",
      op,
      ops: N,
      setup: async () => {
        const dir = await freshDir();
        return { dir, db: await openFile(`${dir}/db.tdb`, "strict") };
      },
      run: ({ db }) => write(db),
      teardown: async ({ dir, db }) => {
        const st = fileStats(db);
        check(st.keys === N, `ours holds ${st.keys} keys, not ${N}`);
        check(st.queued === 0, "ours has queued commits after strict");
        syncs.push(st.syncs);
        await db.close();
        batchSize[size] = (await Deno.stat(`${dir}/db.tdb`)).size;
        await drop(dir);
      },
    });
    const sqliteCase = (
      synchronous: "FULL" | "NORMAL",
    ): Case<{
      dir: string;
      path: string;
      db: DatabaseSync;
      insert: StatementSync;
    }> => ({
      impl: `node:sqlite (WAL, synchronous=${synchronous})`,
      op: "BEGIN; 1,000 × INSERT (id, JSON.stringify(doc)); COMMIT",
      ops: N,
      setup: async () => {
        const dir = await freshDir();
        const path = `${dir}/db.sqlite`;
        const db = openSqlite(path, synchronous);
        const insert = db.prepare("INSERT INTO docs (id, doc) VALUES (?, ?)");
        return { dir, path, db, insert };
      },
      run: ({ db, insert }) => {
        for (let s = 0; s < N; s += BATCH) {
          db.exec("BEGIN");
          for (let i = s; i < s + BATCH; i++) {
            insert.run(keys[i]!, JSON.stringify(docs[i]));
          }
          db.exec("COMMIT");
        }
      },
      teardown: async ({ dir, path, db }) => {
        const n = sqliteCount(db);
        check(n === N, `SQLite holds ${n} rows`);
        db.close();
        batchSize[`node:sqlite file (synchronous=${synchronous})`] =
          await sqliteBytes(path);
        await drop(dir);
      },
    });
    const kvCase: Case<
      { dir: string; path: string; kv: Deno.Kv; splits: number }
    > = {
      impl: "Deno KV (SQLite file)",
      op: 'await kv.atomic() with 1,000 × .set(["docs", id], doc)',
      ops: N,
      setup: async () => {
        const dir = await freshDir();
        const path = `${dir}/kv.sqlite`;
        return { dir, path, kv: await Deno.openKv(path), splits: 0 };
      },
      run: async (s) => {
        for (let b = 0; b < N; b += BATCH) {
          const entries: [Deno.KvKey, unknown][] = [];
          for (let i = b; i < b + BATCH; i++) {
            entries.push([["docs", keys[i]!], docs[i]]);
          }
          s.splits += await kvCommit(s.kv, entries);
        }
      },
      teardown: async ({ dir, path, kv, splits }) => {
        const n = await kvCount(kv);
        check(n === N, `Deno KV holds ${n} keys`);
        kv.close();
        kvSplits.push(splits);
        batchSize["Deno KV file"] = await sqliteBytes(path);
        await drop(dir);
      },
    };
    const batchRaw = await runInterleaved(
      [
        oursCase(
          "await db.putBatch(Map of 1,000)",
          "ours file, putBatch (keys k0, k1, ...)",
          putBatchSyncs,
          async (db) => {
            for (let s = 0; s < N; s += BATCH) {
              const batch = new Map<string, UserDoc>();
              for (let i = s; i < s + BATCH; i++) {
                batch.set(keys[i]!, docs[i]!);
              }
              await db.putBatch(batch);
            }
          },
        ),
        oursCase(
          'await db.collection("docs").insertMany(1,000 docs)',
          "ours file, insertMany (generated _id)",
          insertManySyncs,
          async (db) => {
            const c = db.collection<UserDoc>("docs");
            for (let s = 0; s < N; s += BATCH) {
              await c.insertMany(docs.slice(s, s + BATCH));
            }
          },
        ),
        sqliteCase("FULL"),
        sqliteCase("NORMAL"),
        kvCase,
        {
          // The same writes with no file at all: what the engine costs.
          impl: "ours (memory storage, no file)",
          op: "await db.putBatch(Map of 1,000)",
          ops: N,
          setup: () =>
            open({ ttlCheckInterval: Infinity, cleanupInterval: Infinity }),
          run: async (db: Database<unknown>) => {
            for (let s = 0; s < N; s += BATCH) {
              const batch = new Map<string, UserDoc>();
              for (let i = s; i < s + BATCH; i++) {
                batch.set(keys[i]!, docs[i]!);
              }
              await db.putBatch(batch);
            }
          },
          teardown: async (db: Database<unknown>) => {
            check(db.stats().items === N, "ours (memory) count");
            await db.close();
          },
        },
      ],
      warmup,
      reps,
      log,
    );
    const batchResult = (i: number, extra: Record<string, number> = {}) => {
      const r: Result = {
        ...batchRaw[i]!,
        extra: { group: "batch", ...extra },
      };
      results.push(r);
      return r;
    };
    const oursBatch = batchResult(0, { syncs: median(putBatchSyncs) });
    const oursMany = batchResult(1, { syncs: median(insertManySyncs) });
    const sqlFull = batchResult(2);
    const sqlNormal = batchResult(3);
    const kvBatch = batchResult(4, { splits: Math.max(...kvSplits) });
    const memBatch = batchResult(5);
    const docsJson = new TextEncoder().encode(JSON.stringify(docs)).length;
    sizes.push({
      data: batchData,
      docs: N,
      what: "JSON.stringify(all documents)",
      bytes: docsJson,
    });
    for (const [what, bytes] of Object.entries(batchSize)) {
      sizes.push({ data: batchData, docs: N, what, bytes });
    }

    // -----------------------------------------------------------------------
    // 8b. C strict single puts: all at once (group commit) vs one by one,
    // round-robin, each sample on a new file.
    log(`# 8b. ${C} strict single puts: concurrent vs sequential`);
    const seqSyncs: number[] = [];
    const conSyncs: number[] = [];
    const putCase = (
      impl: string,
      op: string,
      syncs: number[],
      write: (db: Database<unknown>) => Promise<unknown>,
    ): Case<{ dir: string; db: Database<unknown>; before: number }> => ({
      impl,
      op,
      ops: C,
      setup: async () => {
        const dir = await freshDir();
        const db = await openFile(`${dir}/db.tdb`, "strict");
        return { dir, db, before: fileStats(db).syncs };
      },
      run: ({ db }) => write(db),
      teardown: async ({ dir, db, before }) => {
        const st = fileStats(db);
        check(st.keys === C, `ours holds ${st.keys} keys, not ${C}`);
        syncs.push(st.syncs - before);
        await db.close();
        await drop(dir);
      },
    });
    const [seqRaw, conRaw, memRaw] = await runInterleaved(
      [
        putCase(
          "ours (strict), sequential",
          "for (…) await db.put(key, doc)",
          seqSyncs,
          async (db) => {
            for (let i = 0; i < C; i++) await db.put(keys[i]!, docs[i]);
          },
        ),
        putCase(
          "ours (strict), concurrent",
          `await Promise.all(${nf(C)} × db.put(key, doc))`,
          conSyncs,
          (db) => {
            const all: Promise<unknown>[] = new Array(C);
            for (let i = 0; i < C; i++) all[i] = db.put(keys[i]!, docs[i]);
            return Promise.all(all);
          },
        ),
        {
          // The same puts with no file: the engine's share.
          impl: "ours (memory storage, no file), concurrent",
          op: `await Promise.all(${nf(C)} × db.put(key, doc))`,
          ops: C,
          setup: () =>
            open({ ttlCheckInterval: Infinity, cleanupInterval: Infinity }),
          run: (db: Database<unknown>) => {
            const all: Promise<unknown>[] = new Array(C);
            for (let i = 0; i < C; i++) all[i] = db.put(keys[i]!, docs[i]);
            return Promise.all(all);
          },
          teardown: async (db: Database<unknown>) => {
            check(db.stats().items === C, "ours (memory) puts");
            await db.close();
          },
        },
      ],
      warmup + 1,
      PUT_REPS,
      log,
    ) as [Result, Result, Result];
    const withSyncs = (r: Result, syncs: number[]): Result => {
      log(
        `    ${r.impl}: fsyncs per run median ${median(syncs)}, ${
          Math.min(...syncs)
        }-${Math.max(...syncs)}`,
      );
      return {
        ...r,
        extra: {
          group: "puts",
          syncs: median(syncs),
          minSyncs: Math.min(...syncs),
          maxSyncs: Math.max(...syncs),
        },
      };
    };
    const seq = withSyncs(seqRaw, seqSyncs);
    const con = withSyncs(conRaw, conSyncs);
    const memPuts: Result = { ...memRaw, extra: { group: "puts" } };
    results.push(seq, con, memPuts);

    // -----------------------------------------------------------------------
    // 8c. Reopen R small documents.
    log(`# 8c. reopen: ${R} small documents`);
    const readings = makeReadings(R);
    const rkey = (i: number) => `r${String(i).padStart(7, "0")}`;
    const mid = R >> 1;
    const reopenData = `${nf(R)} small documents`;
    const load = (
      impl: string,
      op: string,
      ms: number,
    ) => {
      results.push({
        ...summarise(impl, op, R, [ms]),
        extra: { group: "load" },
      });
      log(`  ${impl} ${op}: ${fmtMs(ms)} ms`);
    };
    const reopen = async (
      impl: string,
      op: string,
      bytes: number,
      run: () => Promise<{ openMs: number; getMs: number; replayMs?: number }>,
    ): Promise<Result> => {
      const total: number[] = [];
      const opens: number[] = [];
      const gets: number[] = [];
      const replays: number[] = [];
      for (let i = 0; i < warmup + REOPEN_REPS; i++) {
        collectGarbage();
        const { openMs, getMs, replayMs } = await run();
        if (i < warmup) continue;
        total.push(openMs + getMs);
        opens.push(openMs);
        gets.push(getMs);
        if (replayMs !== undefined) replays.push(replayMs);
      }
      const r: Result = {
        ...summarise(impl, op, R, total),
        extra: {
          group: "reopen",
          openMs: median(opens),
          firstGetMs: median(gets),
          fileBytes: bytes,
          ...(replays.length === 0 ? {} : { replayMs: median(replays) }),
        },
      };
      results.push(r);
      log(
        `  ${impl} ${op}: median ${fmtMs(r.medianMs)} ms (open ${
          fmtMs(median(opens))
        }, first get ${fmtMs(median(gets))})`,
      );
      return r;
    };
    const dir = await freshDir();
    const ourPath = `${dir}/readings.tdb`;
    {
      collectGarbage();
      const t0 = performance.now();
      const db = await openFile(ourPath, "batched");
      for (let s = 0; s < R; s += LOAD_CHUNK) {
        const batch = new Map<string, Reading>();
        for (let i = s; i < s + LOAD_CHUNK; i++) {
          batch.set(rkey(i), readings[i]!);
        }
        await db.putBatch(batch);
      }
      await db.close();
      load(
        "ours (batched)",
        `putBatch(Map of ${nf(LOAD_CHUNK)}) × ${R / LOAD_CHUNK}, then close()`,
        performance.now() - t0,
      );
    }
    const ourBytes = (await Deno.stat(ourPath)).size;
    const checkReading = (v: unknown, who: string) => {
      const r = v as Reading | null;
      check(
        r !== null && r.n === mid && r.name === readings[mid]!.name &&
          r.temp === readings[mid]!.temp,
        `${who} read back ${JSON.stringify(v)} for ${rkey(mid)}`,
      );
    };
    const reopenOurs = async () => {
      const t0 = performance.now();
      const db = await openFile(ourPath);
      const t1 = performance.now();
      const v = await db.get(rkey(mid));
      const t2 = performance.now();
      checkReading(v, "ours");
      check(db.stats().items === R, `ours reopened ${db.stats().items} items`);
      await db.close();
      return { openMs: t1 - t0, getMs: t2 - t1 };
    };
    const oursReopen = await reopen(
      "ours",
      "await open({ path }); await db.get(key)",
      ourBytes,
      reopenOurs,
    );
    // The same open in two timed steps: the storage's log replay, then the
    // engine's load over the storage's entries.
    const split = await reopen(
      "ours, in two steps",
      "await open({ storage: await FileStorage.open(path) }); await db.get(key)",
      ourBytes,
      async () => {
        const t0 = performance.now();
        const storage = await FileStorage.open(ourPath);
        const t1 = performance.now();
        const db = await open({
          storage,
          ttlCheckInterval: Infinity,
          cleanupInterval: Infinity,
        });
        const t2 = performance.now();
        const v = await db.get(rkey(mid));
        const t3 = performance.now();
        checkReading(v, "ours");
        check(db.stats().items === R, `ours reopened ${db.stats().items}`);
        await db.close();
        return { openMs: t2 - t0, getMs: t3 - t2, replayMs: t1 - t0 };
      },
    );
    let compactMs: number;
    let liveBytes: number;
    {
      const db = await openFile(ourPath);
      const t0 = performance.now();
      const rewrote = await db.compact();
      compactMs = performance.now() - t0;
      check(rewrote, "compact() did not rewrite");
      liveBytes = fileStats(db).liveBytes;
      await db.close();
      log(`  ours compact(): ${fmtMs(compactMs)} ms`);
    }
    const compactedBytes = (await Deno.stat(ourPath)).size;
    const oursCompacted = await reopen(
      "ours, after compact()",
      "await open({ path }); await db.get(key)",
      compactedBytes,
      reopenOurs,
    );
    await drop(dir);

    // SQLite: the same documents, WAL, a transaction per 10,000.
    const sqlDir = await freshDir();
    const sqlPath = `${sqlDir}/readings.sqlite`;
    {
      collectGarbage();
      const t0 = performance.now();
      const db = openSqlite(sqlPath, "NORMAL");
      const insert = db.prepare("INSERT INTO docs (id, doc) VALUES (?, ?)");
      for (let s = 0; s < R; s += LOAD_CHUNK) {
        db.exec("BEGIN");
        for (let i = s; i < s + LOAD_CHUNK; i++) {
          insert.run(rkey(i), JSON.stringify(readings[i]));
        }
        db.exec("COMMIT");
      }
      check(sqliteCount(db) === R, "SQLite reopen-test rows");
      db.close();
      load(
        "node:sqlite (WAL, synchronous=NORMAL)",
        `a transaction of ${nf(LOAD_CHUNK)} INSERTs × ${
          R / LOAD_CHUNK
        }, then close()`,
        performance.now() - t0,
      );
    }
    const sqlBytes = await sqliteBytes(sqlPath);
    const sqliteReopen = await reopen(
      "node:sqlite",
      "new DatabaseSync(path); SELECT doc WHERE id = ?; JSON.parse",
      sqlBytes,
      () => {
        const t0 = performance.now();
        const db = new DatabaseSync(sqlPath);
        const t1 = performance.now();
        const row = db.prepare("SELECT doc FROM docs WHERE id = ?").get(
          rkey(mid),
        ) as { doc: string } | undefined;
        const v = row === undefined ? null : JSON.parse(row.doc);
        const t2 = performance.now();
        checkReading(v, "SQLite");
        db.close();
        return Promise.resolve({ openMs: t1 - t0, getMs: t2 - t1 });
      },
    );
    await drop(sqlDir);

    // Deno KV: the same documents, atomic operations of 1,000.
    const kvDir = await freshDir();
    const kvPath = `${kvDir}/readings.sqlite`;
    {
      collectGarbage();
      const t0 = performance.now();
      const kv = await Deno.openKv(kvPath);
      let splits = 0;
      for (let s = 0; s < R; s += KV_MAX_MUTATIONS) {
        const entries: [Deno.KvKey, unknown][] = [];
        for (let i = s; i < s + KV_MAX_MUTATIONS; i++) {
          entries.push([["docs", rkey(i)], readings[i]]);
        }
        splits += await kvCommit(kv, entries);
      }
      kv.close();
      check(splits === 0, `Deno KV needed ${splits} splits`);
      load(
        "Deno KV",
        `kv.atomic() of 1,000 sets × ${R / KV_MAX_MUTATIONS}, then close()`,
        performance.now() - t0,
      );
    }
    const kvBytes = await sqliteBytes(kvPath);
    const kvReopen = await reopen(
      "Deno KV",
      'await Deno.openKv(path); await kv.get(["docs", id])',
      kvBytes,
      async () => {
        const t0 = performance.now();
        const kv = await Deno.openKv(kvPath);
        const t1 = performance.now();
        const e = await kv.get(["docs", rkey(mid)]);
        const t2 = performance.now();
        checkReading(e.value, "Deno KV");
        kv.close();
        return { openMs: t1 - t0, getMs: t2 - t1 };
      },
    );
    await drop(kvDir);

    // NDJSON: the same documents with their `_id`, read and parsed whole
    // (what a reopen is compared with: issue 15's target).
    const ndDir = await freshDir();
    const ndPath = `${ndDir}/readings.ndjson`;
    {
      const lines: string[] = [];
      for (let i = 0; i < R; i++) {
        lines.push(JSON.stringify({ _id: rkey(i), ...readings[i] }));
      }
      await Deno.writeTextFile(ndPath, lines.join("\n") + "\n");
    }
    const ndBytes = (await Deno.stat(ndPath)).size;
    const ndjsonReopen = await reopen(
      "NDJSON",
      "Deno.readTextFile(path); JSON.parse of each line into a Map by _id; map.get(key)",
      ndBytes,
      async () => {
        const t0 = performance.now();
        const text = await Deno.readTextFile(ndPath);
        const byId = new Map<string, unknown>();
        let at = 0;
        while (at < text.length) {
          let end = text.indexOf("\n", at);
          if (end < 0) end = text.length;
          if (end > at) {
            const doc = JSON.parse(text.slice(at, end)) as { _id: string };
            byId.set(doc._id, doc);
          }
          at = end + 1;
        }
        const t1 = performance.now();
        const v = byId.get(rkey(mid)) ?? null;
        const t2 = performance.now();
        check(byId.size === R, `NDJSON read ${byId.size} documents`);
        checkReading(v, "NDJSON");
        return { openMs: t1 - t0, getMs: t2 - t1 };
      },
    );
    await drop(ndDir);

    const readingsJson =
      new TextEncoder().encode(JSON.stringify(readings)).length;
    sizes.push(
      {
        data: reopenData,
        docs: R,
        what: "JSON.stringify(all documents)",
        bytes: readingsJson,
      },
      { data: reopenData, docs: R, what: "ours file", bytes: ourBytes },
      {
        data: reopenData,
        docs: R,
        what: "ours file after compact()",
        bytes: compactedBytes,
      },
      {
        data: reopenData,
        docs: R,
        what: "ours live keys + values (stats liveBytes)",
        bytes: liveBytes,
      },
      { data: reopenData, docs: R, what: "NDJSON with _id", bytes: ndBytes },
      { data: reopenData, docs: R, what: "node:sqlite file", bytes: sqlBytes },
      { data: reopenData, docs: R, what: "Deno KV file", bytes: kvBytes },
    );

    // -----------------------------------------------------------------------
    // Targets.
    const batchTarget = (peer: Result, goal: number, label: string) => {
      const ratio = oursBatch.opsPerSec / peer.opsPerSec;
      const many = oursMany.opsPerSec / peer.opsPerSec;
      targets.push({
        name: `${nf(N)} docs in batches of 1,000, strict, vs ${label}`,
        goal: `≥ ${goal}x`,
        measured: `${ratio.toFixed(2)}x (${fmtOps(oursBatch.opsPerSec)} vs ${
          fmtOps(peer.opsPerSec)
        } docs/s, putBatch; insertMany ${many.toFixed(2)}x; ${
          ratio >= goal
            ? "met"
            : `needs ${(goal / ratio).toFixed(2)}x faster batches to meet it`
        })`,
        met: ratio >= goal,
      });
    };
    batchTarget(sqlFull, 1, "node:sqlite WAL synchronous=FULL");
    batchTarget(kvBatch, 2, "Deno KV atomic()");
    const reopenRatio = oursReopen.minMs / ndjsonReopen.minMs;
    targets.push({
      name: `reopen ${nf(R)} documents vs reading and parsing their NDJSON`,
      goal: "≤ 1.0x the time",
      measured: `${reopenRatio.toFixed(2)}x (${fmtMs(oursReopen.minMs)} vs ${
        fmtMs(ndjsonReopen.minMs)
      } ms, best of ${REOPEN_REPS}; file ${
        (ourBytes / ndBytes).toFixed(2)
      }x the NDJSON's ${nf(ndBytes)} bytes)`,
      met: reopenRatio <= 1,
    });
    const putRatio = con.opsPerSec / seq.opsPerSec;
    targets.push({
      name: `${nf(C)} concurrent strict puts vs ${nf(C)} sequential`,
      goal: "≥ 20x",
      measured: `${putRatio.toFixed(1)}x (${fmtMs(con.medianMs)} vs ${
        fmtMs(seq.medianMs)
      } ms; fsyncs ${con.extra!.syncs} vs ${seq.extra!.syncs}; one fdatasync ${
        fmtMs(fdatasyncMs)
      } ms on this disk)`,
      met: putRatio >= 20,
    });

    // -----------------------------------------------------------------------
    // Report.
    p(`## 8. File storage: ${nf(N)} documents, ${nf(R)} for reopening`);
    p();
    p(
      `Ours is \`open({ path, durability })\` (an append-only log, FORMAT.md). node:sqlite is Deno's built-in SQLite (\`DatabaseSync\`), table \`docs (id TEXT PRIMARY KEY, doc TEXT)\` holding \`JSON.stringify(doc)\`, \`journal_mode=WAL\`. Deno KV is \`Deno.openKv(path)\` on a local SQLite file. Every sample writes a new file in a temporary directory. In 8a and 8b the cases run round-robin (one sample of each in turn), so a slow spell of the machine hits every side alike. One 100-byte append + \`fdatasync\` there takes ${
        fmtMs(fdatasyncMs)
      } ms (median of 200).`,
    );
    p();
    p(
      `### 8a. ${nf(N)} documents in ${
        N / BATCH
      } batches of 1,000, each durable before the next`,
    );
    p();
    p(
      "| Implementation | Operation | median ms | min ms | median docs/s | best docs/s | ours ÷ this |",
    );
    p("|---|---|--:|--:|--:|--:|--:|");
    for (const r of results.filter((r) => r.extra?.group === "batch")) {
      const ratio = r === oursBatch
        ? "—"
        : `${(oursBatch.opsPerSec / r.opsPerSec).toFixed(2)}x`;
      p(
        `| ${r.impl} | \`${r.op}\` | ${fmtMs(r.medianMs)} | ${
          fmtMs(r.minMs)
        } | ${fmtOps(r.opsPerSec)} | ${fmtOps(r.bestOpsPerSec)} | ${ratio} |`,
      );
    }
    p();
    p(
      `Ours did ${
        median(putBatchSyncs)
      } fsyncs per run of putBatch (one per batch). Deno KV needed ${
        Math.max(...kvSplits)
      } split batches (1,000 mutations and 800 KiB per atomic operation are its limits). ${warmup} warm-up and ${reps} timed rounds. "ours ÷ this" compares with the putBatch row. In WAL mode \`synchronous=NORMAL\` does not fsync at each commit (a power cut can lose the last ones), so the durable comparison is with FULL; ours is ${
        (oursBatch.opsPerSec / sqlNormal.opsPerSec).toFixed(2)
      }x NORMAL. The memory-storage row is the same putBatch with no file: the engine alone reaches ${
        fmtOps(memBatch.opsPerSec)
      } docs/s, ${
        (memBatch.opsPerSec / sqlFull.opsPerSec).toFixed(2)
      }x SQLite FULL.`,
    );
    p();
    p(`### 8b. ${nf(C)} strict single puts`);
    p();
    p(
      "| Implementation | Operation | median ms | min ms | median puts/s | best puts/s | fsyncs per run (median, range) |",
    );
    p("|---|---|--:|--:|--:|--:|--:|");
    for (const r of [seq, con, memPuts]) {
      p(
        `| ${r.impl} | \`${r.op}\` | ${fmtMs(r.medianMs)} | ${
          fmtMs(r.minMs)
        } | ${fmtOps(r.opsPerSec)} | ${fmtOps(r.bestOpsPerSec)} | ${
          r === memPuts
            ? "—"
            : `${r.extra!.syncs} (${r.extra!.minSyncs}-${r.extra!.maxSyncs})`
        } |`,
      );
    }
    p();
    p(
      `Concurrent ÷ sequential: ${putRatio.toFixed(1)}x at the median (${
        (con.bestOpsPerSec / seq.bestOpsPerSec).toFixed(1)
      }x best to best). ${
        warmup + 1
      } warm-up and ${PUT_REPS} timed rounds. 20x would need the concurrent puts in ${
        fmtMs(seq.medianMs / 20)
      } ms; the same puts with no file (memory storage) take ${
        fmtMs(memPuts.medianMs)
      } ms.`,
    );
    p();
    p(`### 8c. Reopening ${nf(R)} small documents`);
    p();
    p(
      `Documents \`{ n: i, name: "sensor-" + (i % 100), temp }\` under keys \`r0000000\`...; the first get reads \`${
        rkey(mid)
      }\`. Loads (one run each, part of no target):`,
    );
    p();
    p("| Implementation | Load | ms | docs/s |");
    p("|---|---|--:|--:|");
    for (const r of results.filter((r) => r.extra?.group === "load")) {
      p(
        `| ${r.impl} | \`${r.op}\` | ${fmtMs(r.medianMs)} | ${
          fmtOps(r.opsPerSec)
        } |`,
      );
    }
    p();
    p(
      `Reopens (${warmup} warm-up, ${REOPEN_REPS} timed; the files are in the OS page cache):`,
    );
    p();
    p(
      "| Implementation | Operation | file MB | median ms | min ms | open ms | of which log replay ms | first get ms |",
    );
    p("|---|---|--:|--:|--:|--:|--:|--:|");
    for (
      const r of [
        oursReopen,
        split,
        oursCompacted,
        ndjsonReopen,
        sqliteReopen,
        kvReopen,
      ]
    ) {
      const replay = r.extra!.replayMs;
      p(
        `| ${r.impl} | \`${r.op}\` | ${mb(r.extra!.fileBytes as number)} | ${
          fmtMs(r.medianMs)
        } | ${fmtMs(r.minMs)} | ${fmtMs(r.extra!.openMs as number)} | ${
          replay === undefined ? "—" : fmtMs(replay as number)
        } | ${fmtMs(r.extra!.firstGetMs as number)} |`,
      );
    }
    p();
    p(
      `Ours: ${fmtMs(oursReopen.medianMs)} ms to reopen ${nf(R)} documents (${
        fmtOps(R / (oursReopen.medianMs / 1000))
      } docs/s). Timed in two steps, the storage's log replay took ${
        fmtMs(split.extra!.replayMs as number)
      } ms and the engine's load (a pass over every record for its sequence number and expiry, and the counts) ${
        fmtMs(
          (split.extra!.openMs as number) - (split.extra!.replayMs as number),
        )
      } ms (medians). \`compact()\` took ${
        fmtMs(compactMs)
      } ms and changed the file from ${nf(ourBytes)} to ${
        nf(compactedBytes)
      } bytes.`,
    );
    p();
    p("### 8d. File sizes");
    p();
    p("| Data | What | bytes | MB | bytes per doc | ÷ JSON |");
    p("|---|---|--:|--:|--:|--:|");
    for (const s of sizes) {
      const json = sizes.find((x) =>
        x.data === s.data && x.what.startsWith("JSON")
      )!.bytes;
      p(
        `| ${s.data} | ${s.what} | ${nf(s.bytes)} | ${mb(s.bytes)} | ${
          (s.bytes / s.docs).toFixed(0)
        } | ${(s.bytes / json).toFixed(2)}x |`,
      );
    }
    p();
    p(
      "MB = 10^6 bytes. SQLite sizes are the database file (plus a `-wal` file if one was left) after `close()`. The JSON is of the values only, without keys.",
    );
    return {
      n: N,
      batch: BATCH,
      puts: C,
      reopenDocs: R,
      fdatasyncMs,
      results,
      sizes,
      targets,
      markdown: md.join("\n"),
    };
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
