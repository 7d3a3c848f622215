/**
 * A compaction that cannot write its new file (a full disk, or any other
 * write error) rejects with a typed error carrying the cause, removes the
 * new file, and leaves the database as it was: the old file byte for byte,
 * still in use, later writes kept.
 */

import assert from "node:assert/strict";
import { IntegrityError, open, QuotaError, TetherError } from "../mod.ts";
import { faults } from "../src/storage/file.ts";

function diskError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

for (
  const [name, failOn] of [
    ["the snapshot", 1],
    ["the tail and snapshot end frame", 2],
  ] as const
) {
  Deno.test(`ENOSPC while a compaction writes ${name}: QuotaError with the cause, the old file intact and in use, the new one removed, later writes kept`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tether-compact-full-" });
    const path = `${dir}/full.tdb`;
    try {
      const db = await open({ path, ttlCheckInterval: Infinity });
      try {
        for (let i = 0; i < 50; i++) await db.put(`k${i % 10}`, { i });
        const before = await Deno.readFile(path);
        let calls = 0;
        faults.compactWrite = () => {
          if (++calls === failOn) {
            throw diskError("ENOSPC", "No space left on device (os error 28)");
          }
        };
        try {
          await assert.rejects(db.compact(), (e: unknown) => {
            assert(e instanceof QuotaError, String(e));
            assert.equal((e.cause as { code?: string }).code, "ENOSPC");
            assert.match(e.message, /Cannot compact '.*full\.tdb'/);
            assert.match(e.message, /No space left on device/);
            assert.match(e.message, /unchanged/);
            return true;
          });
        } finally {
          faults.compactWrite = undefined;
        }
        assert.equal(calls, failOn);
        assert.deepEqual(await Deno.readFile(path), before, "old file intact");
        assert(!(await exists(`${path}.compact`)), "new file removed");
        const stats = db.stats().storageStats as { compactions: number };
        assert.equal(stats.compactions, 0);
        // Still in use: writes go on, to the old file.
        await db.put("after", "yes");
        assert.deepEqual(await db.get("k3"), { i: 43 });
        assert((await Deno.stat(path)).size > before.length);
        // And the next compaction, with room on the disk, works.
        assert.equal(await db.compact(), true);
      } finally {
        await db.close();
      }
      await using again = await open({ path, ttlCheckInterval: Infinity });
      assert.equal(await again.get("after"), "yes");
      for (let k = 0; k < 10; k++) {
        assert.deepEqual(await again.get(`k${k}`), { i: 40 + k });
      }
    } finally {
      faults.compactWrite = undefined;
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("any other write error during a compaction: a TetherError with the cause, the database unchanged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-compact-eio-" });
  const path = `${dir}/eio.tdb`;
  try {
    await using db = await open({ path, ttlCheckInterval: Infinity });
    for (let i = 0; i < 20; i++) await db.put(`k${i % 5}`, i);
    const before = await Deno.readFile(path);
    faults.compactWrite = () => {
      throw diskError("EIO", "Input/output error (os error 5)");
    };
    await assert.rejects(db.compact(), (e: unknown) => {
      assert(e instanceof TetherError && !(e instanceof QuotaError), String(e));
      assert.equal((e.cause as { code?: string }).code, "EIO");
      assert.match(e.message, /Input\/output error/);
      return true;
    });
    faults.compactWrite = undefined;
    assert.deepEqual(await Deno.readFile(path), before);
    assert(!(await exists(`${path}.compact`)));
    await db.put("k0", "after");
    assert.equal(await db.get("k0"), "after");
  } finally {
    faults.compactWrite = undefined;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a strict write whose fsync fails while a compaction copies it: the write is refused, the compaction fails (not as damage), and no file ever holds the write", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-compact-" });
  const path = `${dir}/db.tdb`;
  try {
    const db = await open({ path, durability: "strict" });
    for (let i = 0; i < 50; i++) await db.put(`k${i}`, { i });
    let holding!: () => void;
    const held = new Promise<void>((r) => holding = r);
    let release!: () => void;
    const released = new Promise<void>((r) => release = r);
    faults.beforeSync = async (name) => {
      if (name !== path) return;
      faults.beforeSync = undefined;
      holding();
      await released;
      throw diskError("EIO", "Input/output error (os error 5)");
    };
    // Written to the log, its fsync held: pending while the copy runs.
    const put = db.put("zz", { lost: true });
    await held;
    const compaction = db.compact();
    // The copy runs beside the held fsync (the swap waits for the log).
    await new Promise((r) => setTimeout(r, 100));
    release();
    const refused = await put.then(() => undefined, (e) => e);
    assert(refused instanceof TetherError, String(refused));
    assert.match(refused.message, /taken back/);
    const failed = await compaction.then(() => undefined, (e) => e);
    assert(failed instanceof TetherError, String(failed));
    assert(!(failed instanceof IntegrityError), String(failed));
    assert.match(failed.message, /a write failed while it ran/);
    assert.equal(await db.get("zz"), null);
    // The database goes on, and compacts once nothing fails.
    await db.put("after", 1);
    assert.equal(await db.compact(), true);
    await db.close();
    await using again = await open({ path });
    assert.equal(await again.get("zz"), null);
    assert.deepEqual(await again.get("k49"), { i: 49 });
    assert.equal(await again.get("after"), 1);
    assert.equal(await again.count(), 51);
  } finally {
    faults.beforeSync = undefined;
    await Deno.remove(dir, { recursive: true });
  }
});
