/**
 * The codec header (FORMAT.md, "Record codec", "Header"): parsed and every
 * field checked before anything is derived from it, and, from version 2,
 * authenticated by an HMAC-SHA256 under a key stored with the data keys.
 *
 * @module
 */

import { base64ToBytes, bytesToBase64 } from "../bytes.ts";
import { base64Problem, describeValue } from "./codec.ts";
import { type SecretWrap, wrapProblem } from "./codec_wrap.ts";
import { IntegrityError } from "../errors.ts";

/** The header version written by this code. */
export const HEADER_VERSION = 2;
/** Blind digests bound to collection and field (header version 2). */
export const BLIND_BOUND = 2;
/** Blind digests of the value alone (every version-1 header). */
export const BLIND_LEGACY = 1;
/** Most wraps a header may hold (rekey writes two at most). */
const MAX_WRAPS = 2;

/** The name of the blind-index key in the sealed key set. */
export const BLIND_KEY = "b";
/** The name of the header-MAC key in the sealed key set (version 2). */
export const HEADER_MAC_KEY = "h";

/** The encryption part of a header. */
export interface HeaderEncryption {
  /** Size of new data keys' AES key. */
  readonly bits: 128 | 256;
  /** The generation new values are sealed with. */
  readonly generation: number;
  /** Blind-digest scheme (version 2; version 1 means {@linkcode BLIND_LEGACY}). */
  readonly blind?: 1 | 2;
  /** The data keys, sealed under each secret that opens the database. */
  readonly wraps: readonly SecretWrap[];
  /** Base64 HMAC-SHA256 of the header (version 2). */
  readonly mac?: string;
}

/** A codec header. */
export interface Header {
  /** 1 (no MAC, legacy derivation and blind digests) or 2. */
  readonly v: 1 | 2;
  /** Values from this many bytes are compressed; `null` when off. */
  readonly compression: { readonly minBytes: number } | null;
  /** `null` for a database that is only compressed. */
  readonly encryption: HeaderEncryption | null;
}

/** The unsealed key set: generation → base64(E ‖ M), `b`, `h`. */
export type KeyMaterial = Readonly<Record<string, string>>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyFields(
  value: Record<string, unknown>,
  allowed: readonly string[],
  where: string,
): string | undefined {
  for (const field of Object.keys(value)) {
    if (!allowed.includes(field)) {
      return `${where} has an unknown field ${describeValue(field)}`;
    }
  }
  return undefined;
}

function isGeneration(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 &&
    (value as number) <= 255;
}

/** What is wrong with a parsed header, naming the field; or `undefined`. */
function headerProblem(h: unknown): string | undefined {
  if (!isObject(h)) return `it is ${describeValue(h)}, not an object`;
  if (h.v !== 1 && h.v !== 2) {
    return `v must be 1 or 2, got ${describeValue(h.v)}`;
  }
  const top = onlyFields(h, ["v", "compression", "encryption"], "it");
  if (top !== undefined) return top;
  const c = h.compression;
  if (c !== null) {
    if (!isObject(c)) {
      return `compression must be null or an object, got ${describeValue(c)}`;
    }
    const extra = onlyFields(c, ["minBytes"], "compression");
    if (extra !== undefined) return extra;
    if (!(Number.isSafeInteger(c.minBytes) && (c.minBytes as number) >= 0)) {
      return `compression.minBytes must be a whole number from 0, got ${
        describeValue(c.minBytes)
      }`;
    }
  }
  const e = h.encryption;
  if (e === null) return undefined;
  if (!isObject(e)) {
    return `encryption must be null or an object, got ${describeValue(e)}`;
  }
  const extra = onlyFields(
    e,
    h.v === 1
      ? ["bits", "generation", "wraps"]
      : ["bits", "generation", "blind", "wraps", "mac"],
    "encryption",
  );
  if (extra !== undefined) return extra;
  if (e.bits !== 128 && e.bits !== 256) {
    return `encryption.bits must be 128 or 256, got ${describeValue(e.bits)}`;
  }
  if (!isGeneration(e.generation)) {
    return `encryption.generation must be a whole number from 0 to 255, got ${
      describeValue(e.generation)
    }`;
  }
  if (h.v === 2 && e.blind !== BLIND_LEGACY && e.blind !== BLIND_BOUND) {
    return `encryption.blind must be 1 or 2, got ${describeValue(e.blind)}`;
  }
  if (
    !Array.isArray(e.wraps) || e.wraps.length < 1 ||
    e.wraps.length > MAX_WRAPS
  ) {
    return `encryption.wraps must be an array of 1 or 2 wraps, got ${
      describeValue(e.wraps)
    }${Array.isArray(e.wraps) ? ` of ${e.wraps.length}` : ""}`;
  }
  for (let i = 0; i < e.wraps.length; i++) {
    const problem = wrapProblem(e.wraps[i], `encryption.wraps[${i}]`);
    if (problem !== undefined) return problem;
  }
  if (h.v === 2) {
    const mac = base64Problem(e.mac, 32, 32);
    if (mac !== undefined) return `encryption.mac must be ${mac}`;
  }
  return undefined;
}

/**
 * Parses a stored header and checks every field's type and range (nothing
 * is derived yet, so a hostile header costs nothing here).
 *
 * @param bytes The stored header.
 * @param action What was being done, for the message.
 * @returns The header.
 * @throws {IntegrityError} Naming the first field that is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHeader } from "./codec_header.ts";
 * const bytes = new TextEncoder().encode('{"v":2,"compression":null,"encryption":null}');
 * assert.equal(parseHeader(bytes, "Cannot open").v, 2);
 * ```
 */
export function parseHeader(bytes: Uint8Array, action: string): Header {
  let parsed: unknown;
  try {
    parsed = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    );
  } catch (cause) {
    throw new IntegrityError(
      `${action}: its codec header is not valid JSON`,
      { cause },
    );
  }
  const problem = headerProblem(parsed);
  if (problem !== undefined) {
    throw new IntegrityError(`${action}: its codec header's ${problem}`);
  }
  return parsed as Header;
}

/**
 * The bytes a header's MAC covers: the header's JSON without `mac`, members
 * in the order FORMAT.md lists them, no whitespace.
 *
 * @param header The header.
 * @returns UTF-8 bytes.
 */
export function headerMacInput(header: Header): Uint8Array<ArrayBuffer> {
  const e = header.encryption;
  const canonical = {
    v: header.v,
    compression: header.compression === null
      ? null
      : { minBytes: header.compression.minBytes },
    encryption: e === null ? null : {
      bits: e.bits,
      generation: e.generation,
      blind: e.blind ?? BLIND_LEGACY,
      wraps: e.wraps.map((w) => ({
        kdf: w.kdf,
        ...(w.v === undefined ? {} : { v: w.v }),
        salt: w.salt,
        ...(w.iterations === undefined ? {} : { iterations: w.iterations }),
        keys: w.keys,
      })),
    },
  };
  return new TextEncoder().encode(JSON.stringify(canonical));
}

function macKey(material: KeyMaterial, usage: KeyUsage): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    base64ToBytes(material[HEADER_MAC_KEY]!) as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/**
 * Makes a version-2 header: sets `mac` under the key set's `h`.
 *
 * @param header The header (its `mac`, if any, is replaced).
 * @param material The key set, with `h`.
 * @returns The signed header.
 */
export async function signHeader(
  header: Header,
  material: KeyMaterial,
): Promise<Header> {
  if (header.encryption === null) return header;
  const unsigned: Header = {
    ...header,
    v: 2,
    encryption: { ...header.encryption, mac: "" },
  };
  const tag = await crypto.subtle.sign(
    "HMAC",
    await macKey(material, "sign"),
    headerMacInput(unsigned),
  );
  return {
    ...unsigned,
    encryption: {
      ...unsigned.encryption!,
      mac: bytesToBase64(new Uint8Array(tag)),
    },
  };
}

/**
 * Checks a header against the key set unsealed from it: a key set with `h`
 * needs a version-2 header whose MAC verifies (constant time); one without
 * `h` (written before version 2) a version-1 header. And the header's
 * generation must have a key.
 *
 * @param header The parsed header.
 * @param material The key set.
 * @param action What was being done, for the message.
 * @throws {IntegrityError} When the header was changed without the secret.
 */
export async function verifyHeader(
  header: Header,
  material: KeyMaterial,
  action: string,
): Promise<void> {
  const e = header.encryption!;
  if (material[HEADER_MAC_KEY] === undefined) {
    if (header.v !== 1) {
      throw new IntegrityError(
        `${action}: its codec header claims version ${header.v} but its keys are of version 1 (tampered with)`,
      );
    }
  } else if (header.v !== 2) {
    throw new IntegrityError(
      `${action}: its codec header claims version ${header.v} but its keys are of version 2 (tampered with)`,
    );
  } else {
    const ok = await crypto.subtle.verify(
      "HMAC",
      await macKey(material, "verify"),
      base64ToBytes(e.mac!) as Uint8Array<ArrayBuffer>,
      headerMacInput(header),
    );
    if (!ok) {
      throw new IntegrityError(
        `${action}: its codec header fails its MAC (tampered with or damaged)`,
      );
    }
  }
  if (material[String(e.generation)] === undefined) {
    throw new IntegrityError(
      `${action}: its codec header's encryption.generation ${e.generation} has no key`,
    );
  }
}

/**
 * Parses and checks an unsealed key set.
 *
 * @param plain The unsealed bytes.
 * @param action What was being done, for the message.
 * @returns The key set.
 * @throws {IntegrityError} When it is malformed (it passed its MAC, so only
 *   a bug or a forged secret gets here).
 */
export function parseMaterial(plain: Uint8Array, action: string): KeyMaterial {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(plain));
  } catch (cause) {
    throw new IntegrityError(`${action}: its key set is not JSON`, { cause });
  }
  const fail = (what: string): never => {
    throw new IntegrityError(`${action}: its key set ${what}`);
  };
  if (!isObject(parsed)) return fail("is not an object");
  for (const [name, value] of Object.entries(parsed)) {
    let problem: string | undefined;
    if (name === BLIND_KEY || name === HEADER_MAC_KEY) {
      problem = base64Problem(value, 32, 32);
    } else if (/^(0|[1-9][0-9]{0,2})$/.test(name) && Number(name) <= 255) {
      problem = base64Problem(value, 48, 64);
      if (
        problem === undefined &&
        ![48, 64].includes(base64ToBytes(value as string).length)
      ) {
        problem = "48 or 64 bytes";
      }
    } else {
      problem = "a known name";
    }
    if (problem !== undefined) {
      fail(`entry ${describeValue(name)} must be ${problem}`);
    }
  }
  return parsed as KeyMaterial;
}
