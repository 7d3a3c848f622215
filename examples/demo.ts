/**
 * A tour of @tether/db: puts, TTL expiry, tags, queries, batches and stats.
 *
 * Run it with `npx -y deno@2 task demo` (or `deno task demo`).
 */

import { open } from "../mod.ts";

// Colour only on a terminal, never with NO_COLOR (Deno.noColor) or in a pipe.
const colors = !Deno.noColor && Deno.stdout.isTerminal();
const line = (title: string) =>
  console.log(`\n== ${title} ${"=".repeat(50 - title.length)}`);
const show = (label: string, value: unknown) =>
  console.log(
    `${label.padEnd(34)} ${
      Deno.inspect(value, {
        colors,
        compact: true,
        breakLength: 100,
      })
    }`,
  );

await using db = await open({ ttlCheckInterval: 200 });

line("put and get");
await db.put(
  "user1",
  { name: "John", age: 30, address: { city: "New York" } },
  {
    ttl: 3_600_000,
    tags: ["user", "active"],
  },
);
await db.put("user2", { name: "Jane", age: 25, address: { city: "Boston" } }, {
  tags: ["user"],
});
await db.put(
  "user3",
  { name: "Joan", age: 41, address: { city: "New York" } },
  { tags: ["user", "active"] },
);
show("get('user1')", await db.get("user1"));
const sensorKey = await db.put({
  sensor: "temperature",
  value: 21.5,
  at: new Date(),
}, { ttl: 500, tags: ["sensor"] });
show("auto key for a sensor reading", sensorKey);
show(
  "getEntry(sensorKey).expiresAt - now",
  (await db.getEntry(sensorKey))!.expiresAt! - Date.now(),
);

line("queries");
show("{ age: { $gt: 25 } }", await db.query({ age: { $gt: 25 } }));
show(
  "{ tags: 'active' }",
  (await db.query({ tags: "active" })).map((u) => (u as { name: string }).name),
);
show(
  "{ 'address.city': 'New York' }",
  await db.count({ "address.city": "New York" }),
);
show(
  "{ name: { $contains: 'Jo' } }",
  (await db.query({ name: { $contains: "Jo" } })).length,
);
show(
  "{ $or: [...], $limit: 1 }",
  await db.query({
    $or: [{ age: { $lt: 26 } }, { age: { $gt: 40 } }],
    $limit: 1,
  }),
);
for await (const entry of db.find({ tags: "user" }, { limit: 2 }).entries()) {
  show(`  find → ${entry.key}`, { tags: entry.tags, version: entry.version });
}

line("batches");
const keys = await db.putBatch(
  [{ sensor: "humidity", value: 55 }, { sensor: "pressure", value: 1013 }],
  { ttl: [400, 60_000], tags: ["sensor"] },
);
show("putBatch keys", keys);
show(
  "putBatch(Map) keys",
  await db.putBatch(new Map([["k1", { a: 1 }], ["k2", { b: 2 }]])),
);
show(
  "deleteBatch(['k1', 'k2', 'nope'])",
  await db.deleteBatch(["k1", "k2", "nope"]),
);

line("TTL expiry");
show("sensor readings now", await db.count({ tags: "sensor" }));
await new Promise((r) => setTimeout(r, 600));
show("after 600 ms (two expired)", await db.count({ tags: "sensor" }));
show("get(expired key)", await db.get(sensorKey));
await new Promise((r) => setTimeout(r, 300));
show("removed by the background sweeper", db.stats().expired);

line("errors are clear");
try {
  await db.put("bad", { when: () => "now" });
} catch (e) {
  show("put(function)", `${(e as Error).name}: ${(e as Error).message}`);
}
try {
  db.find({ age: { $gtx: 1 } });
} catch (e) {
  show("unknown operator", `${(e as Error).name}: ${(e as Error).message}`);
}

line("stats");
const { items, ttlItems, bytes, ops, sweeps, expired } = db.stats();
show("stats()", { items, ttlItems, bytes, ops, sweeps, expired });
show("clear()", await db.clear());
