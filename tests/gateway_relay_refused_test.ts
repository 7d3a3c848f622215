// relay() and changes its target refuses for good (400, 409, 413 from a
// receive endpoint; a document a target Database refuses): the batch is
// split to find them, the rest is delivered in order; "hold" retries the
// refused change until the target takes it, "skip" sets it aside in
// `_relay_refused` and goes on, and holds after maxRefusedInARow in a row.

import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";
import {
  receive,
  REFUSED_COLLECTION,
  type RefusedChange,
  type RelayBatch,
} from "../gateway.ts";
import { databaseSource, startRelay } from "../src/gateway/relay.ts";

interface Setup {
  gateway: Database;
  cloud: Database;
  posts: RelayBatch[];
  /** Statuses answered, in order. */
  answers: number[];
  delays: number[];
  /** Runs after each backoff sleep (its number, from 1). */
  onSleep: (n: number) => Promise<void> | void;
  /** Answers a POST instead of the receiver when it returns a Response. */
  intercept: (batch: RelayBatch) => Response | undefined;
  fetch: typeof fetch;
}

/**
 * A gateway with readings a/0..a/{n-1} (a/{bad} with serial "dup"), and a
 * cloud whose unique index on `serial` already holds "dup" (key "z").
 */
async function setup(n: number, bad: number[]): Promise<Setup> {
  let now = 1_000_000;
  const gateway = await open({ clock: { now: () => now } });
  const cloud = await open();
  const cloudReadings = cloud.collection("readings");
  await cloudReadings.createIndex("serial", { unique: true });
  await cloudReadings.put("z", { serial: "dup" });
  const readings = gateway.collection("readings");
  for (let i = 0; i < n; i++) {
    await readings.put(`a/${i}`, {
      i,
      serial: bad.includes(i) ? "dup" : `s${i}`,
    });
  }
  const endpoint = receive(cloud, { token: "sync" });
  const s: Setup = {
    gateway,
    cloud,
    posts: [],
    answers: [],
    delays: [],
    onSleep: () => {},
    intercept: () => undefined,
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const request = new Request(input, init);
      const batch = JSON.parse(await request.clone().text()) as RelayBatch;
      s.posts.push(batch);
      const response = s.intercept(batch) ?? await endpoint(request);
      s.answers.push(response.status);
      now += 1;
      return response;
    }) as typeof fetch,
  };
  return s;
}

function start(s: Setup, options: Record<string, unknown> = {}) {
  return startRelay(s.gateway, {
    collections: [{ name: "readings", ttl: 60_000 }],
    to: "http://cloud.test/sync",
    token: "sync",
    fetch: s.fetch,
    retry: { initial: 100, max: 1_000 },
    ...options,
  }, {
    source: databaseSource(s.gateway),
    sleep: async (ms) => {
      s.delays.push(ms);
      // A relay stuck retrying fails its test (instead of spinning).
      if (s.delays.length > 50) throw new Error("retried 50 times");
      await s.onSleep(s.delays.length);
    },
    random: () => 0.5,
  });
}

/** The keys of the accepted POSTs, in order. */
function delivered(s: Setup): string[] {
  return s.posts.flatMap((p, i) =>
    s.answers[i] === 200 ? p.changes.map((c) => c.key) : []
  );
}

const keys = (from: number, to: number, but: number[] = []) =>
  Array.from({ length: to - from }, (_, i) => `a/${from + i}`).filter((k) =>
    !but.some((b) => k === `a/${b}`)
  );

async function cloudKeys(cloud: Database): Promise<string[]> {
  const docs = await cloud.collection<{ i?: number }>("readings").find()
    .toArray();
  return docs.filter((d) => d.i !== undefined).map((d) => d.i!)
    .sort((a, b) => a - b).map((i) => `a/${i}`);
}

Deno.test("relay refused, skip: a 409 batch is split, the refused change set aside with its document and reason, the rest delivered in order", async () => {
  const s = await setup(10, [6]);
  const uplink = start(s, { onRefused: "skip" });
  await uplink.idle();
  assert.deepEqual(await cloudKeys(s.cloud), keys(0, 10, [6]));
  assert.deepEqual(delivered(s), keys(0, 10, [6])); // in feed order, once
  assert.equal(s.answers.filter((a) => a === 409).length, 4); // 10, 5, 3, 1
  const aside = await s.gateway.collection<RefusedChange>(REFUSED_COLLECTION)
    .find().toArray();
  assert.equal(aside.length, 1);
  const [r] = aside;
  assert.equal(r!.relay, "default");
  assert.equal(r!.collection, "readings");
  assert.equal(r!.key, "a/6");
  assert.equal(r!.type, "put");
  assert.deepEqual(r!.doc, { i: 6, serial: "dup" });
  assert.match(r!.reason, /^409 .*unique index 'serial_1'/);
  const st = uplink.stats();
  assert.equal(st.refused, 1);
  assert.equal(st.sent, 9);
  assert.equal(st.retries, 0); // a split is not a retry
  // Retention applies to relayed documents only: the refused one stays.
  const readings = s.gateway.collection("readings");
  assert.equal((await readings.getEntry("a/6"))!.expiresAt, undefined);
  assert.notEqual((await readings.getEntry("a/5"))!.expiresAt, undefined);
  // The checkpoint is past the page: a restart sends nothing again.
  await uplink.close();
  s.posts.length = 0;
  const again = start(s, { onRefused: "skip" });
  await again.idle();
  assert.equal(s.posts.length, 0);
  await again.close();
  await s.gateway.close();
  await s.cloud.close();
});

Deno.test("relay refused, hold (default): what comes before the refused change is delivered; it is retried with backoff and the rest waits until the target takes it", async () => {
  const s = await setup(8, [3]);
  s.onSleep = async (n) => {
    if (n === 4) {
      // Before the 4th retry, the receiver gives the value up.
      assert.deepEqual(await cloudKeys(s.cloud), keys(0, 3));
      await s.cloud.collection("readings").delete("z");
    }
  };
  const uplink = start(s);
  await uplink.idle();
  assert.deepEqual(await cloudKeys(s.cloud), keys(0, 8));
  assert.deepEqual(delivered(s), keys(0, 8));
  assert.deepEqual(s.delays, [75, 150, 300, 600]);
  const st = uplink.stats();
  assert.equal(st.retries, 4);
  assert.equal(st.refused, 0);
  assert.match(st.lastError!, /^409 /);
  assert.equal(
    await s.gateway.collection(REFUSED_COLLECTION).count(),
    0,
  );
  await uplink.close();
  await s.gateway.close();
  await s.cloud.close();
});

Deno.test("relay refused, skip: after maxRefusedInARow refusals with nothing taken between it holds, and skips again once the target takes something", async () => {
  const s = await setup(10, [7]);
  // A receiver that refuses everything at first (a misconfigured one).
  let broken = true;
  s.intercept = () =>
    broken ? new Response("bad protocol", { status: 400 }) : undefined;
  s.onSleep = (n) => {
    if (n === 3) broken = false;
  };
  const uplink = start(s, { onRefused: "skip", maxRefusedInARow: 2 });
  await uplink.idle();
  const st = uplink.stats();
  // a/0 and a/1 set aside, a/2 held (3 retries); a/7 (a 409 once the
  // receiver works) set aside: the run restarted when a/2 was taken.
  assert.equal(st.refused, 3);
  assert.equal(st.retries, 3);
  const aside = await s.gateway.collection<RefusedChange>(REFUSED_COLLECTION)
    .find().toArray();
  assert.deepEqual(aside.map((r) => r.key).sort(), ["a/0", "a/1", "a/7"]);
  assert.deepEqual(await cloudKeys(s.cloud), keys(2, 10, [7]));
  await uplink.close();
  await s.gateway.close();
  await s.cloud.close();
});

Deno.test("relay refused: a 413 for a batch of several changes splits it under either policy; nothing is set aside", async () => {
  for (const onRefused of ["hold", "skip"]) {
    const s = await setup(9, []);
    s.intercept = (batch) =>
      batch.changes.length > 2
        ? new Response("too large", { status: 413 })
        : undefined;
    const uplink = start(s, { onRefused });
    await uplink.idle();
    assert.deepEqual(await cloudKeys(s.cloud), keys(0, 9));
    assert.deepEqual(delivered(s), keys(0, 9));
    assert.ok(
      s.posts.every((p, i) => s.answers[i] !== 200 || p.changes.length <= 2),
    );
    assert.equal(uplink.stats().refused, 0);
    assert.equal(uplink.stats().retries, 0);
    assert.equal(uplink.stats().sent, 9);
    await uplink.close();
    await s.gateway.close();
    await s.cloud.close();
  }
});

Deno.test("relay refused, skip: to a Database, a document its unique index refuses is set aside; network errors are still retried, never set aside", async () => {
  const s = await setup(6, [1, 4]);
  const uplink = start(s, { onRefused: "skip", to: s.cloud, token: undefined });
  await uplink.idle();
  assert.deepEqual(await cloudKeys(s.cloud), keys(0, 6, [1, 4]));
  const aside = await s.gateway.collection<RefusedChange>(REFUSED_COLLECTION)
    .find().toArray();
  assert.deepEqual(aside.map((r) => r.key).sort(), ["a/1", "a/4"]);
  assert.match(aside[0]!.reason, /unique index 'serial_1'/);
  await uplink.close();

  // A fetch that throws (connection refused: a TypeError) is retried.
  const t = await setup(3, []);
  let down = 2;
  const failing = ((input: string | URL | Request, init?: RequestInit) => {
    if (down-- > 0) {
      return Promise.reject(new TypeError("connection refused"));
    }
    return t.fetch(input, init);
  }) as typeof fetch;
  const second = start(t, { onRefused: "skip", fetch: failing });
  await second.idle();
  assert.equal(second.stats().retries, 2);
  assert.equal(second.stats().refused, 0);
  assert.deepEqual(await cloudKeys(t.cloud), keys(0, 3));
  await second.close();
  for (const db of [s.gateway, s.cloud, t.gateway, t.cloud]) await db.close();
});

Deno.test("relay refused: a later refusal of the same key replaces its earlier one; a document too large to set aside whole is set aside without it", async () => {
  const s = await setup(2, [0]);
  const uplink = start(s, { onRefused: "skip" });
  await uplink.idle();
  await s.gateway.collection("readings").put("a/0", {
    i: 0,
    serial: "dup",
    again: true,
  });
  await uplink.idle();
  const aside = await s.gateway.collection<RefusedChange>(REFUSED_COLLECTION)
    .find().toArray();
  assert.equal(aside.length, 1);
  assert.deepEqual(aside[0]!.doc, { i: 0, serial: "dup", again: true });
  assert.equal(aside[0]!.version, 2);
  assert.equal(uplink.stats().refused, 2);
  await uplink.close();
  await s.gateway.close();
  await s.cloud.close();

  // maxDocumentBytes of the gateway: a document at the limit, refused by
  // the target, cannot be stored again inside a larger record.
  const gateway = await open({ maxValueBytes: 400 });
  const big = { pad: "x".repeat(300) };
  await gateway.collection("readings").put("big", big);
  const fetchFn = (() =>
    Promise.resolve(
      new Response("refused", { status: 400 }),
    )) as typeof fetch;
  const relayBig = startRelay(gateway, {
    collections: ["readings"],
    to: "http://cloud.test/sync",
    token: "sync",
    fetch: fetchFn,
    onRefused: "skip",
  }, { source: databaseSource(gateway) });
  await relayBig.idle();
  const [r] = await gateway.collection<RefusedChange>(REFUSED_COLLECTION)
    .find().toArray();
  assert.equal(r!.key, "big");
  assert.equal(r!.docOmitted, true);
  assert.equal("doc" in r!, false);
  await relayBig.close();
  await gateway.close();
});

Deno.test("relay refused: options are checked", async () => {
  const s = await setup(0, []);
  assert.throws(
    () => start(s, { onRefused: "drop" }),
    TypeError,
  );
  assert.throws(() => start(s, { maxRefusedInARow: 0 }), RangeError);
  assert.throws(() => start(s, { maxRefusedInARow: 1.5 }), RangeError);
  assert.throws(
    () => start(s, { collections: [REFUSED_COLLECTION] }),
    /not a collection to relay/,
  );
  await s.gateway.close();
  await s.cloud.close();
});
