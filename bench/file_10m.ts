/**
 * Issue 15's large file: 10,000,000 small documents `{ n, name, temp }` made
 * by a generator (nothing kept in the repository), written with `putBatch`
 * of 10,000 (`durability: "none"`), then reopened in a fresh process: build
 * time, file size against the NDJSON of the same documents, reopen time, the
 * process's RSS once open, and random `get`s right after the reopen (the
 * first reads of each page of the file: a cold page cache when the kernel
 * lets this process drop it, else the file as the build left it in the page
 * cache) and again (warm).
 *
 * Run: `deno task bench --only file10m` (or `deno run -A bench/file_10m.ts
 * [--n=10000000]` alone). Each step runs in its own process, so RSS is the
 * database's, not the generator's.
 *
 * @module
 */

import { open } from "../mod.ts";
import { type TargetRow, targetRow } from "./results.ts";
import { denoCommand } from "./harness.ts";

/** A generated reading. */
function reading(i: number): { n: number; name: string; temp: number } {
  return { n: i, name: `sensor-${i % 1000}`, temp: ((i * 7919) % 600) / 10 };
}

const key = (i: number) => `r${String(i).padStart(8, "0")}`;

/** What the child processes print (one JSON line). */
interface BuildOut {
  readonly buildMs: number;
  readonly fileBytes: number;
  readonly ndjsonBytes: number;
}
interface ReopenOut {
  readonly reopenMs: number;
  readonly rssBytes: number;
  readonly heapBytes: number;
  readonly coldGetsPerS: number;
  readonly warmGetsPerS: number;
  readonly dropped: boolean;
}

const GETS = 100_000;

async function build(path: string, n: number): Promise<BuildOut> {
  await Deno.remove(path).catch(() => {});
  const t = performance.now();
  const db = await open({
    path,
    durability: "none",
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  const enc = new TextEncoder();
  let ndjsonBytes = 0;
  for (let s = 0; s < n; s += 10_000) {
    const batch = new Map<string, unknown>();
    for (let i = s; i < Math.min(n, s + 10_000); i++) {
      batch.set(key(i), reading(i));
      // The NDJSON line of the same document with its `_id`.
      if (i % 100 === 0) {
        ndjsonBytes += 100 *
          (enc.encode(JSON.stringify({ _id: key(i), ...reading(i) })).length +
            1);
      }
    }
    await db.putBatch(batch);
  }
  await db.close();
  return {
    buildMs: performance.now() - t,
    fileBytes: (await Deno.stat(path)).size,
    ndjsonBytes,
  };
}

/** Asks the kernel to drop clean page-cache pages (root only). */
async function dropCaches(): Promise<boolean> {
  try {
    await Deno.writeTextFile("/proc/sys/vm/drop_caches", "1");
    return true;
  } catch {
    return false;
  }
}

async function reopen(path: string, n: number): Promise<ReopenOut> {
  const dropped = await dropCaches();
  const t = performance.now();
  const db = await open({
    path,
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  const reopenMs = performance.now() - t;
  (globalThis as { gc?: () => void }).gc?.();
  const m = Deno.memoryUsage();
  let seed = 7;
  const next = () => (seed = (seed * 48271) % 2147483647) % n;
  const gets = async (): Promise<number> => {
    const t0 = performance.now();
    for (let g = 0; g < GETS; g++) {
      const i = next();
      const v = await db.get(key(i)) as { n: number } | null;
      if (v?.n !== i) throw new Error(`file10m: ${key(i)} read back ${v}`);
    }
    return Math.round(GETS / ((performance.now() - t0) / 1000));
  };
  const coldGetsPerS = await gets();
  seed = 7;
  const warmGetsPerS = await gets();
  await db.close();
  return {
    reopenMs,
    rssBytes: m.rss,
    heapBytes: m.heapUsed + m.external,
    coldGetsPerS,
    warmGetsPerS,
    dropped,
  };
}

async function child<T>(args: string[]): Promise<T> {
  const self = denoCommand();
  const { code, stdout, stderr } = await new Deno.Command(self, {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc,--max-old-space-size=16384",
      new URL(import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`file10m ${args[0]}: ${new TextDecoder().decode(stderr)}`);
  }
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** What the scenario hands back. */
export interface File10mReport {
  /** Documents. */
  readonly n: number;
  /** The build. */
  readonly build: BuildOut;
  /** The reopen. */
  readonly reopen: ReopenOut;
  /** The target rows. */
  readonly targets: readonly TargetRow[];
  /** The markdown section. */
  readonly markdown: string;
}

const MiB = 1024 * 1024;

/**
 * Runs the scenario.
 *
 * @param ctx Size and output.
 * @returns Figures, target rows and markdown.
 */
export async function runFile10mBench(
  ctx: { readonly n?: number; readonly log: (line: string) => void },
): Promise<File10mReport> {
  const n = ctx.n ?? 10_000_000;
  const dir = await Deno.makeTempDir({ prefix: "tether-10m-" });
  const path = `${dir}/big.tdb`;
  try {
    ctx.log(`# file10m: building ${n.toLocaleString("en-US")} documents`);
    const b = await child<BuildOut>(["--child=build", path, String(n)]);
    ctx.log(
      `  built in ${(b.buildMs / 1000).toFixed(1)} s, ${
        (b.fileBytes / MiB).toFixed(0)
      } MiB (${(b.fileBytes / b.ndjsonBytes).toFixed(2)}x NDJSON)`,
    );
    const r = await child<ReopenOut>(["--child=reopen", path, String(n)]);
    ctx.log(
      `  reopened in ${(r.reopenMs / 1000).toFixed(1)} s, RSS ${
        (r.rssBytes / MiB).toFixed(0)
      } MiB; random gets ${r.coldGetsPerS}/s first, ${r.warmGetsPerS}/s again`,
    );
    const nf = n.toLocaleString("en-US");
    const targets = [
      targetRow(
        "file10m",
        "file10m.rss",
        `${nf} documents reopened: process RSS`,
        "<=",
        1536,
        "MiB",
        r.rssBytes / MiB,
        `${(r.rssBytes / MiB).toFixed(0)} MiB RSS (JS heap + external ${
          (r.heapBytes / MiB).toFixed(0)
        } MiB); reopen ${(r.reopenMs / 1000).toFixed(1)} s; built in ${
          (b.buildMs / 1000).toFixed(0)
        } s; file ${(b.fileBytes / MiB).toFixed(0)} MiB (${
          (b.fileBytes / b.ndjsonBytes).toFixed(2)
        }x NDJSON); random get ${r.coldGetsPerS.toLocaleString("en-US")}/s ${
          r.dropped ? "cold" : "first"
        }, ${r.warmGetsPerS.toLocaleString("en-US")}/s warm`,
      ),
    ];
    const markdown = [
      `## File storage at ${nf} documents`,
      "",
      "| Build | File (÷ NDJSON) | Reopen | RSS open | Heap + external | Random get, first | Random get, warm |",
      "|--:|--:|--:|--:|--:|--:|--:|",
      `| ${(b.buildMs / 1000).toFixed(1)} s | ${
        (b.fileBytes / MiB).toFixed(0)
      } MiB (${(b.fileBytes / b.ndjsonBytes).toFixed(2)}x) | ${
        (r.reopenMs / 1000).toFixed(1)
      } s | ${(r.rssBytes / MiB).toFixed(0)} MiB | ${
        (r.heapBytes / MiB).toFixed(0)
      } MiB | ${r.coldGetsPerS.toLocaleString("en-US")}/s${
        r.dropped ? " (page cache dropped)" : ""
      } | ${r.warmGetsPerS.toLocaleString("en-US")}/s |`,
    ].join("\n");
    return { n, build: b, reopen: r, targets, markdown };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const childArg = Deno.args.find((a) => a.startsWith("--child="));
  if (childArg !== undefined) {
    const [path, n] = Deno.args.filter((a) => !a.startsWith("--"));
    const out = childArg === "--child=build"
      ? await build(path!, Number(n))
      : await reopen(path!, Number(n));
    console.log(JSON.stringify(out));
  } else {
    const n = Number(
      Deno.args.find((a) => a.startsWith("--n="))?.slice(4) ?? 10_000_000,
    );
    const r = await runFile10mBench({ n, log: console.log });
    console.log(r.markdown);
  }
}
