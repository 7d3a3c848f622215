// Token checks: constant-time comparison of SHA-256 digests, every device
// compared on every request.

import assert from "node:assert/strict";
import {
  bearer,
  sha256,
  timingSafeEqual,
  tokenDigest,
  TokenTable,
} from "../src/gateway/auth.ts";

Deno.test("auth: timingSafeEqual compares every byte and the lengths", () => {
  const a = new Uint8Array([1, 2, 3, 4]);
  assert.equal(timingSafeEqual(a, new Uint8Array([1, 2, 3, 4])), true);
  assert.equal(timingSafeEqual(a, new Uint8Array([0, 2, 3, 4])), false);
  assert.equal(timingSafeEqual(a, new Uint8Array([1, 2, 3, 5])), false);
  assert.equal(timingSafeEqual(a, new Uint8Array([1, 2, 3])), false);
  assert.equal(timingSafeEqual(a, new Uint8Array([1, 2, 3, 4, 0])), false);
  assert.equal(timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), true);
});

Deno.test("auth: identify hashes the token and compares it with every device's digest, match or not", async () => {
  const calls: [number, number][] = [];
  const spy = (a: Uint8Array, b: Uint8Array) => {
    calls.push([a.length, b.length]);
    return timingSafeEqual(a, b);
  };
  const table = await TokenTable.create(
    { first: "t1", second: "t2", third: "t3" },
    spy,
  );
  for (
    const [token, expected] of [["t1", "first"], ["t3", "third"], [
      "nope",
      undefined,
    ], ["", undefined]] as const
  ) {
    calls.length = 0;
    assert.equal(await table.identify(token), expected);
    // Always all three, always 32 bytes against 32 bytes: the time does not
    // depend on which device matched or on the presented token's length.
    assert.deepEqual(calls, [[32, 32], [32, 32], [32, 32]]);
  }
  calls.length = 0;
  assert.equal(await table.identify(undefined), undefined);
  assert.equal(calls.length, 3);
});

Deno.test("auth: digests are taken from clear tokens, 'sha256:<hex>' and { sha256 }", async () => {
  const digest = await sha256("secret");
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
  assert.deepEqual(await tokenDigest("secret", "x"), digest);
  assert.deepEqual(await tokenDigest(`sha256:${hex}`, "x"), digest);
  assert.deepEqual(await tokenDigest({ sha256: hex }, "x"), digest);
  assert.notDeepEqual(await tokenDigest(hex, "x"), digest); // a bare hex string is a clear token
  await assert.rejects(tokenDigest("sha256:12", "device 'x'"), /device 'x'/);
});

Deno.test("auth: bearer reads the Authorization header's token", () => {
  const req = (value?: string) =>
    new Request(
      "http://x/",
      value === undefined ? {} : { headers: { authorization: value } },
    );
  assert.equal(bearer(req("Bearer abc")), "abc");
  assert.equal(bearer(req("bearer  abc ")), "abc");
  assert.equal(bearer(req("Basic abc")), undefined);
  assert.equal(bearer(req("Bearer a b")), undefined);
  assert.equal(bearer(req()), undefined);
});
