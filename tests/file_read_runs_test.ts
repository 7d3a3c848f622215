/**
 * The file storage reads the values of several keys (`getMany`, a page of
 * the change feed) in one read per run of nearby records, and hands out
 * exactly what reading each key alone gives: written or still queued,
 * present or absent, repeated keys, after a reopen and after compaction.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { open } from "../mod.ts";
import {
  FileStorage,
  type FileStorageStats,
  type StorageEntry,
} from "../storage.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 500 : 60;
const enc = new TextEncoder();
const key = (i: number) => enc.encode(`k${i}`);

function same(a: StorageEntry | null, b: StorageEntry | null): void {
  assert.equal(a === null, b === null);
  if (a === null || b === null) return;
  assert.deepStrictEqual(a.key, b.key);
  assert.deepStrictEqual(a.value, b.value);
  assert.equal(a.versionstamp, b.versionstamp);
  assert.deepStrictEqual(
    (a as { memo?: unknown }).memo,
    (b as { memo?: unknown }).memo,
  );
}

Deno.test("file storage: getMany gives what get gives, key by key (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          k: fc.integer({ min: 0, max: 30 }),
          len: fc.integer({ min: 0, max: 3000 }),
          del: fc.boolean(),
        }),
        { minLength: 1, maxLength: 40 },
      ),
      fc.array(fc.integer({ min: 0, max: 35 }), { maxLength: 30 }),
      fc.constantFrom("none", "reopen", "compact"),
      fc.constantFrom("strict" as const, "batched" as const),
      async (writes, asked, when, durability) => {
        const dir = await Deno.makeTempDir();
        const path = `${dir}/s.tdb`;
        let s = await FileStorage.open(path, { durability });
        try {
          for (const w of writes) {
            await s.commit(
              w.del ? { deletes: [key(w.k)] } : {
                sets: [{
                  key: key(w.k),
                  value: new Uint8Array(w.len).fill(w.k),
                }],
              },
            );
          }
          if (when === "reopen") {
            await s.close();
            s = await FileStorage.open(path, { durability });
          } else if (when === "compact") {
            await s.compact();
          }
          const keys = asked.map(key);
          const many = await s.getMany(keys);
          assert.equal(many.length, keys.length);
          for (let i = 0; i < keys.length; i++) {
            same(many[i]!, await s.get(keys[i]!));
          }
        } finally {
          await s.close();
          await Deno.remove(dir, { recursive: true });
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("file storage: a page of the change feed written in a row is read in a few reads, not one per document", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/feed.tdb`;
  try {
    {
      await using db = await open({ path });
      const docs = new Map<string, unknown>();
      for (let i = 0; i < 500; i++) docs.set(`r${i}`, { n: i, t: i / 10 });
      await db.collection("readings").putBatch(docs);
    }
    // Reopened: every value is on disk.
    await using db = await open({ path });
    const reads = () =>
      (db.stats().storageStats as FileStorageStats).valueReads;
    const before = reads();
    let n = 0;
    for await (
      const c of db.collection("readings").changes({ live: false, limit: 500 })
    ) {
      assert.equal(c.type, "put");
      assert.deepStrictEqual(c.doc, { n, t: n / 10 });
      n++;
    }
    assert.equal(n, 500);
    const made = reads() - before;
    assert(made >= 1 && made <= 10, `${made} reads for 500 documents`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
