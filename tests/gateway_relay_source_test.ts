/**
 * The relay's reads of its source: a read that fails is retried with
 * backoff (the relay no longer stops), a change the source cannot read
 * (damaged at the source) is held or, with `onRefused: "skip"`, passed over
 * and counted, and a closed source ends the relay.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ClosedError, type Database, open } from "../mod.ts";
import { databaseSource, startRelay } from "../src/gateway/relay.ts";
import type { ChangeSource } from "../src/gateway/protocol.ts";
import { damageDocument } from "./fixtures/kv_damage.ts";

function relayWith(
  source: Database,
  target: Database,
  changes: ChangeSource,
  options: Record<string, unknown>,
  delays: number[],
  events: string[],
) {
  return startRelay(source, {
    collections: ["readings"],
    to: target,
    batchSize: 2,
    retry: { initial: 100, max: 1_000 },
    logger: {
      info: () => {},
      warn: (_m: string, d?: Record<string, unknown>) =>
        events.push(String(d?.event)),
      error: (_m: string, d?: Record<string, unknown>) =>
        events.push(String(d?.event)),
    },
    ...options,
  }, {
    source: changes,
    sleep: (ms) => {
      delays.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
  });
}

Deno.test("relay: a failed read of the source is retried with backoff, not the end of the relay", async () => {
  await using source = await open();
  await using target = await open();
  const readings = source.collection("readings");
  for (let i = 0; i < 5; i++) await readings.put(`r${i}`, { i });
  const real = databaseSource(source);
  let failures = 3;
  const flaky: ChangeSource = {
    changes(collection, options) {
      if (failures > 0) {
        failures--;
        return (async function* () {
          yield* [];
          throw new Error("the storage is busy");
        })();
      }
      return real.changes(collection, options);
    },
  };
  const delays: number[] = [];
  const events: string[] = [];
  const uplink = relayWith(source, target, flaky, {}, delays, events);
  await uplink.idle();
  assert.equal(await target.collection("readings").count(), 5);
  const s = uplink.stats();
  assert.equal(s.sent, 5);
  assert.equal(s.retries, 3);
  assert.match(s.lastError ?? "", /busy/);
  assert.deepEqual(events.filter((e) => e !== "relay-caught-up"), [
    "relay-read-retry",
    "relay-read-retry",
    "relay-read-retry",
  ]);
  // Exponential: 100, 200, 400 (jitter 0.5 around each).
  assert.equal(delays.length, 3);
  assert(delays[0]! < delays[1]! && delays[1]! < delays[2]!, String(delays));
  await uplink.close();
});

Deno.test("relay: a change damaged at the source is held (default) until the item is written again, or passed over and counted with onRefused: skip", async () => {
  using kv = await Deno.openKv(":memory:");
  await using source = await open({ kv });
  const readings = source.collection("readings");
  for (const id of ["a", "b", "bad", "c", "d"]) await readings.put(id, { id });
  assert.equal(await damageDocument(kv, "readings", "bad"), 1);
  const real = databaseSource(source);

  // Held: everything before it goes, then the read is retried.
  {
    await using target = await open();
    const delays: number[] = [];
    const events: string[] = [];
    let reads = 0;
    const counted: ChangeSource = {
      changes(collection, options) {
        reads++;
        return real.changes(collection, options);
      },
    };
    const uplink = relayWith(source, target, counted, {}, delays, events);
    for (let i = 0; i < 200 && uplink.stats().retries < 3; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    const s = uplink.stats();
    assert(s.retries >= 3, `retries ${s.retries}`);
    assert.equal(s.unreadable, 0);
    assert.match(s.lastError ?? "", /position \d+ \(a put of "bad"/);
    assert(events.includes("relay-read-retry"));
    assert.deepEqual(
      (await target.collection<{ id: string }>("readings").find().toArray())
        .map((d) => d.id)
        .sort(),
      ["a", "b"],
    );
    assert(reads > 3);
    await uplink.close();
  }

  // Skipped: the rest goes, the skip is logged and counted.
  {
    await using target = await open();
    const delays: number[] = [];
    const events: string[] = [];
    const uplink = relayWith(
      source,
      target,
      real,
      { onRefused: "skip", name: "skipping", batchSize: 3 },
      delays,
      events,
    );
    await uplink.idle();
    assert.deepEqual(
      (await target.collection<{ id: string }>("readings").find().toArray())
        .map((d) => d.id)
        .sort(),
      ["a", "b", "c", "d"],
    );
    const s = uplink.stats();
    assert.equal(s.unreadable, 1);
    assert.equal(s.sent, 4);
    assert.equal(s.retries, 0);
    assert.deepEqual(events.filter((e) => e === "relay-unreadable").length, 1);
    await uplink.close();
    // Its checkpoint is past it: a restart does not meet it again.
    const again = relayWith(
      source,
      target,
      real,
      { onRefused: "skip", name: "skipping" },
      delays,
      events,
    );
    await again.idle();
    assert.equal(again.stats().unreadable, 0);
    await again.close();
  }

  // Held, then mended at the source (the item written again): the relay
  // goes on by itself, and the new version is delivered.
  {
    await using target = await open();
    const events: string[] = [];
    const uplink = relayWith(
      source,
      target,
      real,
      { name: "mended" },
      [],
      events,
    );
    for (let i = 0; i < 200 && uplink.stats().retries < 2; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assert(uplink.stats().retries >= 2);
    await readings.put("bad", { id: "bad", mended: true });
    await uplink.idle();
    const docs = await target.collection<{ id: string; mended?: boolean }>(
      "readings",
    ).find().toArray();
    assert.deepEqual(docs.map((d) => d.id).sort(), [
      "a",
      "b",
      "bad",
      "c",
      "d",
    ]);
    assert.equal(docs.find((d) => d.id === "bad")?.mended, true);
    assert.equal(uplink.stats().unreadable, 0);
    await uplink.close();
  }
});

Deno.test("relay: a damaged change passed over (onRefused: skip) as the last of the feed is not met again after a restart", async () => {
  using kv = await Deno.openKv(":memory:");
  await using source = await open({ kv });
  const readings = source.collection("readings");
  for (const id of ["a", "b", "bad"]) await readings.put(id, { id });
  assert.equal(await damageDocument(kv, "readings", "bad"), 1);
  const real = databaseSource(source);
  await using target = await open();
  const events: string[] = [];
  const options = { onRefused: "skip", name: "tail" };
  const first = relayWith(source, target, real, options, [], events);
  await first.idle();
  assert.equal(first.stats().unreadable, 1);
  assert.equal(first.stats().sent, 2);
  await first.close();
  const saved = await source.collection<{ positions: Record<string, string> }>(
    "_relay",
  ).get("tail");
  assert(saved !== null);
  // The checkpoint is the damaged change's position (the last of the feed).
  const seqs: string[] = [];
  try {
    for await (const c of readings.changes({ live: false })) {
      seqs.push(c.seq);
    }
  } catch (e) {
    seqs.push(String((e as { seq?: string }).seq));
  }
  assert.equal(saved.positions.readings, seqs[seqs.length - 1]);
  const again = relayWith(source, target, real, options, [], events);
  await again.idle();
  assert.equal(again.stats().unreadable, 0);
  assert.equal(again.stats().sent, 0);
  assert.equal(
    events.filter((e) => e === "relay-unreadable").length,
    1,
  );
  // A change written after it still goes.
  await readings.put("c", { id: "c" });
  await again.idle();
  assert.equal(again.stats().sent, 1);
  assert.equal(await target.collection("readings").count(), 3);
  await again.close();
});

Deno.test("relay: a closed source database ends the relay", async () => {
  await using source = await open();
  await using target = await open();
  await source.collection("readings").put("a", { a: 1 });
  // A second read is a retry: it settles the race below instead of hanging.
  const retried = Promise.withResolvers<string>();
  let reads = 0;
  const closedSource: ChangeSource = {
    changes() {
      if (++reads > 1) retried.resolve("retried a closed source");
      return (async function* () {
        yield* [];
        throw new ClosedError("Cannot read changes: the database is closed");
      })();
    },
  };
  const events: string[] = [];
  const uplink = relayWith(source, target, closedSource, {}, [], events);
  const outcome = await Promise.race([
    uplink.idle().then(() => "idle", (e) => e),
    retried.promise,
  ]);
  // A relay that retries would spin on the test's instant sleep: close it.
  await uplink.close();
  assert.ok(outcome instanceof ClosedError, String(outcome));
  assert.equal(reads, 1);
  assert.equal(uplink.stats().retries, 0);
  assert.deepEqual(events, ["relay-stopped"]);
});

/** Waits (on real timers) until `ready()`, at most about 5 s. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000 && !ready(); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert(ready(), `timed out waiting for ${what}`);
}

Deno.test("relay: skipUnreadable() passes over the change a held relay cannot read, at once and for good; one mended by then is delivered", async () => {
  using kv = await Deno.openKv(":memory:");
  await using source = await open({ kv });
  const readings = source.collection("readings");
  for (const id of ["a", "bad", "c"]) await readings.put(id, { id });
  assert.equal(await damageDocument(kv, "readings", "bad"), 1);
  await using target = await open();
  const events: string[] = [];
  const logger = {
    info: () => {},
    warn: (_m: string, d?: Record<string, unknown>) =>
      events.push(String(d?.event)),
    error: (_m: string, d?: Record<string, unknown>) =>
      events.push(String(d?.event)),
  };
  // Real timers and a backoff of a minute: only skipUnreadable() ends it.
  const options = {
    collections: ["readings"],
    to: target,
    name: "held",
    retry: { initial: 60_000, max: 60_000 },
    logger,
  };
  const uplink = startRelay(source, options, {
    source: databaseSource(source),
  });
  assert.equal(uplink.skipUnreadable(), undefined, "not held yet");
  await until(() => uplink.stats().unreadableAt !== undefined, "the hold");
  const held = uplink.stats().unreadableAt!;
  assert.equal(held.collection, "readings");
  assert.match(uplink.stats().lastError ?? "", /a put of "bad"/);
  assert.equal(await target.collection("readings").count(), 1); // "a"
  assert.deepEqual(uplink.skipUnreadable(), held);
  await uplink.idle();
  const s = uplink.stats();
  assert.equal(s.unreadable, 1);
  assert.equal(s.unreadableAt, undefined);
  assert.equal(s.sent, 2);
  assert.deepEqual(
    (await target.collection<{ id: string }>("readings").find().toArray())
      .map((d) => d.id).sort(),
    ["a", "c"],
  );
  assert.equal(events.filter((e) => e === "relay-unreadable").length, 1);
  assert.equal(uplink.skipUnreadable(), undefined, "nothing held now");
  await uplink.close();
  assert.equal(uplink.skipUnreadable(), undefined, "closed");
  // The checkpoint is past it: a restart does not meet it again.
  const again = startRelay(source, options, {
    source: databaseSource(source),
  });
  await again.idle();
  assert.equal(again.stats().unreadableAt, undefined);
  assert.equal(again.stats().sent, 0);
  await again.close();

  // Mended before the skip takes effect: delivered, not passed over.
  await readings.put("bad2", { id: "bad2" });
  assert.equal(await damageDocument(kv, "readings", "bad2"), 1);
  const mended = startRelay(source, options, {
    source: databaseSource(source),
  });
  await until(() => mended.stats().unreadableAt !== undefined, "the hold");
  await readings.put("bad2", { id: "bad2", mended: true });
  assert.notEqual(mended.skipUnreadable(), undefined);
  await mended.idle();
  assert.equal(mended.stats().unreadable, 0);
  assert.deepEqual(await target.collection("readings").get("bad2"), {
    id: "bad2",
    mended: true,
  });
  await mended.close();
});

Deno.test("relay: stats().unreadableAt names a held change only while that is what fails", async () => {
  using kv = await Deno.openKv(":memory:");
  await using source = await open({ kv });
  const readings = source.collection("readings");
  for (const id of ["a", "bad"]) await readings.put(id, { id });
  assert.equal(await damageDocument(kv, "readings", "bad"), 1);
  await using target = await open();
  const real = databaseSource(source);
  let busy = false;
  const flaky: ChangeSource = {
    changes(collection, options) {
      if (!busy) return real.changes(collection, options);
      return (async function* () {
        await new Promise((r) => setTimeout(r, 1));
        yield* [];
        throw new Error("the storage is busy");
      })();
    },
  };
  const uplink = relayWith(source, target, flaky, {}, [], []);
  await until(() => uplink.stats().unreadableAt !== undefined, "the hold");
  busy = true;
  await until(() => /busy/.test(uplink.stats().lastError ?? ""), "busy");
  assert.equal(uplink.stats().unreadableAt, undefined);
  assert.equal(uplink.skipUnreadable(), undefined);
  busy = false;
  await until(() => uplink.stats().unreadableAt !== undefined, "the hold");
  await uplink.close();
});
