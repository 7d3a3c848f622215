import assert from "node:assert/strict";
import fc from "fast-check";
import { sha256Sync } from "../src/crypto/sha256.ts";

const hex = (b: Uint8Array): string =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

Deno.test("sha256Sync: the FIPS 180-4 examples", () => {
  assert.equal(
    hex(sha256Sync(text(""))),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    hex(sha256Sync(text("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  // 448 bits: the padding needs a second block.
  assert.equal(
    hex(
      sha256Sync(
        text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      ),
    ),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(
    hex(sha256Sync(new Uint8Array(1_000_000).fill(0x61))),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
});

Deno.test("sha256Sync equals WebCrypto's SHA-256 on any bytes, across every padding boundary (property)", async () => {
  // Every length from 0 to 200 (one, two and four blocks; 55/56/63/64).
  for (let n = 0; n <= 200; n++) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
    const want = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    assert.deepEqual(sha256Sync(bytes), want, `length ${n}`);
  }
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (bytes) => {
      const want = new Uint8Array(
        await crypto.subtle.digest("SHA-256", bytes),
      );
      assert.deepEqual(sha256Sync(bytes), want);
    }),
    { numRuns: 300 },
  );
});
