// The relay's pipeline against a model: while a batch is in flight the next
// page is read (at most one ahead), batches go one at a time in feed order,
// the checkpoint never passes a batch that was not acknowledged, and through
// random failures, lost acknowledgements, slow answers and restarts the
// receiver ends with what the source holds.

import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";
import { applyBatch, receive } from "../gateway.ts";
import { startRelay } from "../src/gateway/relay.ts";
import {
  compareSeq,
  type FeedOptions,
  type RelayBatch,
} from "../src/gateway/protocol.ts";
import { FakeFeed } from "./fixtures/gateway_fake_feed.ts";
import { mulberry32 } from "../bench/data.ts";

/** A small seeded generator, so a failing seed can be replayed. */
const generator = mulberry32;

/** Lets the event loop turn `n` times. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

interface Checkpoint {
  positions: Record<string, string>;
}

async function storedCheckpoint(
  gateway: Database,
): Promise<Record<string, string>> {
  const cp = await gateway.collection<Checkpoint>("_relay").get("default");
  return cp?.positions ?? {};
}

// Three seeds in the normal suite, twenty in `deno task torture`.
const SEEDS = Deno.env.get("TETHER_TORTURE") !== undefined
  ? Array.from({ length: 20 }, (_, i) => i + 1)
  : [1, 2, 3];
for (const seed of SEEDS) {
  Deno.test(`relay pipeline model (seed ${seed}): random failures, lost acks, slow answers and restarts; one batch in flight, in feed order; the checkpoint never passes an unacknowledged batch; the receiver ends equal to the source`, async () => {
    const random = generator(seed);
    const feed = new FakeFeed();
    await using gateway = await open();
    await using cloud = await open();
    const endpoint = receive(cloud, { token: "sync" });
    const collections = ["high", "low"];
    /** Per collection, the last position of the batches acknowledged. */
    const acked: Record<string, string> = {};
    /** Per collection, the last batch posted and not yet acknowledged. */
    const unacked: Record<string, RelayBatch | undefined> = {};
    let inFlight = 0;
    let posts = 0;
    /** Broken rules (an assertion thrown in fetch would only be retried). */
    const violations: string[] = [];
    const check = (ok: boolean, message: string) => {
      if (!ok) violations.push(message);
    };
    const fetchFn =
      (async (input: string | URL | Request, init?: RequestInit) => {
        inFlight++;
        posts++;
        try {
          check(inFlight === 1, "two batches in flight");
          const request = new Request(input, init);
          const batch = JSON.parse(await request.clone().text()) as RelayBatch;
          const name = batch.changes[0]!.collection;
          check(batch.changes.every((c) => c.collection === name), "mixed");
          const seqs = batch.changes.map((c) => c.seq);
          check(
            seqs.every((x, i) => i === 0 || compareSeq(seqs[i - 1]!, x) < 0),
            `not in feed order: ${seqs}`,
          );
          // A retry sends the same batch again; a new one starts past the
          // last acknowledged (no acknowledged change is sent twice).
          const waiting = unacked[name];
          if (waiting !== undefined) {
            check(
              JSON.stringify(batch.changes) === JSON.stringify(waiting.changes),
              "a retry is not the same batch",
            );
          } else if (acked[name] !== undefined) {
            check(
              compareSeq(seqs[0]!, acked[name]) > 0,
              `${name}: ${seqs[0]} sent again after ${acked[name]} was acked`,
            );
          }
          unacked[name] = batch;
          // The stored checkpoint is never past what was acknowledged.
          for (
            const [c, at] of Object.entries(await storedCheckpoint(gateway))
          ) {
            check(
              acked[c] !== undefined && compareSeq(at, acked[c]) <= 0,
              `checkpoint of ${c} at ${at}, acknowledged ${acked[c]}`,
            );
          }
          await turns(Math.floor(random() * 3));
          const r = random();
          if (r < 0.1) return new Response("busy", { status: 503 });
          if (r < 0.15) throw new TypeError("connection reset");
          const response = await endpoint(request);
          check(response.status === 200, `status ${response.status}`);
          if (r < 0.25) {
            // Applied, but the answer is lost: the relay sends it again.
            return new Response("lost", { status: 502 });
          }
          acked[name] = seqs.at(-1)!;
          unacked[name] = undefined;
          await turns(Math.floor(random() * 2));
          return response;
        } finally {
          inFlight--;
        }
      }) as typeof fetch;
    const start = () =>
      startRelay(gateway, {
        collections: ["low", { name: "high", priority: 5 }],
        to: "http://cloud.test/sync",
        token: "sync",
        fetch: fetchFn,
        batchSize: 1 + Math.floor(random() * 4),
        retry: { initial: 1, max: 2 },
      }, {
        source: feed,
        sleep: () => Promise.resolve(),
        random,
      });
    let uplink = start();
    /** What the source holds: key -> doc, or undefined once deleted. */
    const model = new Map<string, unknown>();
    for (let step = 0; step < 120; step++) {
      const name = collections[Math.floor(random() * 2)]!;
      const key = `${name}:k${Math.floor(random() * 12)}`;
      const r = random();
      if (r < 0.2 && model.get(key) !== undefined) {
        await feed.delete(gateway, name, key);
        model.set(key, undefined);
      } else {
        const doc = { step, v: Math.floor(random() * 1000) };
        await feed.put(gateway, name, key, doc);
        model.set(key, doc);
      }
      const next = random();
      if (next < 0.05) {
        // A restart: an unacknowledged batch is sent again by the next relay.
        // An answer that came after close() does not count: the relay
        // resumes from its checkpoint.
        await uplink.close();
        const cp = await storedCheckpoint(gateway);
        for (const c of collections) {
          unacked[c] = undefined;
          if (cp[c] === undefined) delete acked[c];
          else acked[c] = cp[c];
        }
        uplink = start();
      } else if (next < 0.15) {
        await uplink.idle();
      } else if (next < 0.4) {
        await turns(1 + Math.floor(random() * 3));
      }
    }
    await uplink.idle();
    const stats = uplink.stats();
    assert.equal(stats.pending, 0);
    assert.equal(stats.caughtUp, true);
    await uplink.close();
    assert.ok(posts > 0);
    assert.deepEqual(violations, []);
    for (const [key, doc] of model) {
      const [name, id] = [key.split(":")[0]!, key];
      assert.deepEqual(await cloud.collection(name).get(id), doc ?? null, key);
    }
    // Caught up: the checkpoint is the end of each collection's feed.
    const last = (c: string) =>
      feed.log.filter((x) => x.collection === c).at(-1)?.seq;
    assert.deepEqual(await storedCheckpoint(gateway), {
      ...(last("high") === undefined ? {} : { high: last("high") }),
      ...(last("low") === undefined ? {} : { low: last("low") }),
    });
  });
}

Deno.test("relay pipeline: the next page is read while a batch is in flight, never more than one ahead", async () => {
  const feed = new FakeFeed();
  await using gateway = await open();
  await using cloud = await open();
  for (let i = 0; i < 9; i++) {
    await feed.put(gateway, "readings", `a/${i}`, { i });
  }
  let pageReads = 0;
  const source = {
    changes(collection: string, options: FeedOptions) {
      if (options.live === false) pageReads++;
      return feed.changes(collection, options);
    },
  };
  const duringFirst: number[] = [];
  const pendingDuringFirst: number[] = [];
  let posts = 0;
  // deno-lint-ignore prefer-const
  let uplink: ReturnType<typeof startRelay>;
  const fetchFn =
    (async (input: string | URL | Request, init?: RequestInit) => {
      const request = new Request(input, init);
      const batch = JSON.parse(await request.clone().text()) as RelayBatch;
      if (posts++ === 0) {
        // Held until the relay reads ahead (or long enough to tell it does not).
        for (let i = 0; i < 50 && pageReads < 2; i++) await turns(1);
        await turns(20); // room to read further ahead, which it must not
        duringFirst.push(pageReads);
        pendingDuringFirst.push(uplink.stats().pending);
      }
      return Response.json(await applyBatch(cloud, batch));
    }) as typeof fetch;
  uplink = startRelay(gateway, {
    collections: ["readings"],
    to: "http://cloud.test/sync",
    token: "sync",
    fetch: fetchFn,
    batchSize: 3,
  }, { source });
  await uplink.idle();
  assert.deepEqual(duringFirst, [2]); // page 1 in flight, page 2 read
  assert.deepEqual(pendingDuringFirst, [6]); // both count as pending
  assert.equal(posts, 3);
  assert.equal(await cloud.collection("readings").count(), 9);
  await uplink.close();
});

Deno.test("relay pipeline: a failed batch holds back the checkpoint and the page read ahead; both go once it is acknowledged", async () => {
  const feed = new FakeFeed();
  await using gateway = await open();
  await using cloud = await open();
  for (let i = 0; i < 4; i++) {
    await feed.put(gateway, "readings", `a/${i}`, { i });
  }
  const sent: string[][] = [];
  const checkpoints: Record<string, string>[] = [];
  let failures = 3;
  const fetchFn =
    (async (input: string | URL | Request, init?: RequestInit) => {
      const request = new Request(input, init);
      const batch = JSON.parse(await request.clone().text()) as RelayBatch;
      sent.push(batch.changes.map((c) => c.key));
      checkpoints.push(await storedCheckpoint(gateway));
      if (batch.changes[0]!.key === "a/0" && failures-- > 0) {
        return new Response("down", { status: 500 });
      }
      return Response.json(await applyBatch(cloud, batch));
    }) as typeof fetch;
  const uplink = startRelay(gateway, {
    collections: ["readings"],
    to: "http://cloud.test/sync",
    token: "sync",
    fetch: fetchFn,
    batchSize: 2,
    retry: { initial: 1, max: 1 },
  }, { source: feed, sleep: () => turns(1) });
  await uplink.idle();
  assert.deepEqual(sent, [
    ["a/0", "a/1"],
    ["a/0", "a/1"],
    ["a/0", "a/1"],
    ["a/0", "a/1"],
    ["a/2", "a/3"],
  ]);
  // While the first batch failed, nothing was checkpointed.
  assert.deepEqual(checkpoints.slice(0, 4), [{}, {}, {}, {}]);
  assert.equal(uplink.stats().retries, 3);
  assert.equal(await cloud.collection("readings").count(), 4);
  assert.deepEqual(await storedCheckpoint(gateway), {
    readings: feed.log.at(-1)!.seq,
  });
  await uplink.close();
});
