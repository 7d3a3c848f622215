import assert from "node:assert/strict";
import fc from "fast-check";
import { shapeCopy } from "../src/shape_copy.ts";
import { open } from "../mod.ts";
import {
  checkDocument,
  checkValue,
  copyKept,
  copyValue,
  decodeRecord,
  encodeRecord,
  recordMeta,
  shareValue,
} from "../src/value_codec.ts";

Deno.test("recordMeta reads the same seq, feed position and expiry as a full decode (property)", () => {
  // Values, tags and date paths full of the envelope's own field names.
  const tricky = fc.constantFrom(
    "s",
    "x",
    "f",
    ',"s":',
    ',"x":',
    ',"f":',
    '"',
    "\\",
    "}",
  );
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.oneof(fc.string(), tricky),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(fc.oneof(fc.string(), tricky), tie("value"), {
        maxKeys: 4,
      }),
    ),
  })).value;
  fc.assert(
    fc.property(
      json,
      fc.option(fc.array(fc.oneof(fc.string(), tricky), { maxLength: 3 }), {
        nil: undefined,
      }),
      fc.option(fc.integer({ min: 0, max: 2 ** 52 }), { nil: undefined }),
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.option(
        fc.array(
          fc.array(fc.oneof(fc.string(), tricky, fc.nat(5)), {
            maxLength: 3,
          }),
          { maxLength: 2 },
        ),
        { nil: undefined },
      ),
      fc.option(fc.integer({ min: 1, max: 2 ** 52 }), { nil: undefined }),
      (value, tags, expiresAt, seq, dates, feed) => {
        const bytes = encodeRecord({
          value,
          tags,
          expiresAt,
          createdAt: 1,
          updatedAt: 2,
          version: 3,
          seq,
          feed,
          dates,
        });
        const meta = recordMeta(bytes);
        assert.deepEqual(meta, { seq, expiresAt, feed: feed ?? 0 });
        // (Date paths here need not resolve: only the envelope is compared.)
        const env = JSON.parse(new TextDecoder().decode(bytes));
        assert.equal(env.s, seq);
        assert.equal(env.x, expiresAt);
        assert.equal(env.f, feed);
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("recordMeta gives up on bytes that are not a record", () => {
  const enc = new TextEncoder();
  assert.equal(recordMeta(enc.encode("{not json")), undefined);
  assert.equal(recordMeta(enc.encode('{"v":1}')), undefined);
  assert.equal(recordMeta(new Uint8Array([1, 2, 3])), undefined);
  assert.equal(recordMeta(enc.encode('{"v":1,"s":}')), undefined);
  assert.throws(() => decodeRecord(enc.encode("{not json"), "read"));
});

/** Every object and array inside a value (the value too). */
function containers(v: unknown, out: object[] = []): object[] {
  if (typeof v !== "object" || v === null) return out;
  out.push(v);
  if (v instanceof Date || v instanceof Uint8Array) return out;
  for (const x of Object.values(v)) containers(x, out);
  return out;
}

Deno.test("copyValue: an equal value sharing nothing, mutable even when the stored one is frozen (property)", () => {
  const key = fc.constantFrom("a", "b", "__proto__", "0", "10", "constructor");
  const value = fc.letrec((tie) => ({
    any: fc.oneof(
      { depthSize: "small" },
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
      fc.date({ noInvalidDate: true }),
      fc.uint8Array({ maxLength: 4 }),
      fc.array(tie("any"), { maxLength: 3 }),
      fc.dictionary(key, tie("any"), { maxKeys: 4 }),
    ),
  })).any;
  fc.assert(
    fc.property(value, fc.boolean(), (input, frozen) => {
      // What the engine stores: the checked copy of the input.
      const stored = checkValue(input, "test").value;
      if (frozen) shareValue(stored);
      const copy = copyValue(stored);
      assert.deepStrictEqual(copy, stored);
      const mine = containers(copy);
      const theirs = new Set(containers(stored));
      for (const c of mine) {
        assert(!theirs.has(c), "the copy shares an object with the store");
        if (!(c instanceof Uint8Array)) assert(!Object.isFrozen(c));
      }
      if (
        typeof copy === "object" && copy !== null && !Array.isArray(copy) &&
        !(copy instanceof Date) && !(copy instanceof Uint8Array)
      ) {
        assert.deepStrictEqual(
          Object.keys(copy),
          Object.keys(stored as object),
        );
        assert.equal(Object.getPrototypeOf(copy), Object.prototype);
      }
    }),
    { numRuns: 400 },
  );
});

Deno.test("copyValue: flat documents of repeated shapes, copied by their compiled copiers, equal the general copy (property)", () => {
  const keyset = fc.uniqueArray(
    fc.constantFrom("a", "b", "__proto__", "0", "10", "constructor", "é"),
    { minLength: 1, maxLength: 5 },
  );
  const scalar = fc.oneof(
    fc.string({ maxLength: 3 }),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  let compiled = 0;
  fc.assert(
    fc.property(
      fc.array(keyset, { minLength: 1, maxLength: 3 }),
      fc.array(fc.tuple(fc.nat(), fc.array(scalar, { minLength: 5 })), {
        minLength: 40,
        maxLength: 80,
      }),
      fc.boolean(),
      (shapes, picks, frozen) => {
        for (const [pick, values] of picks) {
          const keys = shapes[pick % shapes.length]!;
          const input: Record<string, unknown> = {};
          keys.forEach((k, i) => setOwnField(input, k, values[i]));
          const stored = checkValue(input, "test").value as Record<
            string,
            unknown
          >;
          if (frozen) shareValue(stored);
          if (shapeCopy(stored) !== null) compiled++;
          if (shapeCopy(stored, true) !== null) compiled++;
          // Short-lived and kept copies (two compiled copiers per shape).
          for (const copy of [copyValue(stored), copyKept(stored)]) {
            const c = copy as Record<string, unknown>;
            assert.deepStrictEqual(c, stored);
            assert.notEqual(c, stored);
            assert(!Object.isFrozen(c));
            assert.deepStrictEqual(Object.keys(c), Object.keys(stored));
            assert.equal(Object.getPrototypeOf(c), Object.prototype);
            for (const k of Object.keys(c)) {
              assert.deepStrictEqual(
                Object.getOwnPropertyDescriptor(c, k),
                {
                  value: stored[k],
                  writable: true,
                  enumerable: true,
                  configurable: true,
                },
              );
            }
          }
        }
      },
    ),
    { numRuns: 100 },
  );
  // The compiled copiers were used, not only the general copy.
  assert(compiled > 1000, `${compiled} copies by a compiled copier`);
  // A document with a nested object or a Date takes the general copy.
  const nested = { a: { b: 1 } };
  for (let i = 0; i < 40; i++) copyValue(nested);
  assert.equal(shapeCopy(nested), null);
  const copy = copyValue(nested) as typeof nested;
  assert.notEqual(copy.a, nested.a);
});

function setOwnField(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, {
    value: v,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

Deno.test("checkDocument copies as checkValue of { _id, ...rest } did: same members, same order, same dates, same errors (property)", () => {
  const member = fc.oneof(
    fc.integer(),
    fc.string(),
    fc.constant(undefined),
    fc.constant(null),
    fc.date({ noInvalidDate: true }),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
    fc.constant(() => 1), // refused
  );
  const name = fc.oneof(
    fc.string({ maxLength: 4 }),
    fc.constantFrom("_id", "__proto__", "0", "12", "constructor"),
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(name, member), { maxLength: 6 }),
      fc.string({ minLength: 1, maxLength: 5 }),
      fc.boolean(),
      (members, id, nullProto) => {
        const doc: Record<string, unknown> = nullProto
          ? Object.create(null)
          : {};
        for (const [k, v] of members) {
          Object.defineProperty(doc, k, {
            value: v,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        const outcome = (fn: () => unknown) => {
          try {
            return { ok: fn() };
          } catch (e) {
            return { error: `${(e as Error).name}: ${(e as Error).message}` };
          }
        };
        const before = outcome(() => {
          const { _id: _, ...rest } = doc;
          return checkValue({ _id: id, ...rest }, "Cannot insert");
        });
        const now = outcome(() => checkDocument(doc, id, "Cannot insert"));
        assert.deepEqual(now, before);
        if ("ok" in now && "ok" in before) {
          const keys = (c: unknown) =>
            Object.keys((c as { value: object }).value);
          assert.deepEqual(keys(now.ok), keys(before.ok));
        }
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("shape copies: shapes whose keys joined would read alike (['_id', 'a\\0'] and ['_id', 'a', '']) each keep their own copier", async () => {
  // Found by torture's api fuzz 5 (seed 2461120508): the shape cache keyed
  // shapes by their keys joined with NUL, so a document { "": …, _id, a }
  // took the copier of { _id, "a\0" } and every read of it returned
  // { _id, "a\0": undefined }.
  const learn = (doc: Record<string, unknown>) => {
    for (let i = 0; i < 40; i++) shapeCopy(doc);
  };
  const first = { _id: "x", "a\u0000": 1 };
  const second = { _id: "y", a: 2, "": 3 };
  for (let round = 0; round < 2; round++) {
    learn(first);
    assert.deepEqual(shapeCopy(first) ?? "not compiled", first);
    learn(second);
    const copy = shapeCopy(second);
    assert.deepEqual(copy ?? "not compiled", second);
    assert.deepEqual(shapeCopy(second, true) ?? "not compiled", second);
  }
  // Through the API: the same documents read back whole.
  await using db = await open();
  const c = db.collection("c");
  for (let i = 0; i < 40; i++) await c.insert({ _id: `p${i}`, "a\u0000": i });
  for (let i = 0; i < 40; i++) await c.insert({ _id: `q${i}`, a: i, "": i });
  for (let i = 0; i < 40; i++) {
    assert.deepEqual(await c.get(`q${i}`), { _id: `q${i}`, a: i, "": i });
    assert.deepEqual(await c.get(`p${i}`), { _id: `p${i}`, "a\u0000": i });
  }
});
