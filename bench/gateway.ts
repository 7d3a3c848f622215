/**
 * Gateway benchmark: our `ingest` (file database, strict durability: each
 * answer after fsync, concurrent requests sharing one) against the same HTTP
 * server built on `node:sqlite` (WAL, `synchronous=FULL`, one transaction per
 * request), then a relay catch-up of a backlog to a receiver on Deno KV.
 *
 *   deno run -A --unstable-kv bench/gateway.ts [--seconds=5] [--backlog=1000000] [--skip-relay]
 *
 * The load comes from a worker thread (its own event loop), over HTTP on
 * 127.0.0.1. Reported: acknowledged readings/s and latency percentiles for
 * single-reading POSTs from 50 concurrent clients and for NDJSON batches of
 * 500; readings/s and the gateway's peak RSS for the relay catch-up.
 *
 * @module
 */

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
    const device = await tokens.identify(/^Bearer (\S+)$/.exec(header)?.[1]);
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

function report(name: string, impl: string, r: LoadResult): number {
  const sorted = r.latencies.sort((a, b) => a - b);
  const rate = r.readings / (r.ms / 1000);
  console.log(
    `| ${name} | ${impl} | ${Math.round(rate).toLocaleString("en")} | ${
      percentile(sorted, 0.5).toFixed(1)
    } | ${percentile(sorted, 0.99).toFixed(1)} | ${r.requests} | ${r.failed} |`,
  );
  return rate;
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? fallback : Number(a.split("=")[1]);
  };
  const seconds = arg("seconds", 5);
  const backlog = arg("backlog", 1_000_000);
  const dir = await Deno.makeTempDir({ prefix: "tether-bench-gateway-" });
  try {
    console.log(
      `\n### Gateway ingest (${seconds} s per run, load from a worker thread)\n`,
    );
    console.log(
      "| workload | server | acked readings/s | p50 ms | p99 ms | requests | failed |",
    );
    console.log("|---|---|---:|---:|---:|---:|---:|");
    const ratios: string[] = [];
    for (
      const [name, clients, batch] of [["1 reading/POST, 50 clients", 50, 1], [
        "NDJSON 500/POST, 4 clients",
        4,
        500,
      ]] as const
    ) {
      const rates: number[] = [];
      for (const impl of ["ours (file, strict)", "node:sqlite (WAL, FULL)"]) {
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
        rates.push(report(name, impl, result));
        await server.close();
        await db?.close();
      }
      ratios.push(
        `${name}: ours / node:sqlite = ${(rates[0]! / rates[1]!).toFixed(2)}x`,
      );
    }
    console.log("\n" + ratios.join("\n"));

    if (Deno.args.includes("--skip-relay")) return;
    const gateway = await open({
      path: `${dir}/backlog.tdb`,
      durability: "batched",
    });
    const readings = gateway.collection("readings");
    console.log(
      `\n### Relay catch-up of ${
        backlog.toLocaleString("en")
      } readings to a receiver on Deno KV (HTTP, 127.0.0.1)\n`,
    );
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
    const reopened = await open({ path: `${dir}/backlog.tdb` });
    // The receiver is examples/deploy_receiver.ts in its own process, so the
    // RSS sampled here is the gateway's alone.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const receiver = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--unstable-kv",
        "-A",
        new URL("../examples/deploy_receiver.ts", import.meta.url).pathname,
      ],
      env: {
        PORT: String(port),
        KV_PATH: `${dir}/cloud.sqlite`,
        SYNC_TOKEN: "sync",
      },
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    for (let i = 0;; i++) {
      try {
        await (await fetch(`http://127.0.0.1:${port}/readings/count`))
          .arrayBuffer();
        break;
      } catch (e) {
        if (i > 300) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    (globalThis as { gc?: () => void }).gc?.();
    const baseline = Deno.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(
      () => peak = Math.max(peak, Deno.memoryUsage().rss),
      50,
    );
    const t = performance.now();
    const uplink = relay(reopened, {
      collections: ["readings"],
      to: `http://127.0.0.1:${port}/sync`,
      token: "sync",
    });
    await uplink.idle();
    const ms = performance.now() - t;
    clearInterval(sampler);
    const stats = uplink.stats();
    console.log(
      "| readings | seconds | readings/s | batches | retries | RSS before MiB | peak RSS MiB |",
    );
    console.log("|---:|---:|---:|---:|---:|---:|---:|");
    console.log(
      `| ${stats.sent.toLocaleString("en")} | ${(ms / 1000).toFixed(1)} | ${
        Math.round(stats.sent / (ms / 1000)).toLocaleString("en")
      } | ${stats.batches} | ${stats.retries} | ${
        (baseline / 2 ** 20).toFixed(0)
      } | ${(peak / 2 ** 20).toFixed(0)} |`,
    );
    const count = await (await fetch(`http://127.0.0.1:${port}/readings/count`))
      .json();
    console.log(
      `\nThe receiver holds ${count.count.toLocaleString("en")} readings.`,
    );
    await uplink.close();
    receiver.kill();
    await receiver.status;
    // For comparison: the same backlog relayed (under another relay name) to
    // a Database in this process on a file (batched durability): what the
    // relay itself sustains when the target is not Deno KV.
    const local = await open({
      path: `${dir}/local.tdb`,
      durability: "batched",
    });
    const t2 = performance.now();
    const direct = relay(reopened, {
      collections: ["readings"],
      to: local,
      name: "bench-local",
    });
    await direct.idle();
    const ms2 = performance.now() - t2;
    console.log(
      `Relayed to a file Database in-process: ${
        direct.stats().sent.toLocaleString("en")
      } readings in ${(ms2 / 1000).toFixed(1)} s = ${
        Math.round(direct.stats().sent / (ms2 / 1000)).toLocaleString("en")
      } readings/s.`,
    );
    await direct.close();
    await local.close();
    await reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
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
} else {
  await main();
}
