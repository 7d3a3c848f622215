/**
 * The storage-adapter contract and the in-memory storage, for writing and
 * testing storage adapters. Applications only need `open()` from the main
 * module.
 *
 * ```ts
 * import { MemoryStorage } from "./storage.ts";
 * import { open } from "./mod.ts";
 *
 * await using db = await open({ storage: new MemoryStorage() });
 * await db.put("k", { a: 1 });
 * ```
 *
 * @module
 */

export { MemoryStorage } from "./src/memory_storage.ts";
export {
  type Durability,
  FileStorage,
  type FileStorageOptions,
  type FileStorageStats,
} from "./src/file_storage.ts";
export {
  type CodecOptions,
  CodecStorage,
  type CompressionOptions,
  type EncryptionOptions,
  type SecretWrap,
} from "./src/codec_storage.ts";
export {
  type KvAtomicLike,
  type KvEntryLike,
  type KvKey,
  type KvKeyPart,
  type KvLike,
  KvStorage,
  type KvStorageOptions,
} from "./src/kv_storage.ts";
export type {
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
} from "./src/storage.ts";
export type { Damage } from "./src/file_scan.ts";
export { compareBytes, prefixEnd } from "./src/bytes.ts";
export { decodeKey, encodeKey, type KeyPart } from "./src/key_codec.ts";
