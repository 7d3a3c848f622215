/**
 * Writers of different items on several handles of one Deno KV (processes,
 * Deploy isolates) race only for the change feed's position counter, which
 * every commit checks: such a race is not a conflict on what a write read,
 * so it is retried apart from `maxRetries`; a race on the items themselves
 * still counts against it. A KV wrapper runs another handle's write just
 * before a commit, so each race happens on cue.
 */

import assert from "node:assert/strict";
import { ConflictError, type Database, open } from "../mod.ts";
import type { KvLike } from "../src/storage/kv.ts";
import { wrapAtomics } from "./kv_atomic_wrap.ts";

/** Wraps a KV so that `before()` runs ahead of each of its commits. */
function interfering(
  kv: Deno.Kv,
  before: () => Promise<void>,
): { kv: KvLike; commits: () => number } {
  let commits = 0;
  const wrapped = wrapAtomics(kv, {
    commit: async (_n, send) => {
      commits++;
      await before();
      return await send();
    },
  });
  return { kv: wrapped, commits: () => commits };
}

async function withKv(
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tether-kv-race-" });
  try {
    await fn(`${dir}/kv.sqlite`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every change of a database's feed, from the start. */
async function allChanges(
  db: Database,
): Promise<{ key: string; seq: string; type: string }[]> {
  const out: { key: string; seq: string; type: string }[] = [];
  for await (const c of db.changes({ live: false })) {
    out.push({ key: c.key, seq: c.seq, type: c.type });
  }
  return out;
}

Deno.test("Deno KV: a commit that lost only the feed counter's race to another handle's write of another key is retried, even with maxRetries 0", async () => {
  await withKv(async (path) => {
    const otherKv = await Deno.openKv(path);
    const other = await open({ kv: otherKv });
    const kv = await Deno.openKv(path);
    let interfere = 0;
    const wrapped = interfering(kv, async () => {
      if (interfere > 0) {
        interfere--;
        await other.put(`other-${interfere}`, { by: "other" });
      }
    });
    const db = await open({ kv: wrapped.kv, maxRetries: 0 });
    try {
      await db.put("warm", { n: 0 }); // learns the counter
      interfere = 3; // the next three commits each lose to another write
      const before = wrapped.commits();
      await db.put("mine", { n: 1 });
      assert.equal(interfere, 0, "the three interfering writes ran");
      assert.equal(wrapped.commits() - before, 4, "three refused, one kept");
      assert.deepEqual(await db.get("mine"), { n: 1 });
      const changes = await allChanges(db);
      assert.deepEqual(
        changes.map((c) => c.key).sort(),
        ["mine", "other-0", "other-1", "other-2", "warm"],
      );
      const positions = changes.map((c) => Number(c.seq));
      assert.deepEqual(positions, [...positions].sort((a, b) => a - b));
      assert.equal(new Set(positions).size, positions.length);
    } finally {
      await db.close();
      kv.close();
      await other.close();
      otherKv.close();
    }
  });
});

Deno.test("Deno KV: a race lost on the written item itself still counts against maxRetries", async () => {
  await withKv(async (path) => {
    const otherKv = await Deno.openKv(path);
    const other = await open({ kv: otherKv });
    const kv = await Deno.openKv(path);
    let n = 0;
    const wrapped = interfering(kv, async () => {
      // Every commit of this handle meets a new version of "x".
      await other.put("x", { by: "other", n: ++n });
    });
    const db = await open({ kv: wrapped.kv, maxRetries: 1, retryDelay: 0 });
    try {
      await assert.rejects(
        () => db.put("x", { by: "me" }),
        (e: unknown) =>
          e instanceof ConflictError &&
          /changed the same items 2 times in a row/.test(e.message),
      );
      assert.equal((await db.get("x") as { by: string }).by, "other");
    } finally {
      await db.close();
      kv.close();
      await other.close();
      otherKv.close();
    }
  });
});

Deno.test("Deno KV: six handles putting different keys at once all succeed with the default retries, and the feed lists each put once in order", async () => {
  await withKv(async (path) => {
    const HANDLES = 6;
    const PUTS = 150;
    const kvs = await Promise.all(
      Array.from({ length: HANDLES }, () => Deno.openKv(path)),
    );
    const dbs = await Promise.all(kvs.map((kv) => open({ kv })));
    try {
      const results = await Promise.allSettled(
        dbs.map(async (db, h) => {
          for (let i = 0; i < PUTS; i++) await db.put(`h${h}-${i}`, { h, i });
        }),
      );
      const failed = results.filter((r) => r.status === "rejected");
      assert.deepEqual(failed, []);
      assert.equal(await dbs[0]!.count(), HANDLES * PUTS);
      const changes = await allChanges(dbs[0]!);
      assert.equal(changes.length, HANDLES * PUTS);
      assert.equal(new Set(changes.map((c) => c.key)).size, HANDLES * PUTS);
      const positions = changes.map((c) => Number(c.seq));
      for (let i = 1; i < positions.length; i++) {
        assert.ok(positions[i]! > positions[i - 1]!, `position ${i} grows`);
      }
    } finally {
      for (const db of dbs) await db.close();
      for (const kv of kvs) kv.close();
    }
  });
});
