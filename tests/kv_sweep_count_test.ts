/**
 * Counts stay exact while the sweeper removes expired items from Deno KV.
 * There the sweep deletes in groups sized to KV's atomic limits, and an
 * expired item it has taken from the schedule is subtracted from the count
 * until it is gone; the group's commit lowering the stored count and the
 * items leaving that list must be one step, or `stats().items` counts them
 * away twice in between (seen as a rare failure of the conformance
 * property "concurrent writes and sweeps keep counts exact" under load).
 */

import assert from "node:assert/strict";
import { type Database, open, type Storage } from "../mod.ts";
import { KvStorage } from "../src/storage/kv.ts";
import { FakeClock } from "./conformance/database_suite.ts";

Deno.test("kv sweep: stats().items is exact at every step after each group's commit", async () => {
  const clock = new FakeClock();
  const inner = new KvStorage(await Deno.openKv(":memory:"), {
    closeKv: true,
  });
  const ref: { db?: Database } = {};
  let watching = false;
  const seen: number[] = [];
  // The storage as it is, but after each commit with deletes the count is
  // read at each of the next 40 microtask steps (no timers: deterministic).
  const storage = new Proxy(inner, {
    get(target, name) {
      if (name === "commit") {
        return async (commit: Parameters<Storage["commit"]>[0]) => {
          const result = await target.commit(commit);
          if (watching && (commit.deletes?.length ?? 0) > 0) {
            let step = Promise.resolve();
            for (let i = 0; i < 40; i++) {
              step = step.then(() => {
                seen.push(ref.db!.stats().items);
              });
            }
          }
          return result;
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Storage;
  const db = ref.db = await open({
    storage,
    clock,
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  await db.put("d", 1);
  await Promise.all(["b", "c", "e"].map((k) => db.put(k, 1, { ttl: 5 })));
  clock.advance(10);
  assert.equal(db.stats().items, 1);
  watching = true;
  assert.equal(await db.cleanup(), 3);
  await new Promise((r) => setTimeout(r, 0));
  watching = false;
  assert(seen.length >= 40, "the commit of the sweep was watched");
  assert.deepEqual([...new Set(seen)], [1]);
  assert.equal(db.stats().items, 1);
  await db.close();
});
