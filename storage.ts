/**
 * The storage-adapter contract and the in-memory storage, for writing and
 * testing storage adapters. Applications only need `open()` from the main
 * module.
 *
 * ```ts
 * import { MemoryStorage } from "@tether/db/storage";
 * import { open } from "@tether/db";
 *
 * await using db = await open({ storage: new MemoryStorage() });
 * await db.put("k", { a: 1 });
 * ```
 *
 * @module
 */

export { MemoryStorage } from "./src/storage/memory.ts";
export {
  type Durability,
  FileStorage,
  type FileStorageOptions,
  type FileStorageStats,
} from "./src/storage/file.ts";
export {
  type CodecOptions,
  CodecStorage,
  type CompressionOptions,
  type EncryptionOptions,
  type SecretWrap,
} from "./src/crypto/codec_storage.ts";
export {
  type KvAtomicLike,
  type KvEntryLike,
  type KvKey,
  type KvKeyPart,
  type KvLike,
  KvStorage,
  type KvStorageOptions,
} from "./src/storage/kv.ts";
export type {
  ObjectCommit,
  ObjectSet,
  ObjectTier,
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCheck,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
  StorageLimits,
  StorageSet,
  WatchedEntries,
} from "./src/storage/contract.ts";
export type { Damage } from "./src/storage/file_scan.ts";
export { compareBytes, prefixEnd } from "./src/bytes.ts";
export { decodeKey, encodeKey, type KeyPart } from "./src/key_codec.ts";
