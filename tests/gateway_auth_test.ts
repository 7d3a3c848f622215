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

Deno.test("auth: identify without a spy (digests compared as words) finds each device's token, and a digest that differs in any one byte is no match", async () => {
  const hex = (b: Uint8Array) =>
    Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const digest = await sha256("the-token");
  // 32 devices whose digests differ from the token's in one byte each (at
  // every position, so in every word and every byte of a word), then the
  // one that matches, then 40 others with tokens of their own.
  const tokens: Record<string, string | { sha256: string }> = {};
  for (let k = 0; k < 32; k++) {
    const near = digest.slice();
    near[k] = near[k]! ^ (1 << (k % 8));
    tokens[`near-${k}`] = { sha256: hex(near) };
  }
  tokens.owner = `sha256:${hex(digest)}`;
  for (let i = 0; i < 40; i++) tokens[`d${i}`] = `token-${i}`;
  const table = await TokenTable.create(tokens);
  assert.equal(table.size, 73);
  assert.equal(table.identify("the-token"), "owner");
  for (let i = 0; i < 40; i++) {
    assert.equal(table.identify(`token-${i}`), `d${i}`);
  }
  assert.equal(table.identify("token-40"), undefined);
  assert.equal(table.identify(""), undefined);
  assert.equal(table.identify(undefined), undefined);
  // Without the matching device, the token matches none of the near ones.
  delete tokens.owner;
  const near = await TokenTable.create(tokens);
  assert.equal(near.identify("the-token"), undefined);
  assert.equal(near.identify("token-7"), "d7");
  // Two names with one token: the first is the one identified.
  const twice = await TokenTable.create({ a: "same", b: "same", c: "other" });
  assert.equal(twice.identify("same"), "a");
  assert.equal(twice.identify("other"), "c");
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
