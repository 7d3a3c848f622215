import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeRecord, encodeRecord, recordMeta } from "../src/value_codec.ts";

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
