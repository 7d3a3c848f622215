/**
 * The data keys of an encrypted database: making, wrapping, unlocking and
 * importing them, and naming the records they seal in error messages
 * (for src/crypto/codec_storage.ts).
 *
 * @module
 */

import { importKeys, type RecordKeys } from "./codec.ts";
import {
  deriveKek,
  type EncryptionOptions,
  openUnder,
  type SecretWrap,
  type WrapShape,
} from "./codec_wrap.ts";
import {
  BLIND_KEY,
  HEADER_MAC_KEY,
  type KeyMaterial,
  parseMaterial,
} from "./codec_header.ts";
import { base64ToBytes, bytesToBase64, compareBytes } from "../bytes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";

/** The header key: outside every engine key space. */
export const HEADER = encodeKey(["k", "header"]);

/** The data keys, and the wrap (and its key) they were opened with. */
export interface Unlocked {
  readonly material: KeyMaterial;
  readonly wrap: WrapShape;
  readonly kek: RecordKeys;
}

export function isHeader(key: Uint8Array): boolean {
  return key.length === HEADER.length && compareBytes(key, HEADER) === 0;
}

/** Names what a storage key holds, for error messages. */
export function describeKey(key: Uint8Array): string {
  try {
    const parts = decodeKey(key);
    const [space, collection] = parts;
    if (space === "d") return `'${String(parts[2])}' in '${collection}'`;
    if (space === "i") {
      return `an entry of index '${String(parts[2])}' of '${collection}'`;
    }
    if (space === "o") return `an insertion-order entry of '${collection}'`;
    if (space === "m") return `the metadata of '${collection}'`;
  } catch {
    // fall through
  }
  return "a record";
}

/** The derivation of a wrap, without its sealed bytes. */
export function shapeOf(wrap: WrapShape): WrapShape {
  return {
    kdf: wrap.kdf,
    ...(wrap.v === undefined ? {} : { v: wrap.v }),
    salt: wrap.salt,
    ...(wrap.iterations === undefined ? {} : { iterations: wrap.iterations }),
  };
}

export function encodeMaterial(material: KeyMaterial): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(material));
}

/**
 * Opens the first wrap the secret opens; `undefined` when none does. Every
 * wrap's fields were checked with the header.
 */
export async function unlock(
  secret: EncryptionOptions,
  wraps: readonly SecretWrap[],
  action: string,
): Promise<Unlocked | undefined> {
  for (const wrap of wraps) {
    const kek = await deriveKek(secret, wrap);
    if (kek === undefined) continue;
    const plain = await openUnder(kek, wrap);
    if (plain === undefined) continue;
    return { material: parseMaterial(plain, action), wrap: shapeOf(wrap), kek };
  }
  return undefined;
}

export async function importAll(
  keys: KeyMaterial,
): Promise<Map<number, RecordKeys>> {
  const out = new Map<number, RecordKeys>();
  for (const [generation, material] of Object.entries(keys)) {
    if (generation === BLIND_KEY || generation === HEADER_MAC_KEY) continue;
    const bytes = base64ToBytes(material);
    const split = bytes.length - 32;
    out.set(
      Number(generation),
      await importKeys(
        Number(generation),
        bytes.subarray(0, split),
        bytes.subarray(split),
      ),
    );
  }
  return out;
}

export function newKeyMaterial(bits: 128 | 256): string {
  return bytesToBase64(crypto.getRandomValues(new Uint8Array(bits / 8 + 32)));
}

export function randomKey(): string {
  return bytesToBase64(crypto.getRandomValues(new Uint8Array(32)));
}
