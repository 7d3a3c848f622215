/**
 * `@tether/db`: an embedded document and key-value database for Deno, with
 * TTL, tags and Mongo-style queries, on pluggable async storage.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 *
 * await using db = await open(); // in memory; see the README for file and Deno KV
 * await db.put("user1", { name: "John", age: 30 }, { ttl: 3_600_000, tags: ["user", "active"] });
 * const key = await db.put({ temp: 21.5 }, { ttl: 60_000, tags: ["sensor"] });
 *
 * assert((await db.get("user1") as { name: string }).name === "John");
 * assert((await db.query({ age: { $gt: 25 }, tags: "active" })).length === 1);
 * assert(await db.delete(key));
 * ```
 *
 * @module
 */

export {
  Collection,
  type IndexDeclaration,
  type QueryFilter,
} from "./src/collection.ts";
export { CollectionBase } from "./src/collection/base.ts";
export { Cursor, type Explanation, type Page } from "./src/query/cursor.ts";
export {
  type CollectionOptions,
  Database,
  DEFAULT_COLLECTION,
  open,
} from "./src/database.ts";
export {
  ClosedError,
  ConflictError,
  type DuplicateKeyDetails,
  DuplicateKeyError,
  FeedGapError,
  IntegrityError,
  LockedError,
  QuotaError,
  TetherError,
  TooLargeError,
  WrongKeyError,
} from "./src/errors.ts";
export type { Filter } from "./src/query/compile.ts";
export {
  type AggregateOptions,
  AggregationCursor,
  type Pipeline,
  type PipelineStage,
} from "./src/query/aggregate.ts";
export type {
  Change,
  ChangesOptions,
  Clock,
  DatabaseChangesOptions,
  DatabaseStats,
  Entry,
  FeedChange,
  FindOptions,
  IndexOptions,
  OpenOptions,
  PutBatchOptions,
  PutOptions,
  ReadOptions,
  RekeyOptions,
  UpdateOptions,
  WatchOptions,
} from "./src/types.ts";
export type { StoredIndex as IndexDescription } from "./src/engine/indexes.ts";
export type { IndexSpec } from "./src/engine/index_keys.ts";
export type { Projection } from "./src/query/projection.ts";
export type { SortSpec } from "./src/query/sort.ts";
export type { Update } from "./src/query/update.ts";
export type {
  DeleteResult,
  FindOneAndUpdateOptions,
  ReplaceOneOptions,
  UpdateOneOptions,
  UpdateResult,
} from "./src/collection/mongo_writes.ts";
export type { Storage } from "./src/storage/contract.ts";
export type { ProgressCallback } from "./src/progress.ts";
export type { Logger, LogLevel } from "./src/logger.ts";
export type { KvKey, KvKeyPart, KvLike } from "./src/storage/kv.ts";
export type {
  CompressionOptions,
  EncryptionOptions,
} from "./src/crypto/codec_storage.ts";
export type {
  CompactOptions,
  VerifyOptions,
  VerifyReport,
} from "./src/engine/engine.ts";
export type {
  BackupOptions,
  BackupResult,
  BackupSource,
  BackupTarget,
  RestoreOptions,
} from "./src/backup/backup.ts";
export type {
  ExportOptions,
  ExportTarget,
  ImportOptions,
  ImportSource,
  TransferResult,
} from "./src/backup/ndjson.ts";
export type {
  Durability,
  FileStorageOptions,
  FileStorageStats,
} from "./src/storage/file.ts";
export type { Damage } from "./src/storage/file_scan.ts";
export * from "./src/backup/repair.ts";
export * from "./src/import/unosql.ts";
