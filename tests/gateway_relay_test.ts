// relay() against a fake change feed, a fake fetch and an injected clock:
// checkpoints advance only after an acknowledgement, retries back off
// exponentially with jitter (capped), Retry-After is honoured, the bandwidth
// cap spaces batches, priorities order collections, retention applies only
// to relayed documents.

import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";
import { ingest, receive } from "../gateway.ts";
import { startRelay } from "../src/gateway/relay.ts";
import { backoff } from "../src/gateway/retry.ts";
import type { RelayBatch } from "../src/gateway/protocol.ts";
import { FakeFeed } from "./fixtures/gateway_fake_feed.ts";

interface Harness {
  feed: FakeFeed;
  gateway: Database;
  cloud: Database;
  delays: number[];
  posts: RelayBatch[];
  clock: { now(): number };
  /** Makes the next `n` posts fail with what `fail` returns. */
  failNext(n: number, fail: () => Response | Promise<Response>): void;
  fetch: typeof fetch;
  advance(ms: number): void;
}

async function harness(): Promise<Harness> {
  const feed = new FakeFeed();
  let now = 1_000_000;
  const clock = { now: () => now };
  const gateway = await open({ clock });
  const cloud = await open();
  const endpoint = receive(cloud, { token: "sync" });
  const delays: number[] = [];
  const posts: RelayBatch[] = [];
  let failures: (() => Response | Promise<Response>)[] = [];
  const fetchFn =
    (async (input: string | URL | Request, init?: RequestInit) => {
      const request = new Request(input, init);
      posts.push(JSON.parse(await request.clone().text()));
      const fail = failures.shift();
      const answer = fail !== undefined ? fail() : endpoint(request);
      const aborted = new Promise<never>((_, reject) => {
        const signal = init?.signal;
        if (signal?.aborted) reject(signal.reason);
        signal?.addEventListener("abort", () => reject(signal.reason));
      });
      return await Promise.race([answer, aborted]);
    }) as typeof fetch;
  return {
    feed,
    gateway,
    cloud,
    delays,
    posts,
    clock,
    fetch: fetchFn,
    failNext(n, fail) {
      failures = Array.from({ length: n }, () => fail);
    },
    advance(ms) {
      now += ms;
    },
  };
}

function start(h: Harness, options: Record<string, unknown> = {}) {
  return startRelay(h.gateway, {
    collections: ["readings"],
    to: "http://cloud.test/sync",
    token: "sync",
    fetch: h.fetch,
    clock: h.clock,
    retry: { initial: 100, max: 1_000 },
    ...options,
  }, {
    source: h.feed,
    sleep: (ms) => {
      h.delays.push(ms);
      h.advance(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
  });
}

async function close(h: Harness) {
  await h.gateway.close();
  await h.cloud.close();
}

Deno.test("relay: sends the backlog in batches and resumes from its checkpoint after a restart", async () => {
  const h = await harness();
  for (let i = 0; i < 7; i++) {
    await h.feed.put(h.gateway, "readings", `a/${i}`, { i });
  }
  const uplink = start(h, { batchSize: 3 });
  await uplink.idle();
  assert.deepEqual(h.posts.map((p) => p.changes.length), [3, 3, 1]);
  assert.equal(await h.cloud.collection("readings").count(), 7);
  assert.deepEqual(await h.cloud.collection("readings").get("a/4"), { i: 4 });
  const s = uplink.stats();
  assert.equal(s.sent, 7);
  assert.equal(s.batches, 3);
  assert.equal(s.caughtUp, true);
  assert.equal(s.pending, 0);
  await uplink.close();
  // New changes while it is down; a new relay (same name) sends only those.
  await h.feed.put(h.gateway, "readings", "a/7", { i: 7 });
  h.posts.length = 0;
  const again = start(h, { batchSize: 3 });
  await again.idle();
  assert.deepEqual(h.posts.flatMap((p) => p.changes.map((c) => c.key)), [
    "a/7",
  ]);
  // The origin is kept in the source database: the same across restarts.
  const origin =
    (await h.gateway.collection("_relay").get("default") as { origin: string })
      .origin;
  assert.match(origin, /^gateway~[0-9a-f]{12}$/);
  assert.equal(h.posts[0]!.origin, origin);
  await again.close();
  await close(h);
});

Deno.test("relay: a failed batch is retried with capped exponential backoff and jitter; the checkpoint moves only after the ack", async () => {
  const h = await harness();
  await h.feed.put(h.gateway, "readings", "a/1", { t: 1 });
  const checkpoints: unknown[] = [];
  let n = 0;
  h.failNext(7, async () => {
    checkpoints.push(await h.gateway.collection("_relay").get("default"));
    if (n++ === 2) throw new TypeError("connection refused");
    return new Response("busy", { status: 500 });
  });
  const uplink = start(h);
  await uplink.idle();
  // Delays: min(1000, 100 * 2^k), half fixed, half jitter (random 0.5 -> 3/4).
  assert.deepEqual(h.delays, [75, 150, 300, 600, 750, 750, 750]);
  assert.deepEqual(
    h.delays,
    [0, 1, 2, 3, 4, 5, 6].map((k) =>
      backoff(k, { initial: 100, max: 1_000 }, 0.5)
    ),
  );
  assert.equal(h.posts.length, 8);
  for (const cp of checkpoints) {
    assert.deepEqual((cp as { positions: object }).positions, {});
  }
  const s = uplink.stats();
  assert.equal(s.retries, 7);
  assert.match(s.lastError!, /500 from http:\/\/cloud.test\/sync: busy/);
  assert.deepEqual(s.positions, { readings: h.feed.log[0]!.seq });
  assert.equal(await h.cloud.collection("readings").count(), 1);
  await uplink.close();
  await close(h);
});

Deno.test("relay: Retry-After of a 429 or 503 is honoured; backoff bounds", async () => {
  assert.equal(backoff(0, {}, 0), 500);
  assert.ok(Math.abs(backoff(100, {}, 0.999999999) - 60_000) < 0.001);
  assert.ok(backoff(3, { initial: 10, factor: 3, max: 10_000 }, 0) === 135);
  const h = await harness();
  await h.feed.put(h.gateway, "readings", "a/1", { t: 1 });
  h.failNext(
    1,
    () =>
      new Response("full", { status: 503, headers: { "retry-after": "7" } }),
  );
  const uplink = start(h);
  await uplink.idle();
  assert.deepEqual(h.delays, [7_000]);
  await uplink.close();
  await close(h);
});

Deno.test("relay: maxBytesPerSecond spaces the batches of a backlog", async () => {
  const h = await harness();
  for (let i = 0; i < 10; i++) {
    await h.feed.put(h.gateway, "readings", `a/${i}`, {
      pad: "x".repeat(1000),
    });
  }
  const uplink = start(h, { batchSize: 2, maxBytesPerSecond: 1000 });
  await uplink.idle();
  assert.equal(h.posts.length, 5);
  const total = uplink.stats().bytes;
  assert.ok(total > 10_000, `${total}`);
  // The first batch goes at once; each later one waits for the bytes before it.
  const waited = h.delays.reduce((a, b) => a + b, 0);
  const first = JSON.stringify(h.posts[0]!.changes).length;
  assert.ok(
    Math.abs(waited - (total - first)) < total * 0.05,
    `waited ${waited} ms for ${total} bytes`,
  );
  await uplink.close();
  await close(h);
});

Deno.test("relay: collections go in the order of their priority", async () => {
  const h = await harness();
  for (let i = 0; i < 4; i++) {
    await h.feed.put(h.gateway, "low", `l/${i}`, { i });
    await h.feed.put(h.gateway, "high", `h/${i}`, { i });
  }
  const uplink = start(h, {
    collections: ["low", { name: "high", priority: 10 }],
    batchSize: 2,
  });
  await uplink.idle();
  assert.deepEqual(
    h.posts.map((p) => p.changes[0]!.collection),
    ["high", "high", "low", "low"],
  );
  // While "low" waits, a new "high" change goes first.
  h.posts.length = 0;
  await h.gateway.collection("low").put("l/9", {});
  await h.gateway.collection("high").put("h/9", {});
  h.feed.push({
    type: "put",
    collection: "low",
    key: "l/9",
    version: 1,
    doc: {},
  });
  h.feed.push({
    type: "put",
    collection: "high",
    key: "h/9",
    version: 1,
    doc: {},
  });
  await uplink.idle();
  assert.deepEqual(h.posts.map((p) => p.changes[0]!.key), ["h/9", "l/9"]);
  await uplink.close();
  await close(h);
});

Deno.test("relay: ingest's ttl applies once a reading is relayed; its own rewrite is not sent again; deletes of an ingest stream stay local", async () => {
  const h = await harness();
  ingest(h.gateway, { devices: { d: "t" }, ttl: 60_000 });
  const readings = h.gateway.collection<Record<string, unknown>>("readings");
  await h.feed.put(h.gateway, "readings", "d/1", {
    seq: 1,
    device: "d",
    receivedAt: h.clock.now() - 10_000,
  });
  await h.feed.put(h.gateway, "readings", "d/2", {
    seq: 2,
    device: "d",
    receivedAt: h.clock.now(),
  });
  // The uplink hangs: nothing expires meanwhile, and close() aborts the post.
  h.failNext(1, () => new Promise<Response>(() => {}));
  const uplink = start(h);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.posts.length, 1);
  assert.equal((await readings.getEntry("d/1"))!.expiresAt, undefined);
  await uplink.close();
  h.failNext(0, () => new Response());
  const up = start(h);
  await up.idle();
  const entry = (await readings.getEntry("d/1"))!;
  assert.equal(entry.expiresAt, (entry.value.receivedAt as number) + 60_000);
  assert.equal(typeof entry.value.relayedAt, "number");
  assert.equal(up.stats().retained, 2);
  // The rewrite shows up in the feed (as the engine's would); it is skipped.
  h.posts.length = 0;
  h.feed.push({
    type: "put",
    collection: "readings",
    key: "d/1",
    version: entry.version,
    doc: entry.value,
  });
  await h.feed.delete(h.gateway, "readings", "d/2");
  await up.idle();
  assert.deepEqual(h.posts, []);
  assert.deepEqual(await h.cloud.collection("readings").get("d/1"), {
    seq: 1,
    device: "d",
    receivedAt: entry.value.receivedAt as number,
  });
  assert.equal(await h.cloud.collection("readings").has("d/2"), true);
  await up.close();
  await close(h);
});

Deno.test("relay: deletes of a plain collection are sent; a key's later change replaces its earlier one in a batch", async () => {
  const h = await harness();
  await h.feed.put(h.gateway, "notes", "n/1", { v: 1 });
  await h.feed.put(h.gateway, "notes", "n/2", { v: 1 });
  await h.feed.put(h.gateway, "notes", "n/1", { v: 2 });
  await h.feed.delete(h.gateway, "notes", "n/2");
  const uplink = start(h, { collections: ["notes"] });
  await uplink.idle();
  assert.deepEqual(h.posts[0]!.changes.map((c) => `${c.type} ${c.key}`), [
    "put n/1",
    "delete n/2",
  ]);
  assert.deepEqual(await h.cloud.collection("notes").get("n/1"), { v: 2 });
  assert.equal(await h.cloud.collection("notes").has("n/2"), false);
  await uplink.close();
  await close(h);
});

Deno.test("relay: to a Database applies directly; idle waits for changes made before the call; close stops a retry loop", async () => {
  const h = await harness();
  const uplink = start(h, { to: h.cloud, token: undefined });
  await uplink.idle();
  await h.feed.put(h.gateway, "readings", "x/1", { t: 1 });
  await uplink.idle();
  assert.deepEqual(await h.cloud.collection("readings").get("x/1"), { t: 1 });
  assert.ok(h.feed.liveOpened >= 1); // it waited on the live feed in between
  await uplink.close();
  await assert.rejects(uplink.idle(), /closed/);
  // A relay that can never deliver still closes.
  h.failNext(1_000_000, () => new Response("no", { status: 500 }));
  const stuck = startRelay(h.gateway, {
    collections: ["readings"],
    to: "http://cloud.test/sync",
    token: "sync",
    name: "other",
    fetch: h.fetch,
    retry: { initial: 1, max: 1 },
  }, { source: h.feed });
  await h.feed.put(h.gateway, "readings", "x/2", {});
  const idle = stuck.idle();
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(stuck.stats().retries > 0);
  assert.equal(stuck.stats().caughtUp, false);
  assert.equal(stuck.stats().pending, 2);
  await stuck.close();
  await assert.rejects(idle, /closed/);
  await close(h);
});

Deno.test("relay: options are checked before anything starts", async () => {
  const h = await harness();
  const bad: Record<string, unknown>[] = [
    { collections: [] },
    { collections: ["_relay"] },
    { to: "not a url" },
    { token: undefined },
    { to: 5 },
    { origin: "has space" },
    { batchSize: 0 },
    { maxBytesPerSecond: -1 },
    { retry: { factor: 0.5 } },
  ];
  for (const options of bad) {
    assert.throws(
      () => start(h, options),
      (e: Error) => e instanceof TypeError || e instanceof RangeError,
      JSON.stringify(options),
    );
  }
  await close(h);
});

Deno.test("relay: a checkpoint older than the feed holds (FeedGapError) starts the collection over; the receiver skips what it has", async () => {
  const h = await harness();
  for (let i = 0; i < 4; i++) {
    await h.feed.put(h.gateway, "readings", `a/${i}`, { i });
  }
  const first = start(h);
  await first.idle();
  await first.close();
  // While the relay is away, a deletion marker it would need is purged.
  await h.feed.put(h.gateway, "readings", "a/9", { i: 9 });
  h.feed.oldest = h.feed.log.at(-1)!.seq;
  h.posts.length = 0;
  const logged: string[] = [];
  const again = start(h, { logger: { warn: (m: string) => logged.push(m) } });
  await again.idle();
  assert.equal(again.stats().resyncs, 1);
  assert.match(
    logged.join("\n"),
    /cannot resume 'readings'.*sending its current state again/,
  );
  // Everything was offered again; only the new reading was applied.
  assert.deepEqual(h.posts.flatMap((p) => p.changes.map((c) => c.key)), [
    "a/0",
    "a/1",
    "a/2",
    "a/3",
    "a/9",
  ]);
  assert.equal(await h.cloud.collection("readings").count(), 5);
  assert.equal(
    (await h.cloud.collection("readings").getEntry("a/0"))!.version,
    1,
  );
  await again.close();
  await close(h);
});

Deno.test("relay: the POST body is the batch's JSON as JSON.stringify writes it, a key's later change replacing the earlier", async () => {
  const h = await harness();
  const bodies: string[] = [];
  const inner = h.fetch;
  const fetchFn =
    (async (input: string | URL | Request, init?: RequestInit) => {
      bodies.push(String(init?.body));
      return await inner(input, init);
    }) as typeof fetch;
  const tricky = {
    text: 'quote " backslash \\ line\u2028sep \u{1F600} \u0000',
    n: -1.5e-7,
    list: [null, true, { deep: "é" }],
  };
  await h.feed.put(h.gateway, "readings", "a/1", tricky);
  await h.feed.put(h.gateway, "readings", "a/2", { i: 2 });
  await h.feed.put(h.gateway, "readings", "a/1", { ...tricky, again: 1 });
  const uplink = startRelay(h.gateway, {
    collections: ["readings"],
    to: "http://cloud.test/sync",
    token: "sync",
    fetch: fetchFn,
    clock: h.clock,
  }, { source: h.feed, sleep: () => Promise.resolve(), random: () => 0.5 });
  await uplink.idle();
  assert.equal(bodies.length, 1);
  const parsed = JSON.parse(bodies[0]!) as RelayBatch;
  assert.equal(bodies[0], JSON.stringify(parsed));
  assert.deepEqual(Object.keys(parsed), ["origin", "changes"]);
  assert.deepEqual(parsed.changes.map((c) => c.key), ["a/2", "a/1"]);
  assert.deepEqual(parsed.changes[1]!.doc, { ...tricky, again: 1 });
  assert.deepEqual(await h.cloud.collection("readings").get("a/1"), {
    ...tricky,
    again: 1,
  });
  await uplink.close();
  await close(h);
});
