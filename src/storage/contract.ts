/**
 * The storage-adapter contract.
 *
 * A storage is dumb: it maps ordered byte keys to byte values and applies
 * atomic commits. It never parses a document. A storage that only this
 * process writes may also offer an object tier ({@linkcode ObjectTier}):
 * records then travel as objects and bytes exist only where they are
 * persisted or read. The engine (documents, TTL,
 * queries, indexes) runs unchanged on every storage that honours this
 * contract, and `tests/conformance.ts` checks that an adapter does.
 *
 * @module
 */

/**
 * One stored entry.
 *
 * Byte arrays handed out by a storage must be treated as read-only by the
 * caller: an adapter may return its internal buffers.
 */
export interface StorageEntry {
  /** The key, compared byte by byte (unsigned, shorter prefix first). */
  readonly key: Uint8Array;
  /** The value bytes. */
  readonly value: Uint8Array;
  /**
   * An opaque string that changes on every write of this key and sorts in
   * commit order (like Deno KV's versionstamp).
   */
  readonly versionstamp: string;
  /**
   * The `memo` given with the set that wrote this value, if the storage keeps
   * memos (see {@linkcode StorageSet.memo}).
   */
  readonly memo?: unknown;
}

/**
 * Which keys a scan visits. Keys are visited in byte order (reversed with
 * `reverse`).
 *
 * - `prefix` alone: every key that starts with it (the prefix itself included
 *   if it is stored).
 * - `start` (inclusive) and `end` (exclusive) bound the range; with `prefix`
 *   they narrow it further.
 */
export interface ScanOptions {
  /** Only keys starting with these bytes. */
  readonly prefix?: Uint8Array;
  /** Lowest key visited (inclusive). */
  readonly start?: Uint8Array;
  /** Key at which the scan stops (exclusive). */
  readonly end?: Uint8Array;
  /** Visit keys from highest to lowest. */
  readonly reverse?: boolean;
  /** Stop after this many entries. */
  readonly limit?: number;
}

/**
 * A version check inside a commit: the commit applies only if the key's
 * current versionstamp equals `versionstamp` (`null` means "must not exist").
 */
export interface StorageCheck {
  /** The key to check. */
  readonly key: Uint8Array;
  /** The expected versionstamp, or `null` for "absent". */
  readonly versionstamp: string | null;
}

/** A key to write inside a commit. */
export interface StorageSet {
  /** The key. */
  readonly key: Uint8Array;
  /** The new value. */
  readonly value: Uint8Array;
  /**
   * Epoch milliseconds after which the storage may delete the entry on its
   * own. Only a hint for storages with native expiry; the engine filters
   * expired items itself and never relies on it.
   */
  readonly expireAt?: number;
  /**
   * An in-memory companion of `value` (the engine passes the decoded
   * record). A storage that keeps values in memory may keep it and return it
   * as `entry.memo` for as long as the value is unchanged, sparing the engine
   * a decode; any storage may ignore it. It is never persisted (but see
   * `structured`).
   */
  readonly memo?: unknown;
  /**
   * Set by the engine on a document's set only when it talks to a storage
   * whose {@linkcode Storage.structured} is `true`: `memo` is then the
   * document's record, which the storage may keep in a structured form of
   * its own instead of `value` (Deno KV's V8 serialisation), as long as it
   * hands back entries whose `memo` is an equal record and whose `value`
   * is the same bytes.
   */
  readonly structured?: boolean;
  /**
   * Set by the engine on a document's set whose `value` is made from `memo`
   * only when first read (a getter): `memo` is then the document's record
   * and `value` is exactly its encoding. A storage that can write the record
   * from `memo` (the file storage's binary format) does so without reading
   * `value`, and the record is never encoded as a whole. Such a set keeps
   * `value` and `lazy` as getters: a wrapper that passes sets on must read
   * `value` rather than spread the set, and must not carry `lazy` over when
   * it replaces `value` (the codec storage sets `lazy: false`).
   */
  readonly lazy?: boolean;
}

/**
 * An atomic commit: every check passes and then every set and delete is
 * applied, or nothing is. A key must not appear in both `sets` and `deletes`.
 */
export interface StorageCommit {
  /** Version checks that must all pass. */
  readonly checks?: readonly StorageCheck[];
  /** Keys to write. */
  readonly sets?: readonly StorageSet[];
  /** Keys to delete (deleting an absent key is not an error). */
  readonly deletes?: readonly Uint8Array[];
  /**
   * Only for storages with {@linkcode Storage.chains}: the commit follows
   * another one still in flight. The storage builds it at once (so its
   * caller's and the storage's work overlap the earlier commit's write),
   * sends it only after `commit` succeeded, with a check that `check` (if
   * given) still carries the versionstamp `commit` got; when `commit`
   * failed or threw, this one is not sent and gives `{ ok: false }`.
   */
  readonly after?: {
    readonly commit: Promise<StorageCommitResult>;
    readonly check?: Uint8Array;
  };
}

/**
 * The outcome of a commit: `ok: false` when a check failed (nothing was
 * applied); otherwise the versionstamp now carried by every written key.
 *
 * A storage that writes to disk in groups may return `durable`: the commit is
 * already applied (visible to reads and to later checks) and `durable`
 * resolves once it is durable. If it rejects, the storage has taken the
 * commit back, together with every later commit not yet durable (their
 * `durable` reject too), and the caller must treat them all as not done.
 */
export type StorageCommitResult =
  | {
    readonly ok: true;
    readonly versionstamp: string;
    readonly durable?: Promise<void>;
    /**
     * A storage that acknowledges before writing (the file storage's
     * batched durability) may give this instead of `durable`: it resolves
     * once the commit is written (and fsynced where the mode does), and
     * never rejects (such a storage keeps retrying). Nobody need wait for
     * it; the change feed shows the commit's changes only after it.
     */
    readonly written?: Promise<void>;
  }
  | { readonly ok: false };

/**
 * A document set of the object tier: the record travels as an object, and
 * `encode` makes its bytes only when the storage must have them (a reader
 * asks for `entry.value`: an export, a verification, a measurement).
 */
export interface ObjectSet {
  /** The key. */
  readonly key: Uint8Array;
  /** The record, kept as it is (never modified by either side). */
  readonly memo: unknown;
  /**
   * Makes the bytes of `memo` (the same bytes every time).
   *
   * @param memo The record.
   * @returns Its bytes.
   */
  readonly encode: (memo: unknown) => Uint8Array;
  /**
   * The storage's own note on the set (the memory storage keeps here the
   * version of the last commit that logged it, negated once folded, so
   * that a set written again before its log is folded is logged once). The
   * engine neither reads nor writes it. A set object stands for one key for its whole life, and is
   * not written again once its key was deleted (the engine writes a new
   * object for the key).
   */
  logged?: number | undefined;
}

/** A commit of the object tier: no checks (nobody else writes). */
export interface ObjectCommit {
  /** Keys to write, as bytes or as objects. */
  readonly sets?: readonly (StorageSet | ObjectSet)[];
  /** Keys to delete. */
  readonly deletes?: readonly Uint8Array[];
}

/**
 * The object tier of a storage that only this process writes and that keeps
 * records in RAM as objects (the memory storage; later a file storage with
 * values on disk). The engine then keeps, per collection, the decoded
 * records and ordered keys, and indexes holding references to them: a read
 * that hits RAM is answered synchronously (a miss, once a storage keeps
 * values on disk, is an async `get`), and writes skip the transaction
 * pipeline (no pre-read, no version checks).
 */
export interface ObjectTier {
  /**
   * Nothing is persisted: the engine writes no derived entries (secondary
   * index and insertion-order entries live only in the engine's RAM).
   */
  readonly volatile: boolean;
  /**
   * Applies a commit at once (synchronously), all or nothing. The engine
   * may reuse the commit object and its arrays once the call returns: keep
   * the sets and keys, not the arrays.
   *
   * @param commit Sets (bytes or objects) and deletes.
   * @returns The commit's versionstamp.
   * @throws {ClosedError} After `close()`.
   */
  commit(commit: ObjectCommit): StorageCommitResult;
}

/** Optional abilities a storage can advertise to the engine. */
export interface StorageCapabilities {
  /** The storage removes entries past `expireAt` by itself. */
  readonly nativeExpiry: boolean;
  /**
   * Other processes may write to the same storage at the same time, so the
   * engine must not assume its in-memory view is complete.
   */
  readonly shared: boolean;
  /**
   * Writes are refused (a read-only open): the engine starts no sweeper and
   * leaves expired items in place (reads still hide them).
   */
  readonly readOnly?: boolean;
  /**
   * Only keys are kept in RAM; values are read from disk when asked (the
   * file storage): the engine's memory estimate (`memoryLimit`) then counts
   * each document's key only, and opening reads no value to count it.
   */
  readonly valuesOnDisk?: boolean;
}

/**
 * What one atomic commit of a storage can hold. A storage without limits
 * (memory, file) leaves {@linkcode Storage.limits} undefined. The engine
 * refuses a caller's write that would pass them (a `TooLargeError`, nothing
 * written) and splits its own bulk work (index builds, `clear`, sweeps)
 * into several commits that fit. Limits on sizes (key, value, bytes per
 * commit) the storage enforces itself, with a `TooLargeError`; the engine
 * halves its groups when it meets one.
 */
export interface StorageLimits {
  /** Most sets plus deletes in one commit. */
  readonly maxMutations: number;
  /** Most version checks in one commit. */
  readonly maxChecks: number;
}

/**
 * A change observed by {@linkcode Storage.watch}: the key's current entry, or
 * `null` once it is gone.
 */
export type WatchedEntries = readonly (StorageEntry | null)[];

/**
 * An async, ordered byte-key storage. Every method rejects with a
 * `ClosedError` after `close()`; `close()` itself is idempotent.
 */
export interface Storage {
  /** What the storage can do beyond the contract. */
  readonly capabilities: StorageCapabilities;
  /** Per-commit limits, when the storage has any. */
  readonly limits?: StorageLimits | undefined;
  /**
   * Optional: the object tier (see {@linkcode ObjectTier}). Wrappers that
   * need bytes (encryption, compression) do not pass it on.
   */
  readonly objects?: ObjectTier | undefined;
  /**
   * Optional: the storage keeps document records in a structured form of
   * its own (see {@linkcode StorageSet.structured}). Wrappers that need
   * bytes (encryption, compression) do not pass it on, so what they seal is
   * all that reaches the storage.
   */
  readonly structured?: boolean | undefined;
  /**
   * Optional: the storage takes commits that follow one in flight
   * ({@linkcode StorageCommit.after}). Wrappers do not pass it on.
   */
  readonly chains?: boolean | undefined;
  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The entry, or `null` when absent.
   */
  get(key: Uint8Array): Promise<StorageEntry | null>;
  /**
   * Reads several keys at once.
   *
   * @param keys The keys.
   * @returns One entry or `null` per key, in the same order.
   */
  getMany(keys: readonly Uint8Array[]): Promise<(StorageEntry | null)[]>;
  /**
   * Visits entries in key order, in pages (non-empty arrays) so that callers
   * pay for one `await` per page rather than per entry. A scan need not be a
   * snapshot: writes made while it runs may or may not be seen, but every
   * entry present for the whole scan is visited exactly once.
   *
   * @param options Which keys to visit.
   * @returns The pages of entries, lazily.
   */
  scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]>;
  /**
   * Applies an atomic commit.
   *
   * @param commit Checks, sets and deletes.
   * @returns Whether the checks passed, and the new versionstamp.
   */
  commit(commit: StorageCommit): Promise<StorageCommitResult>;
  /**
   * Optional: rewrites the storage without dead data (the file storage
   * compacts its log). The engine calls it from `db.compact()` and after
   * each full cleanup pass.
   *
   * @param onProgress Optional: told how far the rewrite is, in a unit of
   *   the storage's choosing (the file storage: bytes of live records
   *   copied), as `(done, total)` with the total known from the first call,
   *   `done` never decreasing nor passing it. A storage may call it only
   *   now and then, or not at all (when there is nothing to rewrite); a
   *   caller joining a rewrite already under way is told of the rest of it.
   *   An exception it throws fails the rewrite (which then changes nothing).
   * @returns Whether anything was rewritten.
   */
  compact?(
    onProgress?: (done: number, total: number) => void,
  ): Promise<boolean>;
  /**
   * Optional: loads changes that another process made (a read-only file
   * storage reads the log's new commits). The engine calls it from
   * `db.refresh()` and rebuilds its bookkeeping when it returns `true`.
   *
   * @returns Whether anything changed.
   */
  refresh?(): Promise<boolean>;
  /**
   * Optional: reads what the storage persisted and checks every checksum
   * it keeps (the file storage: every frame of its log, which an open from
   * a key directory hint does not read). The engine calls it from
   * `db.verify()`.
   *
   * @returns What is wrong, or `undefined` when everything checks out.
   */
  checkLog?(): Promise<string | undefined>;
  /**
   * Optional: follows keys that other processes may write. The iterable
   * yields the current entries of `keys` at once, then again whenever one of
   * them changes (intermediate versions may be skipped), until `signal`
   * aborts or the storage closes.
   *
   * @param keys The keys to follow (a storage may cap how many).
   * @param signal Ends the iteration.
   * @returns The entries of `keys`, in order, per change.
   */
  watch?(
    keys: readonly Uint8Array[],
    signal?: AbortSignal,
  ): AsyncIterable<WatchedEntries>;
  /**
   * Optional, for encrypted storages: keyed digests (at least 16 bytes each)
   * of byte strings, one per input, always the same for the same input. The
   * engine then stores digests of index values in index keys instead of the
   * values (blind indexes).
   */
  readonly blind?:
    | ((data: readonly Uint8Array[]) => Promise<Uint8Array[]>)
    | undefined;
  /**
   * Optional: counters for `db.stats().storageStats`.
   *
   * @returns Plain data (numbers, strings, booleans).
   */
  stats?(): Readonly<Record<string, unknown>>;
  /** Releases the storage. Idempotent. */
  close(): Promise<void>;
}
