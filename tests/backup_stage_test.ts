/**
 * The overlay a restore stages on: it must behave as the storage below with
 * the staged commits applied (checked against a storage that took them
 * directly), leave the storage below untouched, and hand back exactly what
 * was staged as one commit.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryStorage } from "../src/storage/memory.ts";
import {
  MAX_STAGED_BYTES,
  OverlayStorage,
} from "../src/backup/restore_stage.ts";
import { TooLargeError } from "../src/errors.ts";
import type {
  ScanOptions,
  Storage,
  StorageEntry,
} from "../src/storage/contract.ts";
import { storageSuite } from "./conformance/storage_suite.ts";

storageSuite({
  name: "overlay (restore staging)",
  create: () => Promise.resolve(new OverlayStorage(new MemoryStorage())),
});

const key = (n: number) => new Uint8Array([n >> 4, n & 15]);

async function scanAll(
  storage: Storage,
  options: ScanOptions,
): Promise<string[]> {
  const out: string[] = [];
  for await (const page of storage.scan(options)) {
    assert.ok(page.length > 0, "pages are not empty");
    for (const e of page as StorageEntry[]) {
      out.push(`${e.key.join(".")}=${e.value.join(".")}`);
    }
  }
  return out;
}

Deno.test("overlay: reads and scans are those of the storage below with the staged commits applied; the one below is untouched", async () => {
  const op = fc.record({
    sets: fc.array(fc.tuple(fc.nat(63), fc.nat(255)), { maxLength: 8 }),
    deletes: fc.array(fc.nat(63), { maxLength: 8 }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(63), fc.nat(255)), { maxLength: 40 }),
      fc.array(op, { maxLength: 12 }),
      fc.array(
        fc.record({
          a: fc.nat(64),
          b: fc.nat(64),
          prefix: fc.option(fc.nat(3)),
          reverse: fc.boolean(),
          limit: fc.option(fc.integer({ min: 1, max: 30 })),
        }),
        { minLength: 1, maxLength: 4 },
      ),
      async (base, ops, scans) => {
        const below = new MemoryStorage();
        const reference = new MemoryStorage();
        for (const [k, v] of base) {
          const set = [{ key: key(k), value: new Uint8Array([v]) }];
          await below.commit({ sets: set });
          await reference.commit({ sets: set });
        }
        const before = await scanAll(below, {});
        const overlay = new OverlayStorage(below);
        for (const { sets, deletes } of ops) {
          const setKeys = new Set(sets.map(([k]) => k));
          const commit = {
            sets: [...new Map(sets).entries()].map(([k, v]) => ({
              key: key(k),
              value: new Uint8Array([v, 1]),
            })),
            deletes: [...new Set(deletes)].filter((k) => !setKeys.has(k))
              .map(key),
          };
          assert.ok((await overlay.commit(commit)).ok);
          await reference.commit(commit);
        }
        for (const s of scans) {
          const options: ScanOptions = {
            start: key(Math.min(s.a, s.b)),
            end: key(Math.max(s.a, s.b)),
            reverse: s.reverse,
            ...(s.prefix === null
              ? {}
              : { prefix: new Uint8Array([s.prefix]) }),
            ...(s.limit === null ? {} : { limit: s.limit }),
          };
          assert.deepEqual(
            await scanAll(overlay, options),
            await scanAll(reference, options),
          );
        }
        assert.deepEqual(
          await scanAll(overlay, {}),
          await scanAll(reference, {}),
        );
        const keys = Array.from({ length: 64 }, (_, i) => key(i));
        const values = (found: (StorageEntry | null)[]) =>
          found.map((e) => e?.value.join(".") ?? null);
        assert.deepEqual(
          values(await overlay.getMany(keys)),
          values(await reference.getMany(keys)),
        );
        assert.deepEqual(await scanAll(below, {}), before, "below untouched");
        // The staged commit, applied below, gives the reference.
        const staged = overlay.staged();
        await below.commit({ sets: staged.sets, deletes: staged.deletes });
        assert.deepEqual(
          await scanAll(below, {}),
          await scanAll(reference, {}),
        );
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("overlay: checks see the staged view; versions read from below are kept for the final commit; staging is capped", async () => {
  const below = new MemoryStorage();
  const k = new Uint8Array([1]);
  const stamp = await below.commit({ sets: [{ key: k, value: k }] });
  assert.ok(stamp.ok);
  const overlay = new OverlayStorage(below, 100);
  assert.ok(
    (await overlay.commit({
      checks: [{ key: k, versionstamp: stamp.versionstamp }],
      deletes: [k],
    })).ok,
  );
  assert.equal(
    (await overlay.commit({
      checks: [{ key: k, versionstamp: stamp.versionstamp }],
    })).ok,
    false,
    "deleted in the overlay",
  );
  assert.ok(
    (await overlay.commit({ checks: [{ key: k, versionstamp: null }] })).ok,
  );
  assert.deepEqual(overlay.staged().checks, [
    { key: k, versionstamp: stamp.versionstamp },
  ]);
  await assert.rejects(
    overlay.commit({ sets: [{ key: k, value: new Uint8Array(200) }] }),
    TooLargeError,
  );
  assert.equal(MAX_STAGED_BYTES, 1 << 30);
});
