/**
 * Scans stay on the caller's event loop: they run in short synchronous
 * chunks and give other tasks (timers, messages) a turn in between, even
 * inside one large storage page; `count()` and `explain()` never copy a
 * document. No timing assertions: only what ran, and in what order.
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { MemoryStorage } from "../storage.ts";
import { cursorHooks } from "../src/query/cursor.ts";
import { Budget, nextTurn, yieldHooks } from "../src/engine/yield.ts";

const N = Deno.env.get("TETHER_TORTURE") ? 400_000 : 40_000;

/** Spies on the copy a result hands out. */
function spyCopies(): { count: () => number; [Symbol.dispose](): void } {
  const { copy, copyKept } = cursorHooks;
  let n = 0;
  cursorHooks.copy = (value) => {
    n++;
    return copy(value);
  };
  cursorHooks.copyKept = (value) => {
    n++;
    return copyKept(value);
  };
  return {
    count: () => n,
    [Symbol.dispose]() {
      cursorHooks.copy = copy;
      cursorHooks.copyKept = copyKept;
    },
  };
}

/**
 * A memory storage whose scans hand out everything in one page, as a
 * storage with large pages would.
 */
function onePageStorage(): MemoryStorage {
  const inner = new MemoryStorage();
  return new Proxy(inner, {
    get(target, prop) {
      // Pages come from `scan` only: no object tier (which would serve
      // the engine from its own tables instead).
      if (prop === "objects") return undefined;
      if (prop === "scan") {
        return async function* (
          options: Parameters<MemoryStorage["scan"]>[0],
        ) {
          const all = [];
          for await (const page of target.scan(options)) all.push(...page);
          if (all.length > 0) yield all;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function fill(
  db: Awaited<ReturnType<typeof open>>,
  n: number,
): Promise<void> {
  const users = db.collection("users");
  for (let i = 0; i < n; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 10_000); j++) {
      batch.push({ name: `u${j}`, age: j % 80, city: j % 3 ? "SF" : "NY" });
    }
    await users.insertMany(batch);
  }
}

Deno.test("nextTurn is a macrotask: due timers and messages run first", async () => {
  const order: string[] = [];
  setTimeout(() => order.push("timer"), 0);
  const { port1, port2 } = new MessageChannel();
  port1.onmessage = () => {
    order.push("message");
    port1.close();
  };
  port2.postMessage(null);
  port2.close();
  queueMicrotask(() => order.push("microtask"));
  for (let i = 0; i < 50 && order.length < 3; i++) await nextTurn();
  assert.deepEqual(order.sort(), ["message", "microtask", "timer"]);
});

Deno.test("when timers did not run since the last I/O turn, the next one waits for them", async () => {
  // Deno can run a chain of ready turns without running due timers (seen
  // after Node's nextTick was used, or with a large heap). Made
  // deterministic here: a setTimeout whose timers fire only when told.
  const real = yieldHooks.setTimeout;
  const held: (() => void)[] = [];
  const fake = (fn: () => void) => {
    held.push(fn);
    return 0;
  };
  const busy = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end) { /* the turn's budget passes */ }
  };
  yieldHooks.setTimeout = fake;
  try {
    // Clear a probe left by an earlier test: an I/O turn, then fire it.
    busy(10);
    await nextTurn();
    for (const fn of held.splice(0)) fn();
    // An I/O turn (the budget for one has passed) sets a probe timer.
    busy(10);
    await nextTurn();
    assert.equal(held.length, 1, "the I/O turn set one timer");
    // Timers have not run: the next I/O turn waits for them.
    busy(10);
    let settled = false;
    const turn = nextTurn().then(() => settled = true);
    for (let i = 0; i < 20; i++) {
      await crypto.subtle.digest("SHA-256", new Uint8Array(0));
      await new Promise<void>((resolve) => queueMicrotask(resolve));
    }
    assert.equal(settled, false, "the turn waits while timers are held");
    held.shift()!();
    await turn;
    assert.equal(settled, true);
    // Its probe fired: the next I/O turn does not wait for a timer.
    assert.equal(held.length, 1, "a new probe was set");
    held.shift()!();
    busy(10);
    await nextTurn();
    assert.equal(held.length, 1, "and set another, without waiting");
    held.shift()!();
  } finally {
    yieldHooks.setTimeout = real;
  }
});

Deno.test("fake timers installed after import (a test's FakeTime) never hold a scan", async () => {
  const real = globalThis.setTimeout;
  // Timers that never fire, as fake timers until the test ticks them.
  globalThis.setTimeout = (() => 0) as unknown as typeof setTimeout;
  let finished = false;
  try {
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) { /* several I/O turns' budget */ }
    };
    const scan = (async () => {
      for (let i = 0; i < 6; i++) {
        busy(10);
        await nextTurn();
      }
      finished = true;
    })();
    // Waited for with the real timer: a scan held by the fake one would
    // still be waiting after it.
    await Promise.race([scan, new Promise((r) => real(r, 10_000))]);
  } finally {
    globalThis.setTimeout = real;
  }
  assert(finished, "the scan finished with fake timers installed");
});

Deno.test("a Budget pauses a synchronous loop so a timer runs inside it", async () => {
  let timerAt = -1;
  let i = 0;
  setTimeout(() => timerAt = i, 0);
  const budget = new Budget(undefined, 1);
  // Busy work with pauses; stops once the timer has run.
  for (; i < 1e9 && timerAt < 0; i++) {
    if (budget.due()) await budget.pause();
  }
  assert(timerAt > 0, "the timer ran inside the loop, not before it");
});

Deno.test("a Budget's pause throws the signal's reason once aborted", async () => {
  const controller = new AbortController();
  const budget = new Budget(controller.signal, 0);
  controller.abort(new RangeError("stop"));
  await assert.rejects(() => budget.pause(), RangeError);
});

/**
 * Runs `work` again and again (at most 50 times) until `event` has run,
 * and tells in which state: between two runs only microtasks run, so an
 * event that runs at all runs while some scan is under way.
 */
async function runsDuring(
  work: () => Promise<unknown>,
  schedule: (fire: () => void) => void,
  progress: () => number,
): Promise<{ scanning: boolean; progress: number }> {
  let scanning = false;
  let seen: { scanning: boolean; progress: number } | undefined;
  schedule(() => seen ??= { scanning, progress: progress() });
  for (let i = 0; i < 50 && seen === undefined; i++) {
    scanning = true;
    await work();
    scanning = false;
  }
  assert(seen !== undefined, "the event never ran");
  return seen;
}

const timer = (fire: () => void) => setTimeout(fire, 0);
const message = (fire: () => void) => {
  const { port1, port2 } = new MessageChannel();
  port1.onmessage = () => {
    fire();
    port1.close();
  };
  port2.postMessage(null);
  port2.close();
};

Deno.test("toArray() lets a timer and a message run in the middle of one large page", async () => {
  await using db = await open({
    storage: onePageStorage(),
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await fill(db, N);
  const users = db.collection("users");
  // The event is scheduled from inside the scan, at its first copy, so it
  // can run only at a later turn: inside the one page (fewer than N copies
  // made) or after it (N).
  for (const schedule of [timer, message]) {
    let at = -1;
    let copied = 0;
    let scheduled = false;
    const original = cursorHooks.copy;
    cursorHooks.copy = (value) => {
      if (copied++ === 0 && !scheduled) {
        scheduled = true;
        schedule(() => at = copied);
      }
      return original(value);
    };
    try {
      for (let i = 0; i < 50 && at < 0; i++) {
        copied = 0;
        scheduled = false;
        const all = await users.find({ age: { $gte: 0 } }).toArray();
        assert.equal(all.length, N);
      }
    } finally {
      cursorHooks.copy = original;
    }
    assert(at > 0 && at < N, `the event ran after ${at} of ${N} copies`);
  }
});

Deno.test("an async iteration and an unindexed count interleave with a timer", async () => {
  await using db = await open({
    storage: onePageStorage(),
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await fill(db, N);
  const users = db.collection("users");
  const expected =
    Array.from({ length: N }, (_, j) => j).filter((j) =>
      j % 3 !== 0 && j % 80 >= 30
    ).length;
  const seen = await runsDuring(
    async () => {
      assert.equal(
        await users.count({ city: "SF", age: { $gte: 30 } }),
        expected,
      );
    },
    timer,
    () => 0,
  );
  assert(seen.scanning, "the timer ran while count() was under way");
  // for await: the first value arrives before the whole page is examined.
  using copies = spyCopies();
  let n = 0;
  for await (const _ of users.find({ city: "NY" })) {
    n++;
    break;
  }
  assert.equal(n, 1);
  assert(copies.count() === 1, "only the value taken was copied");
});

Deno.test("an HTTP server on the same loop answers during toArray() and count() of one large page", async () => {
  await using db = await open({
    storage: onePageStorage(),
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await fill(db, N);
  const users = db.collection("users");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/`;
    for (
      const work of [
        () => users.find({}).toArray(),
        () => users.count({ city: "SF", age: { $gte: 30 } }),
      ]
    ) {
      // A request takes a few turns of network I/O and a scan of this size
      // only a few milliseconds, so scan again, back to back (nothing else
      // gives the loop a turn), until one was answered while a scan was
      // under way: scans that never let the runtime poll its sockets would
      // go on for the whole 20 seconds.
      let scanning = false;
      let running = true;
      let answered = 0;
      const client = (async () => {
        while (running) {
          assert.equal(await (await fetch(url)).text(), "ok");
          if (scanning) answered++;
        }
      })();
      const until = Date.now() + 20_000;
      let scans = 0;
      while (answered === 0 && Date.now() < until) {
        scanning = true;
        await work();
        scanning = false;
        scans++;
      }
      running = false;
      await client;
      assert(answered > 0, `no request was answered during ${scans} scans`);
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("count() and explain() never copy a document", async () => {
  await using db = await open({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await fill(db, 2_000);
  const users = db.collection("users");
  await users.createIndex("age");
  using copies = spyCopies();
  // Unindexed, indexed exact, indexed with a residual filter, sorted, limited.
  assert.equal(await users.count({ city: "SF", age: { $gte: 30 } }), 833);
  assert.equal(await users.count({ age: 42 }), 25);
  assert.equal(await users.count({ age: 42, city: "SF" }), 16);
  assert.equal(await users.find({ city: "NY" }, { limit: 5 }).count(), 5);
  assert.equal(
    await users.find({ city: "NY" }, { sort: { name: 1 }, skip: 660 })
      .count(),
    7,
  );
  const byIndex = await users.find({ age: 42 }).explain("count");
  assert.equal(
    byIndex.docsExamined,
    0,
    "an exact index count reads no document",
  );
  assert.equal(byIndex.returned, 25);
  const scan = await users.find({ city: "SF", age: { $gte: 30 } }).explain();
  assert.equal(scan.returned, 833);
  assert.equal(scan.index, "age_1");
  assert.equal(scan.docsExamined, 1_250, "the documents of ages 30 to 79");
  const sorted = await users.find({ city: "NY" }, {
    sort: { name: -1 },
    skip: 2,
    limit: 3,
  }).explain();
  assert.equal(sorted.returned, 3);
  assert.equal(sorted.docsExamined, 2_000, "a sort reads every match");
  const limited = await users.find({ city: "NY" }, { limit: 3 }).explain();
  assert.equal(limited.returned, 3);
  assert(limited.docsExamined < 2_000, "an unsorted limit stops early");
  assert.equal(copies.count(), 0);
  // The spy sees the copies that results do make.
  assert.equal((await users.find({ age: 42 }).toArray()).length, 25);
  assert.equal(copies.count(), 25);
});

Deno.test("a finished scan leaves nothing that keeps the process alive", async () => {
  const script = `
    import { open } from ${
    JSON.stringify(new URL("../mod.ts", import.meta.url).href)
  };
    const db = await open({ ttlCheckInterval: Infinity, cleanupInterval: Infinity });
    const docs = Array.from({ length: 30000 }, (_, i) => ({ i, s: "x".repeat(20) }));
    await db.putBatch(docs);
    console.log((await db.find({ i: { $gte: 0 } }).toArray()).length, await db.count({ i: { $lt: 10 } }));
    await db.close();
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
    // A leaked port would keep the child running: fail instead of hanging.
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "30000 10");
});
