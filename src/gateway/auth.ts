/**
 * Bearer tokens compared in constant time: each configured token is kept as
 * its SHA-256 digest (or given as one), and a presented token is hashed and
 * compared with every digest, word by word, without stopping early.
 *
 * @module
 */

import { sha256Sync } from "../crypto/sha256.ts";

/**
 * A configured token: the token in clear, `"sha256:<64 hex>"`, or
 * `{ sha256: "<64 hex>" }`. The digest forms let a script hold only the
 * SHA-256 of a device's token (`printf %s "$TOKEN" | sha256sum`). A bare
 * 64-hex string is a clear token (many tokens are made with
 * `openssl rand -hex 32`): the prefix or the object says it is a digest.
 */
export type TokenSpec = string | { readonly sha256: string };

const HEX64 = /^[0-9a-fA-F]{64}$/;
const ENCODER = new TextEncoder();

/**
 * Whether two byte arrays are equal, in time that depends only on their
 * lengths: every byte is visited, differences are OR-ed together.
 *
 * @param a The first bytes.
 * @param b The second bytes.
 * @returns `true` when both have the same length and bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timingSafeEqual } from "./auth.ts";
 * assert(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
 * assert(!timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
 * ```
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * The SHA-256 digest of a string's UTF-8 bytes.
 *
 * @param text The text.
 * @returns 32 bytes.
 */
export async function sha256(text: string): Promise<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

/**
 * Checks a configured token's form, at once (before any hashing).
 *
 * @param spec The token, `"sha256:<hex>"` or `{ sha256 }`.
 * @param what Names the token in error messages (`"device 'x'"`).
 * @throws {TypeError} When the token is empty, or a digest is not 64 hex
 *   characters.
 */
export function checkTokenSpec(spec: unknown, what: string): void {
  if (typeof spec === "object" && spec !== null) {
    const hex = (spec as { sha256?: unknown }).sha256;
    if (typeof hex !== "string" || !HEX64.test(hex)) {
      throw new TypeError(
        `Cannot use the token of ${what}: sha256 must be 64 hex characters`,
      );
    }
    return;
  }
  if (typeof spec !== "string" || spec.length === 0) {
    throw new TypeError(
      `Cannot use the token of ${what}: it must be a non-empty string, "sha256:<hex>" or { sha256 }`,
    );
  }
  if (spec.startsWith("sha256:") && !HEX64.test(spec.slice(7))) {
    throw new TypeError(
      `Cannot use the token of ${what}: after "sha256:" come 64 hex characters`,
    );
  }
}

/**
 * Turns a configured token into its digest.
 *
 * @param spec The token, `"sha256:<hex>"` or `{ sha256 }`.
 * @param what Names the token in error messages (`"device 'x'"`).
 * @returns The 32-byte SHA-256 digest.
 * @throws {TypeError} When the token is empty, or a digest is not 64 hex
 *   characters.
 */
export async function tokenDigest(
  spec: TokenSpec,
  what: string,
): Promise<Uint8Array> {
  checkTokenSpec(spec, what);
  if (typeof spec === "object") return fromHex(spec.sha256);
  if (spec.startsWith("sha256:")) return fromHex(spec.slice(7));
  return await sha256(spec);
}

/**
 * The bearer token of a request, or `undefined`.
 *
 * @param request The request.
 * @returns The token after `Bearer `.
 */
export function bearer(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  if (header === null) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}

/**
 * Who owns which token: each name's token digest. `identify` hashes the
 * presented token once and compares it with every digest (no early exit), so
 * the time taken does not tell which device, or how much of a token, matched.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TokenTable } from "./auth.ts";
 * const table = await TokenTable.create({ a: "secret-a", b: "secret-b" });
 * assert.equal(await table.identify("secret-b"), "b");
 * assert.equal(await table.identify("nope"), undefined);
 * ```
 */
export class TokenTable {
  readonly #names: readonly string[];
  readonly #digests: readonly Uint8Array[];
  /** Every digest's 32 bytes as 8 words, one digest after another. */
  readonly #words: Int32Array;
  /** A comparison a test passes instead of the words' (a spy). */
  readonly #equal: ((a: Uint8Array, b: Uint8Array) => boolean) | undefined;

  private constructor(
    names: string[],
    digests: Uint8Array[],
    equal: ((a: Uint8Array, b: Uint8Array) => boolean) | undefined,
  ) {
    this.#names = names;
    this.#digests = digests;
    this.#equal = equal;
    this.#words = new Int32Array(digests.length * 8);
    const bytes = new Uint8Array(this.#words.buffer);
    for (let i = 0; i < digests.length; i++) bytes.set(digests[i]!, i * 32);
  }

  /**
   * Builds a table from names to tokens.
   *
   * @param tokens Name -> token (see {@linkcode TokenSpec}).
   * @param equal A comparison to use instead of the built-in one (tests
   *   pass a spy); by default the digests are compared as 32-bit words, all
   *   eight of every digest, with no early exit.
   * @returns The table.
   * @throws {TypeError} When a token is malformed.
   */
  static async create(
    tokens: Readonly<Record<string, TokenSpec>>,
    equal?: (a: Uint8Array, b: Uint8Array) => boolean,
  ): Promise<TokenTable> {
    const names: string[] = [];
    const digests: Uint8Array[] = [];
    for (const [name, spec] of Object.entries(tokens)) {
      names.push(name);
      digests.push(await tokenDigest(spec, `'${name}'`));
    }
    return new TokenTable(names, digests, equal);
  }

  /** How many names the table holds. */
  get size(): number {
    return this.#names.length;
  }

  /**
   * The name whose token this is.
   *
   * @param token The presented token (`undefined` when none was sent).
   * @returns The name, or `undefined`.
   */
  identify(token: string | undefined): string | undefined {
    // Hashed here, synchronously: WebCrypto's digest costs 15-35 µs a call
    // (a trip to the thread pool), more than the rest of a small ingest.
    const digest = sha256Sync(ENCODER.encode(token ?? ""));
    let found = -1;
    if (this.#equal !== undefined) {
      for (let i = 0; i < this.#digests.length; i++) {
        // Every digest is compared, match or not.
        const same = this.#equal(digest, this.#digests[i]!);
        found = same && found < 0 ? i : found;
      }
    } else {
      // Every word of every digest, match or not: a table of 1,000 devices
      // costs ~8,000 word operations (byte by byte through a function per
      // device, it was ~30 µs a request).
      const d = new Int32Array(digest.buffer, digest.byteOffset, 8);
      const d0 = d[0]!, d1 = d[1]!, d2 = d[2]!, d3 = d[3]!;
      const d4 = d[4]!, d5 = d[5]!, d6 = d[6]!, d7 = d[7]!;
      const w = this.#words;
      for (let i = 0, at = 0; at < w.length; i++, at += 8) {
        const diff = (w[at]! ^ d0) | (w[at + 1]! ^ d1) | (w[at + 2]! ^ d2) |
          (w[at + 3]! ^ d3) | (w[at + 4]! ^ d4) | (w[at + 5]! ^ d5) |
          (w[at + 6]! ^ d6) | (w[at + 7]! ^ d7);
        found = diff === 0 && found < 0 ? i : found;
      }
    }
    return token === undefined || found < 0 ? undefined : this.#names[found];
  }
}
