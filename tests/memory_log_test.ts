/**
 * The memory storage's write log: object sets (one object per key, written
 * again and again, as the engine's slots are), byte sets and deletes are
 * logged and folded into the key table only when a reader needs it (or when
 * deletes and byte sets make up a quarter of the log); an object set written
 * again while logged is logged once. Random commits and reads against a
 * model: every read sees each key's last write, with the versionstamp of
 * the commit that made it.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryStorage } from "../storage.ts";
import type { ObjectSet } from "../src/storage/contract.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 2_000 : 200;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** An object set as the engine's slots are: one per key, memo replaced. */
class Slot implements ObjectSet {
  readonly key: Uint8Array;
  memo: unknown;
  logged: number | undefined = undefined;
  constructor(key: string, memo: unknown) {
    this.key = enc.encode(key);
    this.memo = memo;
  }
  encode(memo: unknown): Uint8Array {
    return enc.encode(JSON.stringify(memo));
  }
}

type Op =
  | { t: "object"; k: string; v: number }
  | { t: "bytes"; k: string; v: number; checked: boolean }
  | { t: "delete"; k: string; objects: boolean }
  | { t: "get"; k: string }
  | { t: "scan" };

const key = fc.constantFrom("a", "b", "c", "d");
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("object" as const),
      k: key,
      v: fc.nat(99),
    }),
  },
  fc.record({
    t: fc.constant("bytes" as const),
    k: key,
    v: fc.nat(99),
    checked: fc.boolean(),
  }),
  fc.record({
    t: fc.constant("delete" as const),
    k: key,
    objects: fc.boolean(),
  }),
  fc.record({ t: fc.constant("get" as const), k: key }),
  fc.constant({ t: "scan" as const }),
);

Deno.test("memory log: reads see each key's last write and its commit's versionstamp, however the log was folded", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 50 }), async (ops) => {
      const storage = new MemoryStorage();
      // key -> [value, versionstamp]
      const model = new Map<string, [number, string]>();
      // The engine's rule: a slot per key until the key is deleted.
      const slots = new Map<string, Slot>();
      const read = (bytes: Uint8Array) => Number(dec.decode(bytes));
      for (const o of ops) {
        if (o.t === "object") {
          let slot = slots.get(o.k);
          if (slot === undefined) {
            slot = new Slot(o.k, o.v);
            slots.set(o.k, slot);
          }
          slot.memo = o.v;
          const r = storage.objects.commit({ sets: [slot] });
          assert(r.ok);
          model.set(o.k, [o.v, r.versionstamp]);
        } else if (o.t === "bytes") {
          // A byte set takes over the key: the engine makes a new slot.
          slots.delete(o.k);
          const set = { key: enc.encode(o.k), value: enc.encode(String(o.v)) };
          const r = await storage.commit(
            o.checked
              ? {
                checks: [{
                  key: enc.encode("zz"),
                  versionstamp: null,
                }],
                sets: [set],
              }
              : { sets: [set] },
          );
          assert(r.ok);
          model.set(o.k, [o.v, r.versionstamp!]);
        } else if (o.t === "delete") {
          slots.delete(o.k);
          if (o.objects) {
            storage.objects.commit({ deletes: [enc.encode(o.k)] });
          } else {
            await storage.commit({ deletes: [enc.encode(o.k)] });
          }
          model.delete(o.k);
        } else if (o.t === "get") {
          const e = await storage.get(enc.encode(o.k));
          const want = model.get(o.k);
          if (want === undefined) assert.equal(e, null);
          else {
            assert.equal(read(e!.value), want[0]);
            assert.equal(e!.versionstamp, want[1]);
          }
        } else {
          const got: [string, number, string][] = [];
          for await (const page of storage.scan({})) {
            for (const e of page) {
              got.push([dec.decode(e.key), read(e.value), e.versionstamp]);
            }
          }
          const want = [...model].sort(([a], [b]) => a < b ? -1 : 1)
            .map(([k, [v, s]]) => [k, v, s]);
          assert.deepEqual(got, want);
        }
      }
      await storage.close();
    }),
    { numRuns: RUNS },
  );
});

Deno.test("memory log: an object set written many times before a read is read with its last record and versionstamp", async () => {
  const storage = new MemoryStorage();
  const slot = new Slot("k", 0);
  let last = "";
  for (let i = 1; i <= 1000; i++) {
    slot.memo = i;
    const r = storage.objects.commit({ sets: [slot] });
    assert(r.ok);
    last = r.versionstamp;
  }
  assert.equal(slot.logged, 1000); // the note follows the last commit
  const e = await storage.get(enc.encode("k"));
  assert.equal(dec.decode(e!.value), "1000");
  assert.equal(e!.versionstamp, last);
  await storage.close();
});
