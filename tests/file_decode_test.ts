/**
 * The file storage decodes a record straight from its stored parts
 * (`recordFromParts`, the entries' `memo`): always the record that
 * rebuilding the envelope's JSON and parsing it gives; a record that does
 * not decode falls back to the bytes, whose read reports the damage. And
 * opening a file counts keys only (values stay on disk), so it reads no
 * value.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeKey } from "../src/key_codec.ts";
import { decodeRecord, encodeRecord, recordOf } from "../src/value_codec.ts";
import {
  joinValue,
  REC_ENVELOPE,
  REC_ID,
  REC_TAGS,
  splitValue,
} from "../src/storage/file_record.ts";
import { recordFromParts } from "../src/storage/file_decode.ts";
import { IntegrityError } from "../mod.ts";
import { open } from "../mod.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 3_000 : 200;

const idArb = fc.string({
  minLength: 1,
  maxLength: 10,
  unit: fc.constantFrom("a", "\0", '"', "\\", "\n", "é", "€", "😀", "\u2028"),
});

const leafArb = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.integer({ min: 0, max: 2e12 }).map((t) => new Date(t)),
);
const docArb = fc.dictionary(
  fc.constantFrom("a", "b", "_id", "__proto__", "k\0", "é"),
  fc.oneof(
    leafArb,
    fc.array(leafArb, { maxLength: 3 }),
    fc.dictionary(fc.constantFrom("x", "y"), leafArb, { maxKeys: 2 }),
  ),
  { maxKeys: 4 },
);

Deno.test("file decode: records from their parts equal the parsed envelope", () => {
  fc.assert(
    fc.property(
      idArb,
      docArb,
      fc.option(fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 })),
      fc.option(fc.integer({ min: 1, max: 2e12 })),
      fc.boolean(),
      (id, doc, tags, ttl, withId) => {
        const value: Record<string, unknown> = withId
          ? { _id: id, ...doc }
          : { ...doc };
        const key = encodeKey(["d", "c", id]);
        // What the engine writes: a record through its JSON round trip.
        const record = decodeRecord(
          encodeRecord({
            value,
            tags: tags ?? undefined,
            expiresAt: ttl ?? undefined,
            createdAt: 10,
            updatedAt: 20,
            version: 3,
            seq: 4,
            feed: 9,
            dates: undefined,
          } as never),
          "test",
        );
        const bytes = encodeRecord(record);
        const parts = splitValue(bytes, record, key);
        const expected = decodeRecord(joinValue(parts, key), "test");
        assert.deepEqual(expected, decodeRecord(bytes, "test"));
        if ((parts.flags & REC_ENVELOPE) === 0) return; // stored raw
        const got = recordFromParts(parts, key, undefined, "test");
        assert.deepEqual(got, expected);
        // Key order too (`_id` first where it was).
        assert.deepEqual(
          Object.keys(got.value as object),
          Object.keys(expected.value as object),
        );
        assert.deepEqual(recordFromParts(parts, key, id, "test"), expected);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("file decode: parts that make no record are IntegrityErrors", () => {
  const parts = splitValue(
    encodeRecord(recordOf({ v: { _id: "k", a: 1 }, c: 1, u: 1, n: 1 }, "t")),
    undefined,
    encodeKey(["d", "c", "k"]),
  );
  assert(parts.flags & REC_ENVELOPE && parts.flags & REC_ID);
  const bad = (over: Partial<typeof parts>, key = encodeKey(["d", "c", "k"])) =>
    assert.throws(
      () => recordFromParts({ ...parts, ...over }, key, undefined, "Cannot x"),
      (e: unknown) =>
        e instanceof IntegrityError && /^Cannot x/.test(e.message),
    );
  bad({ value: new TextEncoder().encode('{"a":') }); // truncated JSON
  bad({ value: new Uint8Array([0xff, 0xfe]) }); // not UTF-8
  bad({ value: new TextEncoder().encode("[1]") }); // `_id` needs an object
  bad({}, encodeKey(["d", "c", 5])); // the key's last part is no string
  // Damaged tags.
  bad({ flags: parts.flags | REC_TAGS, tags: new TextEncoder().encode("[") });
});

Deno.test("file decode: a reopened file gives back every document, with its metadata, and counts keys only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-decode-" });
  try {
    const path = `${dir}/d.tdb`;
    const docs = fc.sample(fc.tuple(idArb, docArb), { numRuns: 300, seed: 7 });
    const want = new Map<string, unknown>();
    let bytes: number;
    {
      await using db = await open({ path });
      const c = db.collection("c");
      for (const [i, [id, doc]] of docs.entries()) {
        const value = { ...doc, _id: id };
        if (i % 3 === 0) {
          await c.put(id, value, { ttl: 3_600_000, tags: ["t"] });
        } else await c.put(id, value);
        want.set(id, await c.getEntry(id));
      }
      bytes = db.stats().bytes;
    }
    // A value ten thousand bytes long costs what a short one costs: its key
    // is in RAM, the value on disk.
    const sizes: number[] = [];
    for (const [name, big] of [["a", "y".repeat(10_000)], ["b", "y"]]) {
      await using other = await open({ path: `${dir}/${name}.tdb` });
      await other.put("x", { big });
      sizes.push(other.stats().bytes);
    }
    assert.equal(sizes[0], sizes[1]);
    assert(sizes[0]! > 0);
    await using db = await open({ path });
    assert.equal(db.stats().bytes, bytes);
    const c = db.collection("c");
    for (const [id, entry] of want) {
      assert.deepEqual(await c.getEntry(id), entry);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
