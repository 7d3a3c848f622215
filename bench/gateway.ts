/**
 * Gateway benchmark (issue 17): our `ingest` (file database, strict
 * durability: each answer after fsync, concurrent requests sharing one)
 * against the same HTTP server built on `node:sqlite` (WAL,
 * `synchronous=FULL`, one transaction per request), then a relay catch-up
 * of a backlog to a receiver on Deno KV in another process: `receive()`
 * with `assumeNew` (this file run with `--receiver`, the target), then
 * `receive()` as it is by default (examples/deploy_receiver.ts).
 *
 * `deno task bench` runs it as the `gateway` scenario
 * ({@linkcode runGatewayBench}); alone:
 *
 *   deno run -A --unstable-kv bench/gateway.ts [--quick] [--seconds=5] [--backlog=1000000] [--only=single,ndjson,relay]
 *
 * The load comes from a worker thread (its own event loop), over HTTP on
 * 127.0.0.1. Reported: acknowledged readings/s and latency percentiles for
 * single-reading POSTs from 50 concurrent clients and for NDJSON batches of
 * 500; readings/s and the gateway's peak RSS for the relay catch-up.
 *
 * @module
 */

import { collectGarbage, denoCommand } from "./harness.ts";
import { DatabaseSync } from "node:sqlite";
import { open } from "../mod.ts";
import { ingest, relay } from "../gateway.ts";
import { TokenTable } from "../src/gateway/auth.ts";
import { bodyFormat, parseReadings, readCapped } from "../src/gateway/body.ts";
import { readingKey } from "../src/gateway/ingest.ts";

interface LoadJob {
  url: string;
  clients: number;
  seconds: number;
  batch: number;
  device: number;
}

interface LoadResult {
  requests: number;
  readings: number;
  failed: number;
  latencies: number[];
  ms: number;
}

function load(job: LoadJob): Promise<LoadResult> {
  const worker = new Worker(import.meta.url, {
    type: "module",
    name: "gateway-load",
  });
  return new Promise((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<LoadResult>) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(e);
    };
    worker.postMessage(job);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ??
    NaN;
}

const DEVICES = Object.fromEntries(
  Array.from({ length: 100 }, (_, i) => [`dev-${i}`, `token-${i}`]),
);

/** The same protocol on node:sqlite: WAL, synchronous=FULL, a transaction per request. */
async function sqliteHandler(
  path: string,
): Promise<(r: Request) => Promise<Response>> {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  db.exec(
    "CREATE TABLE IF NOT EXISTS readings (key TEXT PRIMARY KEY, doc TEXT NOT NULL)",
  );
  const insert = db.prepare(
    "INSERT OR IGNORE INTO readings (key, doc) VALUES (?, ?)",
  );
  const tokens = await TokenTable.create(DEVICES);
  return async (request) => {
    const header = request.headers.get("authorization") ?? "";
    const device = tokens.identify(/^Bearer (\S+)$/.exec(header)?.[1]);
    if (device === undefined) return new Response("no", { status: 401 });
    const format = bodyFormat(request.headers.get("content-type"));
    if (format === undefined) return new Response("type", { status: 415 });
    const bytes = await readCapped(request, 256 * 1024);
    if (!(bytes instanceof Uint8Array)) {
      return new Response("big", { status: 413 });
    }
    const readings = parseReadings(bytes, format);
    if (!Array.isArray(readings)) return new Response("bad", { status: 400 });
    const receivedAt = Date.now();
    let stored = 0;
    db.exec("BEGIN");
    try {
      for (const { value } of readings) {
        const reading = value as Record<string, unknown>;
        const key = readingKey(device, reading.seq as number);
        stored += Number(
          insert.run(key, JSON.stringify({ ...reading, device, receivedAt }))
            .changes,
        );
      }
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
    return Response.json({ stored, duplicates: readings.length - stored });
  };
}

function serve(
  handler: (r: Request) => Promise<Response>,
): { url: string; close(): Promise<void> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/readings`,
    close: () => server.shutdown(),
  };
}

/** What the gateway scenario needs from the main benchmark. */
export interface GatewayBenchContext {
  /** `--quick`: 1 s per ingest run and a 100,000-reading backlog. */
  readonly quick: boolean;
  /** Progress output (stderr). */
  readonly log: (line: string) => void;
  /** Seconds per ingest run (default 5, 1 with `quick`). */
  readonly seconds?: number;
  /** Readings in the relay backlog (default 1,000,000, 100,000 with `quick`). */
  readonly backlog?: number;
  /** Which parts to run (default all). */
  readonly parts?: readonly ("single" | "ndjson" | "relay")[];
}

/** A target row (the shape `bench/main.ts`'s `wordTargets` takes). */
export interface GatewayTarget {
  /** What is measured. */
  readonly name: string;
  /** The goal, in words. */
  readonly goal: string;
  /** The measurement, in words. */
  readonly measured: string;
  /** Whether it was met. */
  readonly met: boolean;
}

/** One ingest run: a workload against one server. */
export interface IngestRow {
  /** The workload. */
  readonly workload: string;
  /** The server. */
  readonly server: string;
  /** Concurrent clients. */
  readonly clients: number;
  /** Readings per request. */
  readonly batch: number;
  /** Acknowledged readings per second. */
  readonly readingsPerSec: number;
  /** Latency percentiles, ms. */
  readonly p50: number;
  /** 99th percentile latency, ms. */
  readonly p99: number;
  /** Requests answered. */
  readonly requests: number;
  /** Requests not answered 200. */
  readonly failed: number;
}

/** The relay catch-up run. */
export interface RelayRow {
  /** What the relay sent to. */
  readonly target: string;
  /** Readings acknowledged. */
  readonly readings: number;
  /** Seconds from start to `idle()`. */
  readonly seconds: number;
  /** Readings per second. */
  readonly readingsPerSec: number;
  /** Batches acknowledged. */
  readonly batches: number;
  /** Failed attempts. */
  readonly retries: number;
  /** The gateway process's RSS before the relay started, MiB. */
  readonly rssBeforeMiB: number | null;
  /** Its peak RSS while relaying, MiB. */
  readonly peakRssMiB: number | null;
  /** Its live JS heap once caught up (after a full GC), MiB. */
  readonly liveHeapMiB: number | null;
  /** Readings the receiver holds at the end. */
  readonly received: number;
}

/** What {@linkcode runGatewayBench} returns. */
export interface GatewayReport {
  /** The ingest runs. */
  readonly ingest: readonly IngestRow[];
  /** The relay runs. */
  readonly relay: readonly RelayRow[];
  /** Sizes. */
  readonly seconds: number;
  /** Readings in the relay backlog. */
  readonly backlog: number;
  /** The issue 17 targets. */
  readonly targets: readonly GatewayTarget[];
  /** The report section, markdown. */
  readonly markdown: string;
}

const nf = (n: number) => Math.round(n).toLocaleString("en");

function row(
  workload: string,
  server: string,
  clients: number,
  batch: number,
  r: LoadResult,
): IngestRow {
  const sorted = r.latencies.sort((a, b) => a - b);
  return {
    workload,
    server,
    clients,
    batch,
    readingsPerSec: r.readings / (r.ms / 1000),
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    requests: r.requests,
    failed: r.failed,
  };
}

/**
 * Runs the gateway scenario: ingest of single readings (50 clients) and of
 * NDJSON batches of 500 against the same server on node:sqlite, then a
 * relay catch-up of a backlog to a receiver on Deno KV in another process.
 *
 * @param ctx Quick or full, and where progress goes.
 * @returns Every figure, the targets and a markdown section.
 */
export async function runGatewayBench(
  ctx: GatewayBenchContext,
): Promise<GatewayReport> {
  const { log } = ctx;
  const seconds = ctx.seconds ?? (ctx.quick ? 1 : 5);
  const backlog = ctx.backlog ?? (ctx.quick ? 100_000 : 1_000_000);
  const parts = new Set(ctx.parts ?? ["single", "ndjson", "relay"]);
  const md: string[] = [];
  const p = (s = "") => md.push(s);
  const ingestRows: IngestRow[] = [];
  const relayRows: RelayRow[] = [];
  const targets: GatewayTarget[] = [];
  const dir = await Deno.makeTempDir({ prefix: "tether-bench-gateway-" });
  try {
    const workloads = [
      ["single", "1 reading/POST, 50 clients", 50, 1],
      ["ndjson", "NDJSON 500/POST, 8 clients", 8, 500],
    ] as const;
    for (const [part, name, clients, batch] of workloads) {
      if (!parts.has(part)) continue;
      const rows: IngestRow[] = [];
      for (const impl of ["ours (file, strict)", "node:sqlite (WAL, FULL)"]) {
        log(`gateway: ${name}, ${impl}, ${seconds} s`);
        const ours = impl.startsWith("ours");
        const db = ours
          ? await open({ path: `${dir}/${batch}.tdb` })
          : undefined;
        const handler = ours
          ? ingest(db!, { devices: DEVICES, maxReadings: 1000 })
          : await sqliteHandler(`${dir}/${batch}.sqlite`);
        const server = serve(handler);
        const result = await load({
          url: server.url,
          clients,
          seconds,
          batch,
          device: 0,
        });
        await server.close();
        await db?.close();
        const r = row(name, impl, clients, batch, result);
        if (r.failed > 0) {
          throw new Error(`${name} on ${impl}: ${r.failed} requests failed`);
        }
        rows.push(r);
        ingestRows.push(r);
      }
      const [ours, sqlite] = rows as [IngestRow, IngestRow];
      const ratio = ours.readingsPerSec / sqlite.readingsPerSec;
      if (part === "single") {
        targets.push({
          name: "single-reading POSTs from 50 concurrent clients, durable",
          goal: "≥ 2x node:sqlite's acknowledged readings/s (p99 reported)",
          measured: `${ratio.toFixed(2)}x (${nf(ours.readingsPerSec)} vs ${
            nf(sqlite.readingsPerSec)
          } readings/s; p99 ${ours.p99.toFixed(1)} vs ${
            sqlite.p99.toFixed(1)
          } ms)`,
          met: ratio >= 2,
        });
      } else {
        targets.push({
          name: "NDJSON batches of 500 readings, durable",
          goal: "≥ 100,000 readings/s ingested",
          measured: `${nf(ours.readingsPerSec)} readings/s (${
            ratio.toFixed(2)
          }x node:sqlite's ${nf(sqlite.readingsPerSec)}; p99 ${
            ours.p99.toFixed(1)
          } ms)`,
          met: ours.readingsPerSec >= 100_000,
        });
      }
    }
    if (ingestRows.length > 0) {
      p(`### Gateway ingest (${seconds} s per run, load from a worker thread)`);
      p();
      p(
        "| workload | server | acked readings/s | p50 ms | p99 ms | requests | failed |",
      );
      p("|---|---|---:|---:|---:|---:|---:|");
      for (const r of ingestRows) {
        p(
          `| ${r.workload} | ${r.server} | ${nf(r.readingsPerSec)} | ${
            r.p50.toFixed(1)
          } | ${r.p99.toFixed(1)} | ${r.requests} | ${r.failed} |`,
        );
      }
    }
    if (parts.has("relay")) {
      relayRows.push(...await relayBench(dir, backlog, log));
      const http = relayRows[0]!;
      targets.push({
        name: `relay catch-up of a ${
          nf(backlog)
        }-reading backlog to a receiver on Deno KV`,
        goal: "≥ 50,000 readings/s, gateway memory bounded (peak RSS reported)",
        measured: `${nf(http.readingsPerSec)} readings/s (${
          nf(http.readings)
        } in ${
          http.seconds.toFixed(1)
        } s, ${http.batches} batches of up to 10,000; ${
          nf(relayRows[1]!.readingsPerSec)
        } readings/s with the default 2,000); gateway RSS ${
          http.rssBeforeMiB ?? "?"
        } MiB before, ${http.peakRssMiB ?? "?"} MiB peak, live heap ${
          http.liveHeapMiB ?? "?"
        } MiB once caught up`,
        met: http.readingsPerSec >= 50_000 && http.received === backlog,
      });
      p();
      p(
        `### Relay catch-up of ${nf(backlog)} readings (gateway file database)`,
      );
      p();
      p(
        "| target | readings | seconds | readings/s | batches | retries | RSS before MiB | peak RSS MiB | live heap MiB |",
      );
      p("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
      for (const r of relayRows) {
        p(
          `| ${r.target} | ${nf(r.readings)} | ${r.seconds.toFixed(1)} | ${
            nf(r.readingsPerSec)
          } | ${r.batches} | ${r.retries} | ${r.rssBeforeMiB ?? ""} | ${
            r.peakRssMiB ?? ""
          } | ${r.liveHeapMiB ?? ""} |`,
        );
      }
      p("");
      p(
        "The backlog is written by a child process; the gateway process opens it and relays, so its RSS is a gateway's (plus the ingest runs before, whose garbage is collected first). The receivers run in processes of their own. The peak RSS is mostly garbage V8 has not collected yet: the benchmark runs with `--max-old-space-size=16384` (for the 10M-document scenario), so V8 lets the old generation grow before a full GC; the live heap once caught up (after a full GC, the backlog still open) is what the gateway keeps.",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return {
    ingest: ingestRows,
    relay: relayRows,
    seconds,
    backlog,
    targets,
    markdown: md.join("\n"),
  };
}

/** One relay catch-up over HTTP to a receiver process on Deno KV. */
async function httpRelay(
  source: Awaited<ReturnType<typeof open>>,
  backlog: number,
  log: (line: string) => void,
  spec: {
    target: string;
    script: string;
    args: string[];
    relayName: string;
    kvPath: string;
    batch?: { batchSize: number; maxBatchBytes: number };
  },
): Promise<RelayRow> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const self = denoCommand();
  const receiver = new Deno.Command(self, {
    args: [
      "run",
      "--quiet",
      "--unstable-kv",
      "-A",
      spec.script,
      ...spec.args,
    ],
    env: {
      PORT: String(port),
      KV_PATH: spec.kvPath,
      SYNC_TOKEN: "sync",
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const count = async (): Promise<number> =>
      (await (await fetch(`http://127.0.0.1:${port}/readings/count`))
        .json()).count;
    for (let i = 0;; i++) {
      try {
        await count();
        break;
      } catch (e) {
        if (i > 300) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    log(
      `gateway: relaying ${nf(backlog)} readings to ${
        spec.target.split(" (")[0]
      }`,
    );
    (globalThis as { gc?: () => void }).gc?.();
    const rss = () => {
      try {
        return Deno.memoryUsage().rss;
      } catch {
        return NaN;
      }
    };
    const baseline = rss();
    let peak = baseline;
    const sampler = setInterval(() => peak = Math.max(peak, rss()), 50);
    const t = performance.now();
    const uplink = relay(source, {
      collections: ["readings"],
      to: `http://127.0.0.1:${port}/sync`,
      token: "sync",
      name: spec.relayName,
      ...spec.batch,
    });
    await uplink.idle();
    const ms = performance.now() - t;
    clearInterval(sampler);
    collectGarbage();
    const live = (() => {
      try {
        return Deno.memoryUsage().heapUsed;
      } catch {
        return NaN;
      }
    })();
    const stats = uplink.stats();
    await uplink.close();
    const mib = (n: number) => Number.isNaN(n) ? null : Math.round(n / 2 ** 20);
    return {
      target: spec.target,
      readings: stats.sent,
      seconds: ms / 1000,
      readingsPerSec: stats.sent / (ms / 1000),
      batches: stats.batches,
      retries: stats.retries,
      rssBeforeMiB: mib(baseline),
      peakRssMiB: mib(peak),
      liveHeapMiB: mib(live),
      received: await count(),
    };
  } finally {
    receiver.kill();
    await receiver.status;
  }
}

/**
 * `--receiver`: a receiver like examples/deploy_receiver.ts, with
 * `assumeNew` (PORT, KV_PATH, SYNC_TOKEN from the environment).
 */
async function runReceiver(): Promise<void> {
  const { receive } = await import("../gateway.ts");
  const db = await open({ kv: await Deno.openKv(Deno.env.get("KV_PATH")) });
  const sync = receive(db, {
    token: Deno.env.get("SYNC_TOKEN") ?? "",
    collections: ["readings"],
    assumeNew: true,
  });
  Deno.serve(
    { hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")) },
    async (request) => {
      const { pathname } = new URL(request.url);
      if (request.method === "GET" && pathname === "/readings/count") {
        return Response.json({
          count: await db.collection("readings").count(),
        });
      }
      return await sync(request);
    },
  );
}

/**
 * `--fill PATH N`: writes a backlog of N readings of 100 devices (as
 * `ingest` stores them) into the file database at PATH, then closes it.
 */
async function runFill(path: string, backlog: number): Promise<void> {
  const gateway = await open({ path, durability: "batched" });
  const readings = gateway.collection("readings");
  const now = Date.now();
  for (let i = 0; i < backlog; i += 10_000) {
    const batch = new Map<string, unknown>();
    for (let j = i; j < Math.min(backlog, i + 10_000); j++) {
      batch.set(readingKey(`dev-${j % 100}`, j), {
        seq: j,
        temp: 21.5,
        humidity: 40 + (j % 20),
        device: `dev-${j % 100}`,
        receivedAt: now,
      });
    }
    await readings.putBatch(batch);
  }
  await gateway.close();
}

async function relayBench(
  dir: string,
  backlog: number,
  log: (line: string) => void,
): Promise<RelayRow[]> {
  const rows: RelayRow[] = [];
  log(`gateway: filling a backlog of ${nf(backlog)} readings`);
  // Filled by a child process: the RSS sampled here is then a gateway's
  // that opens a backlog and relays it, not the filler's heap besides.
  const filled = await new Deno.Command(denoCommand(), {
    args: [
      "run",
      "--quiet",
      "-A",
      new URL(import.meta.url).pathname,
      "--fill",
      `${dir}/backlog.tdb`,
      String(backlog),
    ],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!filled.success) throw new Error("gateway: filling the backlog failed");
  const reopened = await open({ path: `${dir}/backlog.tdb` });
  try {
    // The receivers run in their own process, so the RSS sampled here is the
    // gateway's alone: this file with `--receiver` (receive() with
    // assumeNew, the target), then examples/deploy_receiver.ts (receive()
    // as it is by default), each on its own KV file, under its own relay
    // name.
    // The first row is the target's: a receiver of one's own on a KV file,
    // with the batch size docs/gateway.md advises there (10,000; the
    // default stays 2,000, for Deno Deploy's CPU time per request), then
    // the same receiver with the default batch.
    const receivers = [
      {
        target:
          "receive() with assumeNew on Deno KV (a SQLite file), HTTP on 127.0.0.1, another process, batchSize 10,000",
        script: new URL(import.meta.url).pathname,
        args: ["--receiver"],
        relayName: "bench-kv-bulk-10k",
        batch: { batchSize: 10_000, maxBatchBytes: 4_194_304 },
      },
      {
        target:
          "receive() with assumeNew on Deno KV (a SQLite file), HTTP on 127.0.0.1, another process",
        script: new URL(import.meta.url).pathname,
        args: ["--receiver"],
        relayName: "bench-kv-bulk",
      },
      {
        target:
          "receive() on Deno KV (a SQLite file), HTTP on 127.0.0.1, another process",
        script: new URL("../examples/deploy_receiver.ts", import.meta.url)
          .pathname,
        args: [],
        relayName: "bench-kv",
      },
    ];
    for (const [i, spec] of receivers.entries()) {
      rows.push(
        await httpRelay(reopened, backlog, log, {
          ...spec,
          kvPath: `${dir}/cloud-${i}.sqlite`,
        }),
      );
    }
    // For comparison: the same backlog relayed (under another relay name) to
    // a Database in this process on a file (batched durability): what the
    // relay itself sustains when the target is not Deno KV.
    log(`gateway: relaying ${nf(backlog)} readings to a file Database`);
    const local = await open({
      path: `${dir}/local.tdb`,
      durability: "batched",
    });
    try {
      const t2 = performance.now();
      const direct = relay(reopened, {
        collections: ["readings"],
        to: local,
        name: "bench-local",
      });
      await direct.idle();
      const ms2 = performance.now() - t2;
      const s = direct.stats();
      await direct.close();
      rows.push({
        target: "a file Database in the same process (batched durability)",
        readings: s.sent,
        seconds: ms2 / 1000,
        readingsPerSec: s.sent / (ms2 / 1000),
        batches: s.batches,
        retries: s.retries,
        rssBeforeMiB: null,
        peakRssMiB: null,
        liveHeapMiB: null,
        received: await local.collection("readings").count(),
      });
    } finally {
      await local.close();
    }
  } finally {
    await reopened.close();
  }
  return rows;
}

// ---- the load generator (runs in a worker) ----
if ((globalThis as { name?: string }).name === "gateway-load") {
  const scope = self as unknown as {
    onmessage: (event: MessageEvent<LoadJob>) => void;
    postMessage(message: unknown): void;
  };
  scope.onmessage = async (event: MessageEvent<LoadJob>) => {
    const { url, clients, seconds, batch, device } = event.data;
    const end = performance.now() + seconds * 1000;
    const latencies: number[] = [];
    let requests = 0;
    let readings = 0;
    let failed = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: clients }, async (_, c) => {
      let seq = 0;
      const token = `token-${(device + c) % 100}`;
      while (performance.now() < end) {
        const lines: string[] = [];
        for (let i = 0; i < batch; i++) {
          lines.push(
            JSON.stringify({
              seq: ++seq * 1000 + c,
              temp: 21.5,
              humidity: 40 + (seq % 20),
              battery: 3.71,
            }),
          );
        }
        const t = performance.now();
        const response = await fetch(url, {
          method: "POST",
          headers: {
            authorization: `Bearer ${token}`,
            "content-type": batch === 1
              ? "application/json"
              : "application/x-ndjson",
          },
          body: batch === 1 ? lines[0]! : lines.join("\n"),
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - t);
        requests++;
        if (response.status === 200) readings += batch;
        else failed++;
      }
    }));
    const result: LoadResult = {
      requests,
      readings,
      failed,
      latencies,
      ms: performance.now() - start,
    };
    scope.postMessage(result);
  };
} else if (import.meta.main && Deno.args.includes("--receiver")) {
  await runReceiver();
} else if (import.meta.main && Deno.args[0] === "--fill") {
  await runFill(Deno.args[1]!, Number(Deno.args[2]));
} else if (import.meta.main) {
  const arg = (name: string) =>
    Deno.args.find((x) => x.startsWith(`--${name}=`))?.split("=")[1];
  const only = arg("only");
  const report = await runGatewayBench({
    quick: Deno.args.includes("--quick"),
    log: (line) => console.error(line),
    ...(arg("seconds") === undefined
      ? {}
      : { seconds: Number(arg("seconds")) }),
    ...(arg("backlog") === undefined
      ? {}
      : { backlog: Number(arg("backlog")) }),
    ...(only === undefined
      ? {}
      : { parts: only.split(",") as ("single" | "ndjson" | "relay")[] }),
  });
  console.log(report.markdown);
  console.log();
  for (const t of report.targets) {
    console.log(
      `${t.met ? "PASS" : "MISS"} ${t.name}: ${t.measured} (goal ${t.goal})`,
    );
  }
}
