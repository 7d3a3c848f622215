/**
 * Opening a local database leaves the documents' change feed positions out
 * of the in-RAM feed index until a reader asks (`changes()`): what readers
 * then see is what they would have seen had every position been indexed
 * at open, whatever was written, deleted or read meanwhile.
 */

import assert from "node:assert/strict";
import { type FeedChange, open } from "../mod.ts";
import { MemoryStorage } from "../storage.ts";
import { keepOpen } from "./changes_helpers.ts";

type Db = Awaited<ReturnType<typeof open>>;

async function feed(db: Db, since?: string): Promise<FeedChange[]> {
  const out: FeedChange[] = [];
  const options = since === undefined
    ? { live: false }
    : { live: false, since };
  for await (const c of db.changes(options)) out.push(c);
  return out;
}

const brief = (cs: FeedChange[]) =>
  cs.map((c) => `${c.type} ${c.collection}/${c.key} v${c.version}`);

function strictlyGrowing(cs: FeedChange[]): void {
  for (let i = 1; i < cs.length; i++) {
    assert(BigInt(cs[i]!.seq) > BigInt(cs[i - 1]!.seq), "positions grow");
  }
}

/** Writes, reopens, writes again before any read, then reads. */
async function scenario(reopen: () => Promise<Db>): Promise<void> {
  let before: FeedChange[];
  {
    await using db = await reopen();
    for (const k of ["a", "b", "c", "e"]) await db.put(k, { k });
    await db.collection("other").put("x", { x: 1 });
    await db.put("a", { k: "a2" });
    before = await feed(db);
  }
  assert.deepEqual(brief(before), [
    "put default/b v1",
    "put default/c v1",
    "put default/e v1",
    "put other/x v1",
    "put default/a v2",
  ]);
  await using db = await reopen();
  // Written before any reader: an update, a delete, a new key, a rewrite of
  // the key written last before the restart.
  await db.put("b", { k: "b2" });
  await db.delete("c");
  await db.put("d", { k: "d" });
  await db.put("a", { k: "a3" });
  // Two readers at once, and a write while they start.
  const [one, two] = await Promise.all([
    feed(db),
    feed(db),
    db.put("f", { k: "f" }),
  ]);
  for (const got of [one, two]) {
    strictlyGrowing(got);
    const positions = new Set(got.map((c) => c.seq));
    assert.equal(positions.size, got.length, "no position twice");
    // Unchanged items keep their position from before the restart.
    assert.equal(got[0]!.seq, before[2]!.seq);
    assert.equal(got[1]!.seq, before[3]!.seq);
  }
  const want = [
    "put default/e v1",
    "put other/x v1",
    "put default/b v2",
    "delete default/c v2",
    "put default/d v1",
    "put default/a v3",
  ];
  assert.deepEqual(brief(one).filter((c) => !c.endsWith("/f v1")), want);
  assert.deepEqual(brief(two).filter((c) => !c.endsWith("/f v1")), want);
  // Resuming from a position read before the restart.
  assert.deepEqual(
    brief(await feed(db, before[3]!.seq)),
    [...want.slice(2), "put default/f v1"],
  );
}

Deno.test("deferred feed index: a file database reopened, written, then read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-feed-" });
  try {
    await scenario(() => open({ path: `${dir}/f.tdb` }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deferred feed index: a memory storage reopened in the process, written, then read", async () => {
  // Kept open across the restarts: the same memory, reopened.
  const storage = keepOpen(new MemoryStorage());
  await scenario(() => open({ storage }));
});

Deno.test("deferred feed index: a reload while the index is filled leaves no stale entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-feed-" });
  try {
    const path = `${dir}/f.tdb`;
    {
      await using db = await open({ path });
      const batch = new Map<string, unknown>();
      for (let i = 0; i < 3000; i++) batch.set(`k${i}`, { i });
      await db.putBatch(batch);
    }
    await using writer = await open({ path });
    await using reader = await open({ path, readOnly: true });
    await writer.put("k0", { i: -1 });
    await writer.delete("k1");
    // The index is filled from the file, and a reload starts meanwhile.
    const reading = feed(reader);
    await reader.refresh();
    const first = await reading;
    assert(first.length >= 3000);
    const after = await feed(reader);
    strictlyGrowing(after);
    assert.equal(after.length, 3000);
    assert.deepEqual(brief(after.slice(-2)), [
      "put default/k0 v2",
      "delete default/k1 v2",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
