// examples/deploy.ts: its handler driven with `new Request(...)` on Deno KV
// (`:memory:` and a temporary file shared by two databases, as two Deploy
// isolates share a KV), with a fake clock for TTL.

import assert from "node:assert/strict";
import { type Clock, open } from "../mod.ts";
import {
  createHandler,
  DAY,
  MAX_BODY_BYTES,
  type Reading,
} from "../examples/deploy.ts";

class FakeClock implements Clock {
  time = Date.now();
  now(): number {
    return this.time;
  }
}

type Handler = (request: Request) => Promise<Response>;

function call(
  handler: Handler,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers = { "content-type": "application/json" };
  }
  return handler(new Request(`http://localhost${path}`, init));
}

async function json<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  return JSON.parse(text) as T;
}

async function post(
  handler: Handler,
  body: unknown,
  query = "",
): Promise<{ id: string; expiresAt: number | null }> {
  const response = await call(handler, "POST", `/readings${query}`, body);
  const created = await json<{ id: string; expiresAt: number | null }>(
    response,
    201,
  );
  assert.equal(
    response.headers.get("location"),
    `/readings/${encodeURIComponent(created.id)}`,
  );
  return created;
}

interface ListPage {
  items: Reading[];
  next: string | null;
}

/** Every page of a listing, following `next`. */
async function pages(handler: Handler, query: string): Promise<ListPage[]> {
  const out: ListPage[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor === null
      ? query
      : `${query}&cursor=${encodeURIComponent(cursor)}`;
    const page: ListPage = await json<ListPage>(
      await call(handler, "GET", `/readings?${q}`),
      200,
    );
    out.push(page);
    cursor = page.next;
  } while (cursor !== null && out.length < 100);
  return out;
}

Deno.test("examples/deploy.ts: create, page with the cursor, get, delete, TTL, errors", async (t) => {
  const clock = new FakeClock();
  await using db = await open({
    kv: ":memory:",
    clock,
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  const handler = createHandler(db);

  const a: string[] = [];
  for (let i = 0; i < 5; i++) {
    a.push((await post(handler, { device: "a", temp: 20 + i })).id);
    clock.time++;
  }
  const b: string[] = [];
  for (let i = 0; i < 2; i++) {
    b.push((await post(handler, { device: "b", temp: 30 + i })).id);
  }

  await t.step(
    "ids are time-ordered, so listings follow creation order",
    () => {
      const all = [...a, ...b];
      assert.deepEqual([...all].sort(), all);
      assert.equal(new Set(all).size, 7);
    },
  );

  await t.step("one device, two pages through the cursor", async () => {
    const [first, second, ...rest] = await pages(handler, "device=a&limit=3");
    assert.equal(rest.length, 0);
    assert.equal(first!.items.length, 3);
    assert.equal(typeof first!.next, "string");
    assert.equal(second!.items.length, 2);
    assert.equal(second!.next, null);
    assert.deepEqual(
      [...first!.items, ...second!.items].map((r) => r._id),
      a,
    );
    assert.deepEqual(second!.items[1], { device: "a", temp: 24, _id: a[4] });
  });

  await t.step("every device, by key, and a write between pages", async () => {
    const first = await json<ListPage>(
      await call(handler, "GET", "/readings?limit=4"),
      200,
    );
    assert.deepEqual(first.items.map((r) => r._id), a.slice(0, 4));
    // Deleting an item already shown shifts nothing: the cursor is a key.
    assert.equal(
      (await call(handler, "DELETE", `/readings/${a[0]}`)).status,
      204,
    );
    const second = await json<ListPage>(
      await call(
        handler,
        "GET",
        `/readings?limit=4&cursor=${encodeURIComponent(first.next!)}`,
      ),
      200,
    );
    assert.deepEqual(second.items.map((r) => r._id), [a[4], ...b]);
    assert.equal(second.next, null);
  });

  await t.step("get and delete one", async () => {
    const got = await call(handler, "GET", `/readings/${b[0]}`);
    assert.deepEqual(await json(got, 200), {
      device: "b",
      temp: 30,
      _id: b[0],
    });
    assert.equal(got.headers.get("x-expires-at"), String(clock.time + DAY));
    const deleted = await call(handler, "DELETE", `/readings/${b[0]}`);
    assert.equal(deleted.status, 204);
    assert.equal(await deleted.text(), "");
    await json(await call(handler, "GET", `/readings/${b[0]}`), 404);
    await json(await call(handler, "DELETE", `/readings/${b[0]}`), 404);
  });

  await t.step(
    "TTL: ?ttl= and the one-day default, hidden at once",
    async () => {
      const short = await post(handler, { device: "c", v: 1 }, "?ttl=1000");
      assert.equal(short.expiresAt, clock.time + 1000);
      const long = await post(handler, { device: "c", v: 2 });
      assert.equal(long.expiresAt, clock.time + DAY);
      clock.time += 999;
      let page = await json<ListPage>(
        await call(handler, "GET", "/readings?device=c"),
        200,
      );
      assert.deepEqual(page.items.map((r) => r._id), [short.id, long.id]);
      clock.time += 1;
      await json(await call(handler, "GET", `/readings/${short.id}`), 404);
      page = await json<ListPage>(
        await call(handler, "GET", "/readings?device=c"),
        200,
      );
      assert.deepEqual(page.items.map((r) => r._id), [long.id]);
      clock.time += DAY;
      page = await json<ListPage>(
        await call(handler, "GET", "/readings?device=c"),
        200,
      );
      assert.deepEqual(page.items, []);
      await json(await call(handler, "GET", `/readings/${long.id}`), 404);
    },
  );

  await t.step("client errors", async () => {
    const bad = async (
      method: string,
      path: string,
      status: number,
      pattern: RegExp,
      body?: unknown,
    ) => {
      const { error } = await json<{ error: string }>(
        await call(handler, method, path, body),
        status,
      );
      assert.match(error, pattern);
    };
    await bad("POST", "/readings", 400, /not valid JSON/, "{ device: ");
    await bad("POST", "/readings", 400, /not valid JSON/, "");
    await bad("POST", "/readings", 400, /JSON object/, [1, 2]);
    await bad("POST", "/readings", 400, /JSON object/, "null");
    await bad("POST", "/readings", 400, /"device" string/, { temp: 1 });
    await bad("POST", "/readings", 400, /"device" string/, { device: 7 });
    await bad("POST", "/readings", 400, /"device" string/, {
      device: "d".repeat(129),
    });
    await bad("POST", "/readings", 400, /assigns _id/, {
      _id: "x",
      device: "a",
    });
    await bad("POST", "/readings?ttl=abc", 400, /ttl must be/, { device: "a" });
    await bad("POST", "/readings?ttl=0", 400, /ttl must be/, { device: "a" });
    await bad("GET", "/readings?limit=0", 400, /limit must be/);
    await bad("GET", "/readings?limit=101", 400, /limit must be/);
    await bad("GET", "/readings?cursor=nonsense", 400, /cursor position/);
    await post(handler, { device: "e", n: 1 });
    await post(handler, { device: "e", n: 2 });
    const { next } = await json<ListPage>(
      await call(handler, "GET", "/readings?limit=1"),
      200,
    );
    // A position of the key-order listing does not fit the device index.
    await bad(
      "GET",
      `/readings?device=a&cursor=${encodeURIComponent(next!)}`,
      400,
      /another query plan/,
    );
    await bad("GET", "/readings/nope", 404, /no reading 'nope'/);
    await bad("DELETE", "/readings/nope", 404, /no reading 'nope'/);
    await bad("GET", "/readings/%E0%A4%A", 400, /not a valid id/);
    await bad("GET", "/elsewhere", 404, /no route/);
    const put = await call(handler, "PUT", "/readings", { device: "a" });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, POST");
    await put.body?.cancel();
    const patch = await call(handler, "PATCH", `/readings/${a[1]}`, {});
    assert.equal(patch.status, 405);
    assert.equal(patch.headers.get("allow"), "GET, DELETE");
    await patch.body?.cancel();
  });

  await t.step("a large body is a 413, and nothing is written", async () => {
    const before = await db.collection("readings").count();
    await json(
      await call(handler, "POST", "/readings", {
        device: "big",
        blob: "x".repeat(70_000),
      }),
      413,
    );
    assert.equal(await db.collection("readings").count(), before);
  });
});

Deno.test("examples/deploy.ts: two databases on one KV file, as two isolates", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-deploy-" });
  try {
    const path = `${dir}/kv.sqlite`;
    const clock = new FakeClock();
    const options = {
      clock,
      ttlCheckInterval: Infinity,
      cleanupInterval: Infinity,
    };
    await using one = await open({ kv: path, ...options });
    await using two = await open({ kv: path, ...options });
    const first = createHandler(one);
    const second = createHandler(two);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const via = i % 2 === 0 ? first : second;
      ids.push((await post(via, { device: "shared", n: i }, "?ttl=60000")).id);
      clock.time++;
    }
    // Paging alternates between the isolates: the cursor is only a string.
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; cursor !== null || i === 0; i++) {
      const via = i % 2 === 0 ? second : first;
      const q: string = cursor === null
        ? ""
        : `&cursor=${encodeURIComponent(cursor)}`;
      const page: ListPage = await json<ListPage>(
        await call(via, "GET", `/readings?device=shared&limit=4${q}`),
        200,
      );
      seen.push(...page.items.map((r) => r._id));
      cursor = page.next;
    }
    assert.deepEqual(seen, ids);
    // An isolate that starts now (a cold start) finds the data and index.
    await using three = await open({ kv: path, ...options });
    const third = createHandler(three);
    const all = await json<ListPage>(
      await call(third, "GET", "/readings?device=shared&limit=10"),
      200,
    );
    assert.deepEqual(all.items.map((r) => r._id), ids);
    assert.deepEqual(await three.collection("readings").indexes(), [
      {
        name: "device_1",
        fields: ["device"],
        unique: false,
        sparse: false,
        multikey: false,
      },
    ]);
    assert.equal(
      (await call(second, "DELETE", `/readings/${ids[0]}`)).status,
      204,
    );
    await json(await call(first, "GET", `/readings/${ids[0]}`), 404);
    clock.time += 60_000;
    const { items } = await json<ListPage>(
      await call(first, "GET", "/readings?device=shared"),
      200,
    );
    assert.deepEqual(items, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A body of `total` bytes (a JSON string that never ends, for the handler),
 * produced chunk by chunk on demand, counting what was pulled and whether
 * the consumer cancelled.
 */
function endless(total: number, chunk = 65_536) {
  const seen = { pulled: 0, cancelled: false };
  const block = new TextEncoder().encode("x".repeat(chunk));
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"device":"d","blob":"'));
    },
    pull(controller) {
      if (seen.pulled >= total) return controller.close();
      seen.pulled += block.byteLength;
      controller.enqueue(block.slice());
    },
    cancel() {
      seen.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, seen, chunk };
}

Deno.test("examples/deploy.ts: a 200 MB streamed body is a 413 after the cap, and the rest is never read", async () => {
  await using db = await open({ kv: ":memory:" });
  const cases = [
    { name: "default cap", handler: createHandler(db), cap: MAX_BODY_BYTES },
    {
      name: "configured cap",
      handler: createHandler(db, { maxBodyBytes: 100_000 }),
      cap: 100_000,
    },
  ];
  for (const { name, handler, cap } of cases) {
    const body = endless(200 * 1024 * 1024);
    const response = await handler(
      new Request("http://localhost/readings", {
        method: "POST",
        body: body.stream,
        headers: { "content-type": "application/json" },
        duplex: "half",
      } as RequestInit),
    );
    const text = await response.text();
    assert.equal(response.status, 413, `${name}: ${text}`);
    assert.match(
      JSON.parse(text).error,
      new RegExp(`over the limit of ${cap} bytes`),
    );
    assert.ok(body.seen.cancelled, `${name}: the body was not cancelled`);
    // What was read: the cap and at most the chunk that passed it (and one
    // the stream had queued), not the 200 MB.
    assert.ok(
      body.seen.pulled <= cap + 2 * body.chunk,
      `${name}: ${body.seen.pulled} bytes pulled for a cap of ${cap}`,
    );
  }
  assert.equal(await db.collection("readings").count(), 0);
});

Deno.test("examples/deploy.ts: a declared Content-Length over the cap is refused before reading", async () => {
  await using db = await open({ kv: ":memory:" });
  const handler = createHandler(db, { maxBodyBytes: 1000 });
  const body = endless(10_000_000);
  const response = await handler(
    new Request("http://localhost/readings", {
      method: "POST",
      body: body.stream,
      headers: { "content-length": "10000000" },
      duplex: "half",
    } as RequestInit),
  );
  assert.equal(response.status, 413);
  await response.body?.cancel();
  assert.ok(body.seen.cancelled);
  assert.equal(body.seen.pulled, 0);
  // A body within the cap still works, and the cap must be a size.
  const ok = await handler(
    new Request("http://localhost/readings", {
      method: "POST",
      body: JSON.stringify({ device: "d", t: 1 }),
    }),
  );
  assert.equal(ok.status, 201);
  await ok.body?.cancel();
  assert.throws(() => createHandler(db, { maxBodyBytes: 0 }), RangeError);
});
