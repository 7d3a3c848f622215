/**
 * The Deno KV feed's blocks of puts (src/engine/feed_block.ts): the compact
 * form (`f`, front-coded `x`) and the first form (`p`, `i`) both read back
 * to the same changes; a compact block that does not add up is damaged.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { IntegrityError } from "../src/errors.ts";
import { blockSet, readPositions } from "../src/engine/feed_block.ts";
import { encodeKey } from "../src/key_codec.ts";
import { BY_POSITION } from "../src/engine/feed_format.ts";
import { open } from "../mod.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 5_000 : 300;

const text = new TextDecoder();
const utf8 = new TextEncoder();

function roundTrip(positions: number[], ids: string[]) {
  const set = blockSet("readings", positions, ids);
  const back = readPositions({ ...set, versionstamp: "1" });
  assert.deepEqual(back.map((e) => e.position), positions);
  assert.deepEqual(back.map((e) => e.id), ids);
  assert.ok(back.every((e) => e.collection === "readings" && e.kind === 1));
  return JSON.parse(text.decode(set.value));
}

function blockEntry(last: number, value: unknown) {
  return {
    key: encodeKey([BY_POSITION, last, "b"]),
    value: utf8.encode(JSON.stringify(value)),
    versionstamp: "1",
  };
}

Deno.test("feed block: a relay's keys in order are front-coded, positions in a run as the first", () => {
  const ids: string[] = [];
  for (let d = 0; d < 5; d++) {
    for (let s = 0; s < 40; s++) {
      ids.push(`esp32-${d}/${String(1_000 + s * 7).padStart(16, "0")}`);
    }
  }
  const positions = ids.map((_, k) => 501 + k);
  const value = roundTrip(positions, ids);
  assert.equal(value.f, 501);
  assert.equal(value.p, undefined);
  assert.equal(value.i, undefined);
  assert.ok(Array.isArray(value.x));
  const plain = JSON.stringify({ c: "readings", p: positions, i: ids }).length;
  const compact = JSON.stringify(value).length;
  // Measured: 6,228 bytes in the first form, 1,661 compact (200 items).
  assert.ok(compact * 3 < plain, `${compact} of ${plain}`);
});

Deno.test("feed block: FORMAT.md's example is what is written", () => {
  const set = blockSet("readings", [7, 8], ["dev-1/0007", "dev-1/0008"]);
  assert.equal(
    text.decode(set.value),
    '{"c":"readings","f":7,"x":[0,"dev-1/0007",9,"8"]}',
  );
  assert.deepEqual(set.key, encodeKey([BY_POSITION, 8, "b"]));
});

Deno.test("feed block: ids with nothing in common stay as they are; positions with gaps are listed", () => {
  const ids = ["b", "a1", "zz", "q"];
  const value = roundTrip([3, 4, 9, 10], ids);
  assert.deepEqual(value.i, ids);
  assert.deepEqual(value.p, [3, 4, 9, 10]);
  assert.equal(value.x, undefined);
  assert.equal(value.f, undefined);
});

Deno.test("feed block: front coding never cuts a surrogate pair, and takes any string", () => {
  const ids = [
    "sensor/\u{1F600}aaaa-1",
    "sensor/\u{1F601}aaaa-2", // shares the pair's first half only
    "sensor/\u{1F601}aaaa-3",
    "sensor/\u{1F601}aaaa-3\u0000x",
    'sensor/é\n"quoted"',
    "",
    "sensor/",
  ];
  const value = roundTrip([1, 2, 3, 4, 5, 6, 7], ids);
  assert.ok(Array.isArray(value.x));
  // Every suffix is well-formed UTF-16 (no lone surrogate at its start).
  for (let k = 1; k < value.x.length; k += 2) {
    assert.equal((value.x[k] as string).isWellFormed(), true, value.x[k]);
  }
});

Deno.test("feed block: a block in the first form (written before the compact one) still reads", () => {
  const out = readPositions(
    blockEntry(8, { c: "c", p: [7, 8], i: ["a", "b"] }),
  );
  assert.deepEqual(out.map((e) => [e.position, e.id]), [[7, "a"], [8, "b"]]);
});

Deno.test("feed block: a compact block that does not add up is damaged, with its position", () => {
  const bad = [
    { c: "c", f: 7, x: [0, "a", 2, "b"] }, // shares more than the previous id has
    { c: "c", f: 7, x: [0, "a", 1] }, // odd length
    { c: "c", f: 6, x: [0, "a", 1, "b"] }, // ends at 7, key says 8
    { c: "c", f: 7, x: [0, "a", -1, "b"] },
    { c: "c", f: 7, x: [0, "a", 0.5, "b"] },
    { c: "c", f: 7, x: [0, "a", 1, 2] },
    { c: "c", f: "7", x: [0, "a", 1, "b"] },
    { c: "c", f: 7, p: [7, 8], x: [0, "a", 1, "b"] }, // both forms
    { c: "c", f: 7, i: ["a", "b"], x: [0, "a", 1, "b"] },
    { c: "c", f: 7, x: [] },
    // Ids longer than any key (1,024 bytes): 64 KiB must not stand for more.
    { c: "c", f: 7, x: [0, "k".repeat(1_000), 1_000, "x".repeat(25)] },
    { c: "c", f: 7 },
  ];
  for (const value of bad) {
    assert.throws(
      () => readPositions(blockEntry(8, value)),
      (e: unknown) =>
        e instanceof IntegrityError && e.seq === "8" &&
        /block of puts ending at position 8/.test(e.message),
      JSON.stringify(value),
    );
  }
  const good = readPositions(
    blockEntry(8, { c: "c", f: 7, x: [0, "a", 1, "b"] }),
  );
  assert.deepEqual(good.map((e) => [e.position, e.id]), [[7, "a"], [8, "ab"]]);
});

Deno.test("feed block: a KV database's bulk write in key order lists every put in the feed from its compact block", async () => {
  using kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const c = db.collection<{ n: number }>("readings");
  const items = new Map<string, { n: number }>();
  for (let n = 0; n < 300; n++) {
    items.set(`dev-${n % 3}/${String(n).padStart(16, "0")}`, { n });
  }
  const sorted = new Map([...items].sort(([a], [b]) => a < b ? -1 : 1));
  await c.putBatch(sorted, { atomic: false, assumeNew: true });
  let blocks = 0;
  for await (const e of kv.list<unknown>({ prefix: ["tether"] })) {
    if (!(e.value instanceof Uint8Array)) continue;
    const t = text.decode(e.value);
    if (t.startsWith('{"c":"readings",')) {
      blocks++;
      assert.match(t, /"f":\d+,"x":\[0,"dev-0\//);
    }
  }
  assert.equal(blocks, 1);
  const seen: string[] = [];
  for await (const ch of c.changes({ live: false })) seen.push(ch.key);
  assert.deepEqual(seen, [...sorted.keys()]);
  const { problems } = await db.verify();
  assert.deepEqual(problems, []);
});

Deno.test("feed block: any ids and ascending positions read back as written (property)", () => {
  // Ids drawn from a few units that make shared beginnings likely, with
  // surrogate pairs, quotes, escapes and NUL; sorted or not.
  const idArb = fc.string({
    minLength: 0,
    maxLength: 12,
    unit: fc.constantFrom("a", "b", "/", "0", "\0", '"', "\\", "é", "😀", "😁"),
  });
  fc.assert(
    fc.property(
      fc.array(idArb, { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 1, max: 2 ** 40 }),
      fc.array(fc.integer({ min: 1, max: 3 }), {
        minLength: 40,
        maxLength: 40,
      }),
      fc.boolean(),
      (raw, start, gaps, sort) => {
        const ids = sort ? [...raw].sort() : raw;
        const positions: number[] = [];
        let at = start;
        for (let k = 0; k < ids.length; k++) {
          positions.push(at);
          at += gaps[k]!;
        }
        const set = blockSet("c", positions, ids);
        const back = readPositions({ ...set, versionstamp: "1" });
        assert.deepEqual(back.map((e) => e.id), ids);
        assert.deepEqual(back.map((e) => e.position), positions);
        const value = JSON.parse(text.decode(set.value));
        // The compact forms are written only where they apply.
        const run = positions.every((p, k) => p === start + k);
        assert.equal(value.f !== undefined, run);
        assert.equal(value.p !== undefined, !run);
        assert.equal((value.x === undefined) !== (value.i === undefined), true);
        // Never longer than the first form.
        const plain = JSON.stringify(
          run ? { c: "c", f: start, i: ids } : { c: "c", p: positions, i: ids },
        );
        assert.ok(JSON.stringify(value).length <= plain.length);
        // Every suffix is well-formed UTF-16.
        for (let k = 1; k < (value.x?.length ?? 0); k += 2) {
          assert.equal((value.x[k] as string).isWellFormed(), true);
        }
      },
    ),
    { numRuns: RUNS },
  );
});
