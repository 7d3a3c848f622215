// Behaviour of open() and the background machinery that does not depend on
// the storage (the conformance suites cover the rest on every storage).

import assert from "node:assert/strict";
import { ClosedError, open } from "../mod.ts";
import { KeyGenerator } from "../src/auto_key.ts";
import { FakeClock } from "./conformance/database_suite.ts";

Deno.test("open validates its options", async () => {
  await assert.rejects(open({ ttlCheckInterval: 0 }), RangeError);
  await assert.rejects(open({ cleanupInterval: -5 }), RangeError);
  await assert.rejects(open({ maxValueBytes: NaN }), RangeError);
  await assert.rejects(open({ maxValueBytes: 1.5 }), RangeError);
  await assert.rejects(open({ ttlCheckInterval: 2 ** 31 }), RangeError);
  const untimed = await open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await untimed.close();
  await assert.rejects(open({ memoryLimit: 0 }), RangeError);
  await assert.rejects(
    open({ memoryLimit: "150%" as `${number}%` }),
    RangeError,
  );
  await assert.rejects(open({ maxRetries: -1 }), RangeError);
  await assert.rejects(
    open({ clock: {} as unknown as FakeClock }),
    TypeError,
  );
  await assert.rejects(open(null as unknown as undefined), TypeError);
});

Deno.test("memoryLimit as a percentage of available memory", async () => {
  await using db = await open({ memoryLimit: "25%" });
  const limit = db.stats().memoryLimit!;
  const available = Deno.systemMemoryInfo().available;
  assert.ok(limit > 0 && limit <= available * 0.25 + 1);
});

Deno.test("the background sweeper runs on its timer", async () => {
  const clock = new FakeClock();
  await using db = await open({ clock, ttlCheckInterval: 1 });
  await db.put("k", 1, { ttl: 10 });
  await db.put("keep", 2);
  clock.advance(10);
  // No operation runs from here on: only the timer can remove the item.
  for (let i = 0; i < 50 && db.stats().expired === 0; i++) {
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.equal(db.stats().expired, 1);
  assert.equal(db.stats().items, 1);
  assert.ok(db.stats().sweeps >= 1);
});

Deno.test("aborting the open signal closes the database", async () => {
  const controller = new AbortController();
  const db = await open({ signal: controller.signal });
  await db.put("k", 1);
  controller.abort();
  await db.close(); // idempotent, waits for the close the abort started
  assert.equal(db.closed, true);
  await assert.rejects(db.get("k"), ClosedError);
  const aborted = AbortSignal.abort(new Error("already"));
  await assert.rejects(open({ signal: aborted }), /already/);
});

Deno.test("await using closes the database", async () => {
  let outside;
  {
    await using db = await open();
    outside = db;
    await db.put("k", 1);
  }
  assert.equal(outside.closed, true);
});

Deno.test("long scans give the event loop a turn", async () => {
  await using db = await open();
  // About ten of the scan's 4 ms chunks on this machine.
  const n = 50_000;
  for (let i = 0; i < n; i += 10_000) {
    await db.putBatch(
      Array.from({ length: 10_000 }, (_, j) => ({ i: i + j, pad: "x" })),
    );
  }
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    let seen = 0;
    for await (const _ of db.find({ i: { $gte: 0 } })) seen++;
    assert.equal(seen, n);
    // A scan that never yielded would have let no timer callback run.
    assert.ok(ticks > 0, "no timer ran during the scan");
  } finally {
    clearInterval(timer);
  }
});

Deno.test("auto keys stay ordered when the clock stands still or goes back", () => {
  const clock = new FakeClock(1_000);
  const gen = new KeyGenerator(clock);
  const keys = [gen.next(), gen.next()];
  clock.advance(-500);
  keys.push(gen.next());
  clock.advance(10_000);
  keys.push(gen.next());
  assert.deepEqual([...keys].sort(), keys);
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(keys.every((k) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(k)));
  assert.throws(() => new KeyGenerator({ now: () => -1 }).next(), RangeError);
});

Deno.test("an HTTP server on the same loop answers during a long scan", async () => {
  await using db = await open();
  const n = 50_000;
  for (let i = 0; i < n; i += 10_000) {
    await db.putBatch(Array.from({ length: 10_000 }, (_, j) => ({ i: i + j })));
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/`;
    let scanning = true;
    let answeredDuringScan = 0;
    const client = (async () => {
      while (scanning) {
        const body = await (await fetch(url)).text();
        assert.equal(body, "ok");
        if (scanning) answeredDuringScan++;
      }
    })();
    // One scan after another, back to back (nothing else gives the loop a
    // turn), until a request has been answered meanwhile: a scan that never
    // let the runtime poll its sockets would go on for the whole 20 seconds.
    const until = Date.now() + 20_000;
    let scans = 0;
    while (answeredDuringScan === 0 && Date.now() < until) {
      let seen = 0;
      for await (const _ of db.find({ i: { $gte: 0 } })) seen++;
      assert.equal(seen, n);
      scans++;
    }
    scanning = false;
    await client;
    assert.ok(
      answeredDuringScan > 0,
      `no request was answered during ${scans} scans of ${n} documents`,
    );
  } finally {
    await server.shutdown();
  }
});
