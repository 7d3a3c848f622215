import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c } from "../src/storage/crc32c.ts";

/** The bitwise CRC-32C (one bit at a time): the reference. */
function bitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c: the published check values (RFC 3720 B.4 and the '123456789' check)", () => {
  const enc = new TextEncoder();
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(
    crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)),
    0x46dd794e,
  );
  assert.equal(
    crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)),
    0x113fdb5c,
  );
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32c: slicing-by-8 equals the bitwise reference on random input, at any offsets, and continues across splits", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(),
      fc.nat(),
      (bytes, a, b) => {
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (b % (bytes.length - start + 1));
        assert.equal(
          crc32c(bytes, start, end),
          bitwise(bytes.subarray(start, end)),
        );
        const mid = start + ((a + b) % (end - start + 1));
        assert.equal(
          crc32c(bytes, mid, end, crc32c(bytes, start, mid)),
          crc32c(bytes, start, end),
        );
      },
    ),
    { numRuns: 500 },
  );
});
