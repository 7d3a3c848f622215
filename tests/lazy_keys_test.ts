/**
 * The object tier makes storage keys only when asked (documents, index
 * entries, index cells): what it makes then, and every shortcut it takes
 * instead (key lengths, binary strings, entry comparisons), agrees with the
 * eager encoders.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { binaryString } from "../src/bytes.ts";
import { encodeKey, encodeKeyBinary, type KeyPart } from "../src/key_codec.ts";
import {
  encodeIndexKey,
  encodeIndexKeyBinary,
  type IndexKeyPart,
} from "../src/index_key_codec.ts";
import {
  CollectionIndexes,
  entryKeyId,
  entryLength,
  sameEntry,
} from "../src/engine/indexes.ts";
import { docKeyLength, DocSlot } from "../src/engine/record_table.ts";
import { RamIndexes } from "../src/engine/ram_index.ts";
import { encodeRecord, type StoredRecord } from "../src/value_codec.ts";
import { open } from "../mod.ts";
import { MemoryStorage } from "../storage.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 5_000 : 300;

// Ids: every UTF-8 length class, NUL (escaped in keys) and surrogate pairs.
const idArb = fc.string({
  maxLength: 12,
  unit: fc.constantFrom(
    "a",
    "Z",
    "\0",
    "\x7f",
    "é",
    "\u07ff",
    "\u0800",
    "€",
    "\uffff",
    "😀",
  ),
});

const scalarArb: fc.Arbitrary<KeyPart> = fc.oneof(
  fc.constant(null),
  fc.double({ noNaN: true }),
  fc.integer({ min: -3, max: 3 }),
  idArb,
  fc.boolean(),
  fc.integer({ min: -3, max: 3 }).map((t) => new Date(t)),
);

const partArb: fc.Arbitrary<IndexKeyPart> = fc.oneof(
  scalarArb,
  fc.array(scalarArb, { maxLength: 3 }),
  fc.record({ a: scalarArb, b: fc.array(scalarArb, { maxLength: 2 }) }),
);

function record(value: unknown): StoredRecord {
  return {
    value,
    tags: undefined,
    expiresAt: undefined,
    createdAt: 5,
    updatedAt: 5,
    version: 1,
    seq: 7,
    feed: 1,
    dates: undefined,
  } as StoredRecord;
}

Deno.test("lazy keys: a document's key made late equals encodeKey, and docKeyLength its length", () => {
  const prefix = encodeKey(["d", "users"]);
  fc.assert(
    fc.property(idArb, (id) => {
      const key = encodeKey([id], prefix);
      assert.equal(docKeyLength(prefix, id), key.length);
      const slot = new DocSlot(id, prefix, record({}));
      assert.equal(slot.knownKey, undefined);
      assert.deepEqual(slot.key, key);
      assert.equal(slot.knownKey, slot.key); // made once, then kept
      // As the memory storage's set of its put.
      const memo = record({ a: 1 });
      const set = new DocSlot(id, prefix, memo, key);
      assert.equal(set.key, key);
      assert.deepEqual(set.encode(set.memo), encodeRecord(memo));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("lazy keys: binary-string encoders equal the bytes' binary string", () => {
  fc.assert(
    fc.property(fc.array(scalarArb, { maxLength: 4 }), (parts) => {
      assert.equal(encodeKeyBinary(parts), binaryString(encodeKey(parts)));
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.array(partArb, { maxLength: 3 }), (parts) => {
      assert.equal(
        encodeIndexKeyBinary(parts),
        binaryString(encodeIndexKey(parts)),
      );
    }),
    { numRuns: RUNS },
  );
  // Refusals are the same errors.
  assert.throws(() => encodeKeyBinary([NaN]), RangeError);
  assert.throws(() => encodeKeyBinary(["\ud800"]), TypeError);
  assert.throws(() => encodeIndexKeyBinary([{ a: NaN }]), RangeError);
});

Deno.test("lazy keys: index entries made late equal the eager encoding, and compare like it", () => {
  const indexes = new CollectionIndexes("c");
  const spec = { sparse: false, multikey: true };
  indexes.add({ name: "a", fields: ["a"], unique: false, ...spec });
  indexes.add({ name: "u", fields: ["u"], unique: true, ...spec });
  // Its keys' tails equal index a's: only the index tells them apart.
  indexes.add({ name: "w", fields: ["a", "k"], unique: true, ...spec });
  indexes.ordered = true;
  const ram = new RamIndexes("c", true);
  fc.assert(
    fc.property(
      idArb,
      partArb,
      partArb,
      scalarArb,
      (id, a, b, u) => {
        const rec = record({ a, u, k: id });
        const entries = indexes.entries(id, rec);
        for (const e of entries) {
          const eager = e.index === ""
            ? encodeKey([5, 7, id], indexes.orderPrefix)
            : encodeIndexKey(
              e.unique ? [...e.tuple] : [...e.tuple, id],
              indexes.prefix(e.index),
            );
          assert.deepEqual(e.key, eager);
          assert.equal(entryLength(e), eager.length);
          assert.equal(entryKeyId(e), binaryString(eager));
        }
        // Against another document's entries: equal exactly when the keys are.
        const others = indexes.entries(id, record({ a: b, u, k: id }));
        for (const x of entries) {
          for (const y of others) {
            const plain = {
              key: y.key,
              index: y.index,
              unique: y.unique,
              tuple: y.tuple,
            };
            const same = binaryString(x.key) === binaryString(y.key);
            assert.equal(sameEntry(x, y), same);
            assert.equal(sameEntry(x, plain), same);
          }
        }
        // The RAM tree gives the entry's key back, for cursor positions.
        const slot = new DocSlot(id, encodeKey(["d", "c"]), rec);
        for (const e of entries) {
          ram.add(e, slot);
          assert.equal(ram.holder(e), slot);
          const slots: DocSlot[] = [];
          const tails: string[] = [];
          const walk = ram.range(e.index, e.key, undefined, false);
          assert.equal(walk.fillKeyed(slots, tails, 1), 1);
          assert.equal(slots[0], slot);
          assert.deepEqual(ram.keyOf(e.index, tails[0]!), e.key);
          assert(ram.remove(e, slot));
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("lazy keys: page positions through an index and through the documents resume exactly, on memory storage", async () => {
  const storage = new MemoryStorage();
  await using db = await open({ storage });
  const c = db.collection<{ n: number; g: string }>("c");
  await c.createIndex("g");
  for (let i = 0; i < 250; i++) {
    await c.put(`k${String(i).padStart(3, "0")}\0é😀`, {
      n: i,
      g: `g${i % 3}`,
    });
  }
  for (const filter of [{ g: "g1" }, {}]) {
    const seen: number[] = [];
    let after: string | undefined;
    do {
      const page = await c.find(filter, after === undefined ? {} : { after })
        .page(17);
      seen.push(...page.items.map((d) => d.n));
      after = page.next;
    } while (after !== undefined);
    const all = (await c.find(filter).toArray()).map((d) => d.n);
    assert.deepEqual(seen, all);
    assert.equal(all.length, filter.g === undefined ? 250 : 83);
  }
  // The memory storage, read directly, holds the keys the engine would make.
  const entry = await storage.get(encodeKey(["d", "c", "k007\0é😀"]));
  assert.notEqual(entry, null);
});
