/**
 * Commits far larger than a call stack's worth of arguments: no step may
 * spread a commit's items into one call (that threw "Maximum call stack
 * size exceeded" for a restore of 1,000,000 documents into a file).
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { FileStorage } from "../storage.ts";

const N = 150_000;

Deno.test("file storage: one commit of 150,000 sets is written and reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.tdb`;
    const enc = new TextEncoder();
    const s = await FileStorage.open(path);
    const sets = Array.from({ length: N }, (_, i) => ({
      key: enc.encode(`k${i}`),
      value: enc.encode(`v${i}`),
    }));
    const r = await s.commit({ sets });
    assert.equal(r.ok, true);
    await s.close();
    const again = await FileStorage.open(path);
    assert.equal(again.stats().keys, N);
    const got = await again.get(enc.encode(`k${N - 1}`));
    assert.deepStrictEqual(got?.value, enc.encode(`v${N - 1}`));
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const TORTURE = Deno.env.get("TETHER_TORTURE") !== undefined;

Deno.test({
  name: "file database: putBatch of 150,000 items and a restore of them",
  // Seconds of work: `deno task torture` (the commit above covers the frame).
  ignore: !TORTURE,
}, async () => {
  const dir = await Deno.makeTempDir();
  const n = 150_000;
  try {
    const items = new Map<string, { n: number }>();
    for (let i = 0; i < n; i++) items.set(`k${i}`, { n: i });
    {
      await using db = await open({ path: `${dir}/a.tdb` });
      await db.putBatch(items);
      assert.equal(db.stats().items, n);
      await db.backup(`${dir}/a.backup`);
    }
    await using restored = await open({ path: `${dir}/b.tdb` });
    await restored.restore(`${dir}/a.backup`);
    assert.equal(restored.stats().items, n);
    assert.deepStrictEqual(await restored.get(`k${n - 1}`), { n: n - 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
