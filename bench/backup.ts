/**
 * Scenario 11 of `deno task bench`: backups and restore (`db.backup`,
 * `db.restore`, src/backup/backup.ts) of 1,000,000 small sensor documents, with
 * NDJSON export and import (`db.export`, `db.import`, src/backup/ndjson.ts) of the
 * same documents for comparison:
 *
 * - 11a. `db.backup(path)` of a memory database (`open()`) and of a file
 *   database (`open({ path })`, default strict durability), and
 *   `db.export(path)` of each: time, documents/s, MB/s, and the backup's size
 *   against the NDJSON's;
 * - 11b. `db.restore(path)` into an empty memory database and an empty file
 *   database, and `db.import(path)` of the NDJSON into each; restore's
 *   verification pass is also timed alone (a copy of the backup with its last
 *   byte changed: restore reads all of it, then refuses it);
 * - 11c. an encrypted database's backup (`open({ encryption })`, memory) at
 *   a tenth of the size (each record goes through the codec, which costs tens
 *   of µs), beside the plain database of the same documents, backed up plain
 *   and under a passphrase of the backup's own, and the restores of both;
 * - 11d. memory: `Deno.memoryUsage()` sampled every 5 ms during each backup
 *   and export, at a tenth of the size and at full size, to show that a
 *   backup streams (its memory does not grow with the database).
 *
 * Each operation runs once (at 1,000,000 documents each takes seconds); the
 * loads (`insertMany` of 1,000 at a time) are timed apart and are part of no
 * figure. {@linkcode runBackupBench} runs it; `bench/main.ts` calls it after
 * scenario 10 (or alone with `--only=backup`).
 *
 * @module
 */

import { type Database, type Entry, IntegrityError, open } from "../mod.ts";
import type { OpenOptions } from "../mod.ts";
import { makeSensors, type Sensor, shuffledIndices } from "./data.ts";
import {
  check,
  collectGarbage,
  fail,
  fmtMs,
  fmtOps,
  mb,
  median,
  nf,
  type Result,
  summarise,
} from "./harness.ts";

/** What scenario 11 needs from the main benchmark. */
export interface BackupBenchContext {
  /** `--quick`: 10x fewer documents. */
  readonly quick: boolean;
  /** Progress output (stderr). */
  readonly log: (line: string) => void;
}

/** A row of the Targets table (the same shape as `bench/main.ts`'s). */
export interface BackupTarget {
  /** What is measured. */
  name: string;
  /** The goal. */
  goal: string;
  /** The measured value, in words. */
  measured: string;
  /** Whether the goal was met. */
  met: boolean;
}

/** Memory sampled during one timed operation. */
export interface MemorySample {
  /** RSS just before (after a garbage collection), bytes. */
  readonly rssBefore: number;
  /** Highest RSS sampled during the operation, bytes. */
  readonly rssPeak: number;
  /** JS heap used just before, bytes. */
  readonly heapBefore: number;
  /** Highest JS heap used sampled during the operation, bytes. */
  readonly heapPeak: number;
  /** Samples taken (every 5 ms, and once at the end). */
  readonly samples: number;
}

/** One untimed load. */
export interface LoadRow {
  /** Which database. */
  readonly database: string;
  /** Documents loaded. */
  readonly docs: number;
  /** ms. */
  readonly ms: number;
}

/** The outcome of scenario 11. */
export interface BackupReport {
  /** Documents of the full-size databases. */
  readonly docs: number;
  /** Documents of the smaller ones (encrypted, and the memory comparison). */
  readonly smallDocs: number;
  /** Median JSON bytes of a document. */
  readonly docJsonBytes: number;
  /** PBKDF2 iterations of the encrypted database and backups. */
  readonly iterations: number;
  /**
   * Every timed operation, one sample each; `extra` places it (group,
   * database, bytes of the file written or read, memory).
   */
  readonly results: Result[];
  /** The loads (untimed context). */
  readonly loads: LoadRow[];
  /** One awaited `setTimeout(0)`, ms (mean of 200 in a row). */
  readonly timerMs: number;
  /** Rows for the Targets table (none: the issue sets no goal). */
  readonly targets: BackupTarget[];
  /** The report section, markdown, starting with its `##` heading. */
  readonly markdown: string;
}

/** Documents per `insertMany` when loading. */
const LOAD_BATCH = 1_000;
/** PBKDF2 iterations (opening stays ~1 ms; nothing after open depends on it). */
const ITERATIONS = 1_000;
const PASSPHRASE = "correct horse battery staple";
const BACKUP_PASSPHRASE = "a passphrase of the backup's own";
/** RSS sampling period, ms. */
const SAMPLE_MS = 5;
/** Documents checked, with their metadata, after every restore and import. */
const PROBES = 5;
const COLLECTION = "readings";

/** A small sensor reading (the document of scenario 9). */

/**
 * Runs `work` once, timed, while `Deno.memoryUsage()` is sampled every
 * {@linkcode SAMPLE_MS} ms (the backup's scan yields to the event loop
 * between pages, so the timer fires throughout).
 */
async function measured<R>(
  work: () => Promise<R>,
): Promise<{ result: R; ms: number; memory: MemorySample }> {
  collectGarbage();
  await new Promise((r) => setTimeout(r, 20));
  collectGarbage();
  const before = Deno.memoryUsage();
  let rssPeak = before.rss;
  let heapPeak = before.heapUsed;
  let samples = 0;
  const sample = () => {
    const m = Deno.memoryUsage();
    if (m.rss > rssPeak) rssPeak = m.rss;
    if (m.heapUsed > heapPeak) heapPeak = m.heapUsed;
    samples++;
  };
  const id = setInterval(sample, SAMPLE_MS);
  try {
    const t0 = performance.now();
    const result = await work();
    const ms = performance.now() - t0;
    sample();
    return {
      result,
      ms,
      memory: {
        rssBefore: before.rss,
        rssPeak,
        heapBefore: before.heapUsed,
        heapPeak,
        samples,
      },
    };
  } finally {
    clearInterval(id);
  }
}

/**
 * Runs scenario 11.
 *
 * @param ctx Size and logging.
 * @returns Results, loads and the report section.
 */
export async function runBackupBench(
  ctx: BackupBenchContext,
): Promise<BackupReport> {
  const { log } = ctx;
  const N = ctx.quick ? 100_000 : 1_000_000;
  const S = N / 10;
  const docs = makeSensors(N);
  const jsonBytes = (d: unknown) =>
    new TextEncoder().encode(JSON.stringify(d)).length;
  const docJsonBytes = median(docs.slice(0, 10_000).map(jsonBytes));
  const probeAt = shuffledIndices(N, 3).slice(0, PROBES);
  const results: Result[] = [];
  const loads: LoadRow[] = [];
  const md: string[] = [];
  const p = (s = "") => md.push(s);
  const timers = { ttlCheckInterval: Infinity, cleanupInterval: Infinity };
  const encryption = { passphrase: PASSPHRASE, iterations: ITERATIONS };
  const backupEncryption = {
    passphrase: BACKUP_PASSPHRASE,
    iterations: ITERATIONS,
  };
  const root = await Deno.makeTempDir({ prefix: "tether-bench-backup-" });
  const open11 = (options: OpenOptions = {}) =>
    open<Sensor>({ ...timers, ...options });
  const live: Database<Sensor>[] = [];
  const size = async (path: string) => (await Deno.stat(path)).size;

  /** Loads `n` documents with insertMany; returns the probes' entries. */
  const load = async (
    database: string,
    db: Database<Sensor>,
    n: number,
  ): Promise<Map<string, Entry<Sensor>>> => {
    const c = db.collection<Sensor>(COLLECTION);
    const wanted = new Set(probeAt.map((i) => i % n));
    const probeIds: string[] = [];
    const t0 = performance.now();
    for (let s = 0; s < n; s += LOAD_BATCH) {
      const ids = await c.insertMany(
        docs.slice(s, Math.min(n, s + LOAD_BATCH)),
      );
      for (let i = 0; i < ids.length; i++) {
        if (wanted.has(s + i)) probeIds.push(ids[i]!);
      }
    }
    const ms = performance.now() - t0;
    check(db.stats().items === n, `${database}: ${db.stats().items} items`);
    loads.push({ database, docs: n, ms });
    log(`  loaded ${database}: ${nf(n)} in ${fmtMs(ms)} ms`);
    const probes = new Map<string, Entry<Sensor>>();
    for (const id of probeIds) probes.set(id, (await c.getEntry(id))!);
    return probes;
  };

  /** Checks a restored or imported database against the source's probes. */
  const checkCopy = async (
    who: string,
    db: Database<Sensor>,
    n: number,
    probes: Map<string, Entry<Sensor>>,
  ) => {
    check(
      db.stats().items === n,
      `${who}: ${db.stats().items} items, not ${n}`,
    );
    const names = await db.collections();
    check(
      names.length === 1 && names[0] === COLLECTION,
      `${who}: collections ${JSON.stringify(names)}`,
    );
    const c = db.collection<Sensor>(COLLECTION);
    for (const [id, entry] of probes) {
      const got = await c.getEntry(id);
      check(
        JSON.stringify(got) === JSON.stringify(entry),
        `${who}: '${id}' is ${JSON.stringify(got)}, not ${
          JSON.stringify(entry)
        }`,
      );
    }
  };

  const record = (
    group: string,
    database: string,
    op: string,
    docsDone: number,
    m: { ms: number; memory: MemorySample },
    extra: Record<string, number | string | boolean>,
  ): Result => {
    const r = summarise(database, op, docsDone, [m.ms], {
      group,
      database,
      rssBefore: m.memory.rssBefore,
      rssPeak: m.memory.rssPeak,
      heapBefore: m.memory.heapBefore,
      heapPeak: m.memory.heapPeak,
      memorySamples: m.memory.samples,
      ...extra,
    });
    results.push(r);
    log(
      `  ${group} ${database}: ${fmtMs(m.ms)} ms, ${
        fmtOps(r.opsPerSec)
      } docs/s${
        typeof extra.bytes === "number" ? `, ${mb(extra.bytes)} MB` : ""
      }, RSS +${mb(m.memory.rssPeak - m.memory.rssBefore)} MB peak`,
    );
    return r;
  };

  /** Backs up (or exports) `db` to `path`, timed; checks the count. */
  const backup = async (
    group: "backup" | "export",
    database: string,
    db: Database<Sensor>,
    n: number,
    path: string,
    op: string,
    options?: { encryption: typeof backupEncryption },
  ) => {
    const m = await measured<{ documents: number; bytes?: number }>(() =>
      group === "backup" ? db.backup(path, options) : db.export(path)
    );
    check(
      m.result.documents === n,
      `${group} ${database}: ${m.result.documents}`,
    );
    const bytes = await size(path);
    if (group === "backup") {
      check(m.result.bytes === bytes, `${group} ${database}: bytes`);
    }
    return record(group, database, op, n, m, { bytes, path });
  };

  /** Restores (or imports) `path` into a new database, timed; checks it. */
  const restore = async (
    group: "restore" | "import",
    database: string,
    options: OpenOptions,
    n: number,
    path: string,
    op: string,
    probes: Map<string, Entry<Sensor>>,
    restoreOptions?: { encryption: typeof encryption },
  ) => {
    const db = await open11(options);
    live.push(db);
    const m = await measured(() =>
      group === "restore" ? db.restore(path, restoreOptions) : db.import(path)
    );
    check(
      m.result.documents === n && m.result.expired === 0,
      `${group} ${database}: ${JSON.stringify(m.result)}`,
    );
    const r = record(group, database, op, n, m, {
      bytes: await size(path),
      path,
    });
    await checkCopy(`${group} ${database}`, db, n, probes);
    const t0 = performance.now();
    await db.close();
    live.splice(live.indexOf(db), 1);
    log(`    (closed in ${fmtMs(performance.now() - t0)} ms, untimed)`);
    return r;
  };

  try {
    log(`# 11. backups of ${nf(N)} and ${nf(S)} documents (temp dir ${root})`);

    // -----------------------------------------------------------------------
    // The smaller databases first: plain and encrypted memory, S documents.
    const small = await open11();
    live.push(small);
    const smallProbes = await load(`memory, ${nf(S)}`, small, S);
    await backup(
      "backup",
      `memory, ${nf(S)}`,
      small,
      S,
      `${root}/small.bak`,
      "await db.backup(path)",
    );
    await backup(
      "backup",
      `memory, ${nf(S)}, backup's own passphrase`,
      small,
      S,
      `${root}/small-own.bak`,
      "await db.backup(path, { encryption: { passphrase } })",
      { encryption: backupEncryption },
    );
    await backup(
      "export",
      `memory, ${nf(S)}`,
      small,
      S,
      `${root}/small.ndjson`,
      "await db.export(path)",
    );
    await small.close();
    live.splice(0);
    await restore(
      "restore",
      `memory, ${nf(S)}`,
      {},
      S,
      `${root}/small.bak`,
      "await db.restore(path)",
      smallProbes,
    );
    await restore(
      "restore",
      `memory, ${nf(S)}, from the backup's own passphrase`,
      {},
      S,
      `${root}/small-own.bak`,
      "await db.restore(path, { encryption: { passphrase } })",
      smallProbes,
      { encryption: backupEncryption },
    );
    collectGarbage();

    const enc = await open11({ encryption });
    live.push(enc);
    const encProbes = await load(`memory, ${nf(S)}, encrypted`, enc, S);
    await backup(
      "backup",
      `memory, ${nf(S)}, encrypted`,
      enc,
      S,
      `${root}/enc.bak`,
      "await db.backup(path)",
    );
    await backup(
      "export",
      `memory, ${nf(S)}, encrypted`,
      enc,
      S,
      `${root}/enc.ndjson`,
      "await db.export(path)",
    );
    await enc.close();
    live.splice(0);
    await restore(
      "restore",
      `memory, ${nf(S)}, encrypted`,
      { encryption },
      S,
      `${root}/enc.bak`,
      "await db.restore(path, { encryption: { passphrase } })",
      encProbes,
      { encryption },
    );
    collectGarbage();

    // -----------------------------------------------------------------------
    // Full size, memory.
    const mem = await open11();
    live.push(mem);
    const memProbes = await load(`memory, ${nf(N)}`, mem, N);
    await backup(
      "backup",
      `memory, ${nf(N)}`,
      mem,
      N,
      `${root}/mem.bak`,
      "await db.backup(path)",
    );
    await backup(
      "export",
      `memory, ${nf(N)}`,
      mem,
      N,
      `${root}/mem.ndjson`,
      "await db.export(path)",
    );
    await mem.close();
    live.splice(0);
    collectGarbage();

    // Restore's first pass alone: a copy whose last byte (of the checksum)
    // differs is read and checked in full, then refused.
    {
      const damaged = `${root}/damaged.bak`;
      const bytes = await Deno.readFile(`${root}/mem.bak`);
      const last = bytes.length - 1;
      bytes[last] = bytes[last]! ^ 0xff;
      await Deno.writeFile(damaged, bytes);
      const db = await open11();
      live.push(db);
      const m = await measured(async () => {
        try {
          await db.restore(damaged);
        } catch (e) {
          return e;
        }
        return undefined;
      });
      check(
        m.result instanceof IntegrityError &&
          /checksum/.test(m.result.message),
        `damaged backup: ${String(m.result)}`,
      );
      check(db.stats().items === 0, "damaged backup: something was stored");
      record(
        "verify",
        `memory, ${nf(N)}`,
        "await db.restore(damaged copy) (IntegrityError at the checksum)",
        N,
        m,
        { bytes: bytes.length, path: damaged },
      );
      await db.close();
      live.splice(0);
      await Deno.remove(damaged);
    }
    await restore(
      "restore",
      `memory, ${nf(N)}`,
      {},
      N,
      `${root}/mem.bak`,
      "await db.restore(path)",
      memProbes,
    );
    collectGarbage();
    await restore(
      "import",
      `memory, ${nf(N)}`,
      {},
      N,
      `${root}/mem.ndjson`,
      "await db.import(path)",
      memProbes,
    );
    collectGarbage();

    // -----------------------------------------------------------------------
    // Full size, file (default durability, strict: one fdatasync per
    // insertMany of 1,000, and per restore or import write of 1,000).
    const file = await open11({ path: `${root}/src.tdb` });
    live.push(file);
    const fileProbes = await load(`file, ${nf(N)}`, file, N);
    const fileBytes = await size(`${root}/src.tdb`);
    await backup(
      "backup",
      `file, ${nf(N)}`,
      file,
      N,
      `${root}/file.bak`,
      "await db.backup(path)",
    );
    await backup(
      "export",
      `file, ${nf(N)}`,
      file,
      N,
      `${root}/file.ndjson`,
      "await db.export(path)",
    );
    await file.close();
    live.splice(0);
    await Deno.remove(`${root}/src.tdb`);
    collectGarbage();
    await restore(
      "restore",
      `file, ${nf(N)}`,
      { path: `${root}/restored.tdb` },
      N,
      `${root}/file.bak`,
      "await db.restore(path)",
      fileProbes,
    );
    const restoredBytes = await size(`${root}/restored.tdb`);
    await Deno.remove(`${root}/restored.tdb`);
    collectGarbage();
    await restore(
      "import",
      `file, ${nf(N)}`,
      { path: `${root}/imported.tdb` },
      N,
      `${root}/file.ndjson`,
      "await db.import(path)",
      fileProbes,
    );
    const importedBytes = await size(`${root}/imported.tdb`);
    await Deno.remove(`${root}/imported.tdb`);

    // What one turn of the event loop costs: the scan behind backup and
    // export waits for a `setTimeout(0)` after each page it reads.
    const TIMER_TURNS = 200;
    const t0 = performance.now();
    for (let i = 0; i < TIMER_TURNS; i++) {
      await new Promise((r) => setTimeout(r, 0));
    }
    const timerMs = (performance.now() - t0) / TIMER_TURNS;
    log(`  one awaited setTimeout(0): ${timerMs.toFixed(2)} ms`);

    // -----------------------------------------------------------------------
    // Report.
    const find = (group: string, database: string): Result => {
      const r = results.find((x) =>
        x.extra?.group === group && x.extra?.database === database
      );
      if (r === undefined) fail(`no result ${group} ${database}`);
      return r;
    };
    const bytesOf = (r: Result) => r.extra!.bytes as number;
    const rssGrowth = (r: Result) =>
      (r.extra!.rssPeak as number) - (r.extra!.rssBefore as number);
    const heapGrowth = (r: Result) =>
      (r.extra!.heapPeak as number) - (r.extra!.heapBefore as number);
    const mbs = (r: Result) => (bytesOf(r) / 1e6 / (r.medianMs / 1000));
    /** The NDJSON export of the same database (same documents and ids). */
    const ndjsonOf = (database: string) => {
      const base = database.replace(/, backup's own passphrase$/, "");
      return find("export", base);
    };
    const big = `memory, ${nf(N)}`;
    const tenth = `memory, ${nf(S)}`;

    p(`## 11. Backups: ${nf(N)} documents`);
    p();
    p(
      `\`db.backup(path)\` (src/backup/backup.ts: the NDJSON lines of every document in compressed blocks of about 256 KB, encrypted when the database is, chained by SHA-256) and \`db.restore(path)\` (verifies the whole backup, then empties the database and writes), against \`db.export(path)\` / \`db.import(path)\` (src/backup/ndjson.ts, one uncompressed NDJSON line per document). Documents: \`{ device: "dev-" + (i % 100), temp, hum, ts }\` (scenario 9's), ${docJsonBytes} bytes of JSON each (median), in collection \`${COLLECTION}\`, loaded with \`insertMany\` of ${
        nf(LOAD_BATCH)
      } (generated \`_id\`s; untimed). Memory: \`open()\`; file: \`open({ path })\` at its default durability, strict (one fdatasync per write of ${
        nf(LOAD_BATCH)
      }); encrypted: \`open({ encryption: { passphrase, iterations: ${
        nf(ITERATIONS)
      } } })\`, memory, at ${
        nf(S)
      } documents. Every operation ran once (one sample; no warm-up), with \`gc()\` before it and \`Deno.memoryUsage()\` sampled every ${SAMPLE_MS} ms during it. Every restore and import is checked: item count, the one collection, and ${PROBES} documents with their metadata (times, version) equal to the source's. MB = 10^6 bytes.`,
    );
    p();
    p(`### 11a. Backup and export`);
    p();
    p(
      "| Database | Operation | documents | ms | docs/s | file bytes | file MB/s | NDJSON MB/s | ÷ NDJSON size | peak RSS growth MB |",
    );
    p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (
      const r of results.filter((x) =>
        x.extra?.group === "backup" || x.extra?.group === "export"
      )
    ) {
      const nd = ndjsonOf(r.extra!.database as string);
      p(
        `| ${r.impl} | \`${r.op}\` | ${nf(r.ops)} | ${fmtMs(r.medianMs)} | ${
          fmtOps(r.opsPerSec)
        } | ${nf(bytesOf(r))} | ${mbs(r).toFixed(1)} | ${
          (bytesOf(nd) / 1e6 / (r.medianMs / 1000)).toFixed(1)
        } | ${(bytesOf(r) / bytesOf(nd)).toFixed(3)}x | ${mb(rssGrowth(r))} |`,
      );
    }
    p();
    p(
      `"NDJSON MB/s": the size of the same database's export divided by the row's time, the rate at which document text is handled. "÷ NDJSON size": the file's bytes divided by that export's. The file database's log held ${
        nf(fileBytes)
      } bytes (${mb(fileBytes)} MB). One awaited \`setTimeout(0)\` took ${
        timerMs.toFixed(2)
      } ms here (mean of ${TIMER_TURNS} in a row); the scan behind backup and export awaits one after each 8 ms of work.`,
    );
    p();
    p(`### 11b. Restore and import into an empty database`);
    p();
    p(
      "| Into | Operation | documents | ms | docs/s | file bytes | file MB/s | time ÷ restore's |",
    );
    p("|---|---|--:|--:|--:|--:|--:|--:|");
    for (
      const r of results.filter((x) =>
        x.extra?.group === "verify" || x.extra?.group === "restore" ||
        x.extra?.group === "import"
      )
    ) {
      const base = results.find((x) =>
        x.extra?.group === "restore" &&
        x.extra?.database === r.extra!.database
      );
      p(
        `| ${r.impl} | \`${r.op}\` | ${nf(r.ops)} | ${fmtMs(r.medianMs)} | ${
          fmtOps(r.opsPerSec)
        } | ${nf(bytesOf(r))} | ${mbs(r).toFixed(1)} | ${
          base === undefined || base === r
            ? "—"
            : `${(r.medianMs / base.medianMs).toFixed(2)}x`
        } |`,
      );
    }
    p();
    const verify = find("verify", big);
    const restoreBig = find("restore", big);
    p(
      `Restore and import from a path both read the file twice: a first pass checks everything (restore: the format, the header, every block's MAC or checksum, the hash chain, the summary and every line; import: every line), and only then does a second pass write, in batches of ${
        nf(LOAD_BATCH)
      }. "file MB/s" is the file's size over the whole time (twice that was read). The verification pass alone (the damaged copy, refused at its checksum with nothing stored) took ${
        fmtMs(verify.medianMs)
      } ms, ${
        ((verify.medianMs / restoreBig.medianMs) * 100).toFixed(0)
      }% of the restore's ${
        fmtMs(restoreBig.medianMs)
      } ms. The restored file database's log: ${
        nf(restoredBytes)
      } bytes; the imported one's: ${nf(importedBytes)} bytes.`,
    );
    p();
    p(`### 11c. Memory during backup and export`);
    p();
    p(
      "| Database | Operation | documents | RSS before MB | peak RSS growth MB | peak heap growth MB | samples |",
    );
    p("|---|---|--:|--:|--:|--:|--:|");
    for (
      const r of results.filter((x) =>
        x.extra?.group === "backup" || x.extra?.group === "export"
      )
    ) {
      p(
        `| ${r.impl} | \`${r.op}\` | ${nf(r.ops)} | ${
          mb(r.extra!.rssBefore as number)
        } | ${mb(rssGrowth(r))} | ${mb(heapGrowth(r))} | ${
          r.extra!.memorySamples
        } |`,
      );
    }
    p();
    const b10 = find("backup", tenth);
    const b1 = find("backup", big);
    p(
      `Peak growth: the highest sample minus the value just before (after \`gc()\`). Backing up ${
        nf(S)
      } documents grew RSS by at most ${mb(rssGrowth(b10))} MB, ${
        nf(N)
      } by at most ${mb(rssGrowth(b1))} MB, while the process held ${
        mb(b10.extra!.rssBefore as number)
      } and ${
        mb(b1.extra!.rssBefore as number)
      } MB of RSS before (the database, the generated documents and what earlier steps left).`,
    );
    p();
    p(`### 11d. Loads (untimed, one run each)`);
    p();
    p("| Database | Load | documents | ms | docs/s |");
    p("|---|---|--:|--:|--:|");
    for (const l of loads) {
      p(
        `| ${l.database} | \`insertMany(${nf(LOAD_BATCH)} docs) × ${
          nf(l.docs / LOAD_BATCH)
        }\` | ${nf(l.docs)} | ${fmtMs(l.ms)} | ${
          fmtOps(l.docs / (l.ms / 1000))
        } |`,
      );
    }
    return {
      docs: N,
      smallDocs: S,
      docJsonBytes,
      iterations: ITERATIONS,
      timerMs,
      results,
      loads,
      targets: [],
      markdown: md.join("\n"),
    };
  } finally {
    for (const db of live) await db.close().catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
