/**
 * The growth scenario of `deno task bench` (`--only growth`): the file
 * storage's file size and reopen time against the number of documents
 * (1,000 to 1,000,000 `{ name, age, city }`; 1,000 to 50,000 with
 * `--quick`), beside the NDJSON of the same documents and a `node:sqlite`
 * file of them (a `(key TEXT PRIMARY KEY, doc TEXT)` table, WAL), whose
 * open is lazy and is timed with its first lookup.
 *
 * Loads use `putBatch` of 10,000 with `durability: "none"` (the load is not
 * what is measured); each reopen is timed 3 times after a warm-up and the
 * best is kept. Files live in a temporary directory removed at the end.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { open } from "../mod.ts";
import { makePeople, type Person } from "./data.ts";
import { collectGarbage, fmtMs, mb } from "./harness.ts";
import { round, type TargetRow } from "./results.ts";

/** What the growth scenario needs. */
export interface GrowthBenchContext {
  /** Sizes up to 50,000 instead of 1,000,000. */
  readonly quick: boolean;
  /** Progress output (stderr). */
  readonly log: (line: string) => void;
  /** The sizes (default by `quick`). */
  readonly sizes?: readonly number[];
}

/** One size. */
export interface GrowthRow {
  /** Documents. */
  readonly docs: number;
  /** Our file's bytes after the load and close. */
  readonly oursBytes: number;
  /** Bytes of the documents as NDJSON (`{"key":..,"doc":..}` lines). */
  readonly ndjsonBytes: number;
  /** The node:sqlite file's bytes (after a checkpoint). */
  readonly sqliteBytes: number;
  /** Our reopen (`open({ path })` until ready), each recorded run, ms. */
  readonly reopenMs: readonly number[];
  /** The best of them. */
  readonly reopenBestMs: number;
  /**
   * JS heap plus external memory held by the open database after the
   * reopen (after gc, against before the open), bytes.
   */
  readonly heldBytes: number;
  /** node:sqlite open and first lookup, best of the runs, ms. */
  readonly sqliteOpenMs: number;
  /** Our load time (untimed in the figures), ms. */
  readonly loadMs: number;
}

/** The outcome of the growth scenario. */
export interface GrowthReport {
  /** One row per size. */
  readonly rows: readonly GrowthRow[];
  /** No targets (context for the charts). */
  readonly targets: readonly TargetRow[];
  /** The markdown section. */
  readonly markdown: string;
}

const REOPEN_REPS = 3;

/**
 * Runs the growth scenario.
 *
 * @param ctx Sizes and output.
 * @returns A row per size, and markdown.
 */
export async function runGrowthBench(
  ctx: GrowthBenchContext,
): Promise<GrowthReport> {
  const sizes = ctx.sizes ??
    (ctx.quick ? [1_000, 10_000, 50_000] : [1_000, 10_000, 100_000, 1_000_000]);
  const dir = await Deno.makeTempDir({ prefix: "tether-growth-" });
  const rows: GrowthRow[] = [];
  try {
    for (const n of sizes) {
      ctx.log(`# growth: ${n} documents`);
      const docs = makePeople(n, 44);
      const path = `${dir}/g${n}.tdb`;
      const t0 = performance.now();
      {
        const db = await open<Person>({ path, durability: "none" });
        for (let s = 0; s < n; s += 10_000) {
          const m = new Map<string, Person>();
          for (let i = s; i < Math.min(n, s + 10_000); i++) {
            m.set(`k${i}`, docs[i]!);
          }
          await db.putBatch(m);
        }
        await db.close();
      }
      const loadMs = performance.now() - t0;
      const oursBytes = (await Deno.stat(path)).size;
      let ndjsonBytes = 0;
      const enc = new TextEncoder();
      for (let i = 0; i < n; i++) {
        ndjsonBytes += enc.encode(
          JSON.stringify({ key: `k${i}`, doc: docs[i] }),
        ).length + 1;
      }
      const reopenMs: number[] = [];
      const held: number[] = [];
      // Twice: one collection can leave garbage a second one frees (a
      // single gc() made the 10,000-document row read 0 bytes once).
      const mem = () => {
        collectGarbage();
        collectGarbage();
        const u = Deno.memoryUsage();
        return u.heapUsed + u.external;
      };
      for (let r = 0; r < 1 + REOPEN_REPS; r++) {
        const before = r > 0 ? mem() : 0;
        collectGarbage();
        const t = performance.now();
        const db = await open<Person>({ path });
        const got = await db.get("k0");
        const ms = performance.now() - t;
        if (got?.name !== docs[0]!.name) {
          throw new Error(`growth: reopened ${n} documents without k0`);
        }
        if (r > 0) held.push(mem() - before);
        await db.close();
        if (r > 0) reopenMs.push(round(ms));
      }
      // node:sqlite, for context.
      const spath = `${dir}/g${n}.sqlite`;
      {
        const s = new DatabaseSync(spath);
        s.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
        s.exec("CREATE TABLE docs (key TEXT PRIMARY KEY, doc TEXT) STRICT");
        const ins = s.prepare("INSERT INTO docs VALUES (?, ?)");
        for (let st = 0; st < n; st += 10_000) {
          s.exec("BEGIN");
          for (let i = st; i < Math.min(n, st + 10_000); i++) {
            ins.run(`k${i}`, JSON.stringify(docs[i]));
          }
          s.exec("COMMIT");
        }
        s.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        s.close();
      }
      const sqliteBytes = (await Deno.stat(spath)).size;
      const sqliteMs: number[] = [];
      for (let r = 0; r < 1 + REOPEN_REPS; r++) {
        const t = performance.now();
        const s = new DatabaseSync(spath);
        const row = s.prepare("SELECT doc FROM docs WHERE key = ?").get("k0");
        const ms = performance.now() - t;
        s.close();
        if (row === undefined) throw new Error("growth: sqlite lost k0");
        if (r > 0) sqliteMs.push(ms);
      }
      const row: GrowthRow = {
        docs: n,
        oursBytes,
        ndjsonBytes,
        sqliteBytes,
        reopenMs,
        // The median of the reopens (0 or less: not measurable here).
        heldBytes: Math.max(
          0,
          held.toSorted((a, b) => a - b)[held.length >> 1]!,
        ),
        reopenBestMs: Math.min(...reopenMs),
        sqliteOpenMs: round(Math.min(...sqliteMs)),
        loadMs: round(loadMs),
      };
      ctx.log(
        `  ours ${mb(oursBytes)} MB, reopen ${
          fmtMs(row.reopenBestMs)
        } ms; NDJSON ${mb(ndjsonBytes)} MB; sqlite ${mb(sqliteBytes)} MB`,
      );
      rows.push(row);
      await Deno.remove(path).catch(() => {});
      await Deno.remove(spath).catch(() => {});
      collectGarbage();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const lines = [
    "## Growth: file size and reopen time against documents",
    "",
    "| Documents | ours file MB | ours ÷ NDJSON | node:sqlite MB | ours reopen ms (best of 3) | node:sqlite open + first get ms | memory held open ÷ NDJSON |",
    "|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.docs.toLocaleString("en-US")} | ${mb(r.oursBytes)} | ${
        (r.oursBytes / r.ndjsonBytes).toFixed(2)
      } | ${mb(r.sqliteBytes)} | ${fmtMs(r.reopenBestMs)} | ${
        fmtMs(r.sqliteOpenMs)
      } | ${(r.heldBytes / r.ndjsonBytes).toFixed(1)} |`,
    );
  }
  return { rows, targets: [], markdown: lines.join("\n") };
}
