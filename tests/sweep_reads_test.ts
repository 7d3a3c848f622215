/**
 * The sweeper reads what it removes and nothing else: on a local storage it
 * takes expired items from the object tier, so removing 10 expired items
 * among thousands reads none of the others from the storage (reading the
 * memory storage would first fold its whole write log: the cost of a sweep
 * grew with the items it did not touch).
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { FileStorage, MemoryStorage, type StorageEntry } from "../storage.ts";
import { FakeClock } from "./conformance/database_suite.ts";

class CountingMemory extends MemoryStorage {
  keysRead = 0;
  override get(key: Uint8Array): Promise<StorageEntry | null> {
    this.keysRead++;
    return super.get(key);
  }
  override getMany(
    keys: readonly Uint8Array[],
  ): Promise<(StorageEntry | null)[]> {
    this.keysRead += keys.length;
    return super.getMany(keys);
  }
}

Deno.test("sweep on the memory storage: reads no item from the storage, removes exactly the expired", async () => {
  const clock = new FakeClock();
  const storage = new CountingMemory();
  await using db = await open({
    storage,
    clock,
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  const items = new Map<string, unknown>();
  const ttl: number[] = [];
  for (let i = 0; i < 5_000; i++) {
    items.set(`i${i}`, { n: i });
    ttl.push(i % 500 === 0 ? 1_000 : 86_400_000);
  }
  await db.putBatch(items, { ttl });
  clock.advance(1_001);
  const before = storage.keysRead;
  assert.equal(await db.cleanup(), 10);
  assert.equal(storage.keysRead - before, 0);
  assert.equal(db.stats().items, 4_990);
  assert.equal(await db.get("i0"), null);
  assert.deepStrictEqual(await db.get("i1"), { n: 1 });
  // Expired and swept: the change feed tells it as an expiry when asked.
  const seen: string[] = [];
  for await (const c of db.changes({ live: false, expiries: true })) {
    if (c.type === "expire") seen.push(c.key);
  }
  assert.equal(seen.length, 10);
});

Deno.test("sweep on a reopened file: reads only the expired items' records", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const clock = new FakeClock();
    const path = `${dir}/s.tdb`;
    {
      await using db = await open({ path, clock, cleanupInterval: Infinity });
      const items = new Map<string, unknown>();
      const ttl: number[] = [];
      for (let i = 0; i < 2_000; i++) {
        items.set(`i${i}`, { n: i });
        ttl.push(i % 200 === 0 ? 1_000 : 86_400_000);
      }
      await db.putBatch(items, { ttl });
    }
    const inner = await FileStorage.open(path);
    let keysRead = 0;
    const getMany = inner.getMany.bind(inner);
    inner.getMany = (keys) => {
      keysRead += keys.length;
      return getMany(keys);
    };
    await using db = await open({
      storage: inner,
      clock,
      ttlCheckInterval: Infinity,
      cleanupInterval: Infinity,
    });
    clock.advance(1_001);
    keysRead = 0;
    assert.equal(await db.cleanup(), 10);
    assert(keysRead <= 10, `${keysRead} keys read to sweep 10`);
    assert.equal(db.stats().items, 1_990);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
