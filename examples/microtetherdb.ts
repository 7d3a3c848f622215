/**
 * TypeScript twins of every example in MicroTetherDB's README, in order.
 * Each section checks what it claims with `assert`, so this file doubles as
 * a test (`tests/examples_test.ts` runs it).
 *
 * Run it with `deno run examples/microtetherdb.ts`.
 *
 * Differences from the original, on purpose: durations are milliseconds (as
 * in Deno KV and `setTimeout`), calls are awaited, and file storage arrives
 * with the file-storage release (the in-memory database is used here).
 */

import assert from "node:assert/strict";
import { type Clock, open } from "../mod.ts";

/** A clock we move by hand, so TTL examples need no real waiting. */
class ManualClock implements Clock {
  time = Date.now();
  now(): number {
    return this.time;
  }
}

// --- Basic Operations -------------------------------------------------------
{
  // MicroTetherDB() — in memory. ram_percentage=30 → memoryLimit: "30%"
  // (needs --allow-sys; a byte count works everywhere).
  await using db = await open({ memoryLimit: 64 * 1024 * 1024 });

  // put(data, ttl, tags) → auto key
  const key = await db.put({ name: "John", age: 30 }, {
    ttl: 3_600_000, // expires in 1 hour
    tags: ["user", "active"],
  });
  // put(key, data, ttl, tags)
  await db.put("user1", { name: "John", age: 30 }, {
    ttl: 3_600_000,
    tags: ["user", "active"],
  });
  const value = await db.get("user1");
  assert.deepEqual(value, { name: "John", age: 30 });
  assert.ok(await db.get(key));
  await db.delete("user1");
  // delete(purge=True)
  assert.equal(await db.clear(), 1);
  console.log("basic operations: ok");
}

// --- TTL (Time-To-Live) Management ------------------------------------------
{
  const clock = new ManualClock();
  await using db = await open({
    clock,
    ttlCheckInterval: 5_000, // check for expired items every 5 s
    cleanupInterval: 1_800_000, // full cleanup every 30 min
  });
  await db.put("session_token", { token: "abc123" }, { ttl: 300_000 });
  await db.put("cache_data", { result: "cached" }, { ttl: 60_000 });
  await db.put("temp_file", { path: "/tmp/file" }, { ttl: 10_000 });
  clock.time += 10_000;
  // Expired items are invisible at once, before any sweep.
  assert.equal(await db.get("temp_file"), null);
  assert.deepEqual(await db.get("cache_data"), { result: "cached" });
  clock.time += 50_000;
  assert.equal(await db.get("cache_data"), null);
  assert.equal(await db.count(), 1);
  console.log("TTL management: ok");
}

// --- Query Examples ---------------------------------------------------------
{
  await using db = await open();
  await db.putBatch(
    new Map<string, Record<string, unknown>>([
      ["john", {
        name: "John",
        age: 30,
        score: 85,
        temperature: 22,
        pressure: 990,
        status: "active",
        categories: ["electronics"],
        description: "prod",
        email: "john@example.com",
        address: { city: "New York" },
        settings: { notifications: true },
      }],
      ["jane", {
        name: "Jane",
        age: 24,
        score: 95,
        status: "pending",
        categories: ["books"],
        description: "test",
        phone: "555",
        address: { city: "Boston" },
        settings: { notifications: false },
      }],
      ["joe", {
        name: "Joe",
        age: 45,
        score: 80,
        temperature: 25,
        pressure: 1000,
        status: "pending",
        categories: ["gadgets", "toys"],
        description: "prod",
        email: "joe@example.com",
        address: { city: "New York" },
        settings: { notifications: true },
      }],
    ]),
    { tags: ["active"] },
  );
  const names = (rows: unknown[]) =>
    rows.map((r) => (r as { name: string }).name).sort();

  // Basic equality
  assert.deepEqual(names(await db.query({ name: "John" })), ["John"]);
  // Numeric comparisons
  assert.deepEqual(
    names(
      await db.query({
        age: { $gt: 25 },
        score: { $gte: 80 },
        temperature: { $lt: 30 },
        pressure: { $lte: 1000 },
      }),
    ),
    ["Joe", "John"],
  );
  // Multiple conditions
  assert.deepEqual(
    names(
      await db.query({
        age: { $gt: 25 },
        status: "active",
        score: { $gte: 80 },
      }),
    ),
    ["John"],
  );
  // Array operations: tags contain "active", categories in a list
  assert.deepEqual(
    names(
      await db.query({
        tags: "active",
        categories: { $in: ["electronics", "gadgets"] },
      }),
    ),
    ["Joe", "John"],
  );
  // String operations
  assert.deepEqual(
    names(
      await db.query({
        name: { $contains: "Jo" },
        description: { $ne: "test" },
      }),
    ),
    ["Joe", "John"],
  );
  // Field existence
  assert.deepEqual(
    names(
      await db.query({ email: { $exists: true }, phone: { $exists: false } }),
    ),
    ["Joe", "John"],
  );
  // Nested fields
  assert.deepEqual(
    names(
      await db.query({
        "address.city": "New York",
        "settings.notifications": true,
      }),
    ),
    ["Joe", "John"],
  );
  // Limit
  assert.equal(
    (await db.query({ status: "pending", $limit: 1 })).length,
    1,
  );
  // Complex queries
  assert.deepEqual(
    names(
      await db.query({
        age: { $gt: 25, $lt: 50 },
        status: { $in: ["active", "pending"] },
        score: { $gte: 80 },
        name: { $contains: "Jo" },
        $limit: 5,
      }),
    ),
    ["Joe", "John"],
  );
  console.log("query examples: ok");
}

// --- Advanced Features ------------------------------------------------------
{
  await using db = await open({
    memoryLimit: 32 * 1024 * 1024, // ram_percentage=25 → memoryLimit: "25%"
    maxRetries: 3, // retries of writes that lose a race (shared storages)
    retryDelay: 100, // ms
    cleanupInterval: 3_600_000, // ms
    ttlCheckInterval: 10_000, // ms
    // in_memory, filename, lock_timeout, btree_* and adaptive_threshold belong
    // to the storage: see the README's mapping table.
  });
  await db.put("user1", { name: "John", age: 30 }, {
    tags: ["user", "active"],
  });
  const results = await db.query({
    tags: "active",
    age: { $gt: 25 },
    name: { $contains: "Jo" },
  });
  assert.deepEqual(results, [{ name: "John", age: 30 }]);

  const items = [{ name: "John", age: 30 }, { name: "Jane", age: 25 }];
  const keys = await db.putBatch(items, { ttl: [3_600_000, 7_200_000] });
  assert.equal(await db.deleteBatch(keys), 2);
  console.log("advanced features: ok");
}

// --- Context Manager Usage --------------------------------------------------
{
  // `with MicroTetherDB() as db` and `async with` → `await using`
  let outer;
  {
    await using db = await open();
    outer = db;
    const key = await db.put({ key: "value" });
    assert.deepEqual(await db.get(key), { key: "value" });
    const keys = await db.putBatch([{ key1: "value1" }, { key2: "value2" }]);
    assert.equal(keys.length, 2);
    assert.equal((await db.query({ key1: { $exists: true } })).length, 1);
  }
  assert.ok(outer.closed);
  console.log("context manager: ok");
}

// --- Event Loop Integration -------------------------------------------------
// There is nothing to pass: the database always runs on the caller's event
// loop, its timers are unref'd, and several databases share the loop.
{
  const userApplication = async (): Promise<unknown[]> => {
    await using db = await open();
    await db.put("sensor_key", { sensor: "temperature", value: 25.5 }, {
      ttl: 3_600_000,
    });
    assert.ok(await db.get("sensor_key"));
    return await db.query({ sensor: "temperature" });
  };
  const results = await userApplication();
  assert.equal(results.length, 1);
  await using clientDb = await open();
  await using cacheDb = await open();
  await clientDb.put("a", 1);
  await cacheDb.put("a", 2);
  assert.equal(await clientDb.get("a"), 1);
  console.log("event loop integration: ok");
}

// --- Examples: Basic Usage --------------------------------------------------
{
  const clock = new ManualClock();
  await using db = await open({ clock });
  await db.put("user1", { name: "John", age: 30 }, {
    ttl: 86_400_000, // 24 hours
    tags: ["user", "active"],
  });
  const user1 = await db.get("user1");
  assert.deepEqual(user1, { name: "John", age: 30 });
  const activeUsers = await db.query({ tags: "active", age: { $gt: 25 } });
  assert.equal(activeUsers.length, 1);
  const users = [{ name: "Jane", age: 28 }, { name: "Bob", age: 35 }];
  await db.putBatch(users, { ttl: [3_600_000, 7_200_000] });
  clock.time += 3_600_000;
  const cleaned = await db.cleanup();
  assert.equal(cleaned, 1);
  console.log("basic usage: ok");
}

// --- Examples: Async Integration (sensor data manager) ----------------------
{
  const clock = new ManualClock();
  await using db = await open({ clock, ttlCheckInterval: 5_000 });
  for (let i = 0; i < 10; i++) {
    const sensorData = {
      temperature: 20 + i,
      humidity: 50 + i * 2,
      timestamp: clock.now(),
    };
    await db.put(sensorData, { ttl: 30_000, tags: ["sensor", "environment"] });
    const recent = await db.query({
      temperature: { $gt: 22 },
      tags: "environment",
    });
    // Readings 20, 21 and 22 do not pass $gt: 22; none has expired yet.
    assert.equal(recent.length, Math.max(0, i - 2));
    clock.time += 2_000; // "await asyncio.sleep(2)", without waiting
  }
  clock.time += 30_000;
  const cleaned = await db.cleanup();
  assert.equal(cleaned, 10);
  console.log("async integration: ok");
}
