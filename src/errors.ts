/**
 * The domain errors of `@tether/db`.
 *
 * Caller mistakes (a bad argument, a malformed filter) are reported with the
 * built-in `TypeError` and `RangeError`. The classes here are the conditions a
 * program is expected to catch and handle: every one extends
 * {@linkcode TetherError}, so `err instanceof TetherError` catches them all.
 *
 * @module
 */

/**
 * Base class of every domain error raised by `@tether/db`.
 *
 * @example Catch any database error
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClosedError, TetherError } from "@tether/db";
 * const err: Error = new ClosedError("Cannot get 'a': the database is closed");
 * assert(err instanceof TetherError);
 * ```
 */
export class TetherError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was attempted and the state that prevented it.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The database (or a cursor or storage) was used after `close()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClosedError } from "@tether/db";
 * const err = new ClosedError("Cannot put 'k': the database is closed");
 * assert(err.name === "ClosedError");
 * ```
 */
export class ClosedError extends TetherError {}

/**
 * A write lost a race: an expected version or versionstamp no longer matches,
 * or retries were exhausted. Nothing was written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConflictError } from "@tether/db";
 * const err = new ConflictError("Cannot update 'a': expected version 2, found 3");
 * assert(err.name === "ConflictError");
 * ```
 */
export class ConflictError extends TetherError {}

/** What a {@linkcode DuplicateKeyError} names, besides its message. */
export interface DuplicateKeyDetails {
  /** The item whose write was refused. */
  readonly key?: string;
  /** The item that holds the key or value. */
  readonly holder?: string;
  /** The unique index, when a value of one is taken. */
  readonly index?: string;
}

/**
 * A write would create a second item with the same key or unique-index value.
 * Nothing was written. `key` names the item whose write was refused (in a
 * batch, the one to take out), `holder` the item that has the value, and
 * `index` the unique index (all when known). An encrypted database's
 * error names keys and the index, never the value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DuplicateKeyError, open } from "@tether/db";
 * await using db = await open();
 * const users = db.collection("users");
 * await users.createIndex("email", { unique: true });
 * await users.put("ann", { email: "a@x" });
 * const err = await users.putBatch(new Map([["bob", { email: "b@x" }], ["cy", { email: "a@x" }]]))
 *   .catch((e) => e);
 * assert(err instanceof DuplicateKeyError);
 * assert.equal(err.key, "cy");
 * assert.equal(err.holder, "ann");
 * assert.equal(err.index, "email_1");
 * ```
 */
export class DuplicateKeyError extends TetherError {
  /** The item whose write was refused, when known. */
  readonly key: string | undefined;
  /** The item that holds the key or value, when known. */
  readonly holder: string | undefined;
  /** The unique index whose value is taken, when it is one. */
  readonly index: string | undefined;

  /**
   * Creates the error.
   *
   * @param message What was attempted and the state that prevented it.
   * @param options Standard error options, and the items it names.
   */
  constructor(
    message: string,
    options?: ErrorOptions & DuplicateKeyDetails,
  ) {
    super(message, options);
    this.key = options?.key;
    this.holder = options?.holder;
    this.index = options?.index;
  }
}

/**
 * Stored data failed verification (checksum, MAC or structure). Corruption is
 * reported, never skipped. When the change feed (`changes()`) meets a change
 * it cannot read, `seq` is that change's position: a consumer may resume
 * after it (`since: err.seq`) once it has dealt with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IntegrityError } from "@tether/db";
 * const err = new IntegrityError("Cannot read 'a': the record is not valid JSON");
 * assert(err.name === "IntegrityError");
 * assert.equal(err.seq, undefined);
 * assert.equal(new IntegrityError("Cannot read the feed", { seq: "7" }).seq, "7");
 * ```
 */
export class IntegrityError extends TetherError {
  /** The change feed position of the change that could not be read, if any. */
  readonly seq: string | undefined;

  /**
   * Creates the error.
   *
   * @param message What was attempted and the state that prevented it.
   * @param options Standard error options, and the feed position it names.
   */
  constructor(message: string, options?: ErrorOptions & { seq?: string }) {
    super(message, options);
    this.seq = options?.seq;
  }
}

/**
 * The passphrase or key given does not open this database.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WrongKeyError } from "@tether/db";
 * const err = new WrongKeyError("Cannot open 'app.tdb': the passphrase is wrong");
 * assert(err.name === "WrongKeyError");
 * ```
 */
export class WrongKeyError extends TetherError {}

/**
 * Another process holds the lock on the database.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LockedError } from "@tether/db";
 * const err = new LockedError("Cannot open 'app.tdb': locked by another process");
 * assert(err.name === "LockedError");
 * ```
 */
export class LockedError extends TetherError {}

/**
 * The write would take the database past its `memoryLimit` (or a storage
 * quota). Nothing was written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QuotaError } from "@tether/db";
 * const err = new QuotaError("Cannot put 'a': the memory limit is reached");
 * assert(err.name === "QuotaError");
 * ```
 */
export class QuotaError extends TetherError {}

/**
 * A value (or key) is larger than the configured maximum. Nothing was
 * written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TooLargeError } from "@tether/db";
 * const err = new TooLargeError("Cannot put 'a': value is 70000 bytes, limit 65536");
 * assert(err.name === "TooLargeError");
 * ```
 */
export class TooLargeError extends TetherError {}

/**
 * A change feed cannot resume from the position given: changes after it may
 * be gone (the delete or expiry markers were purged after
 * `tombstoneRetention`), or the database never reached that position (it
 * was replaced by an older copy). The consumer must resync: read the
 * current state (`changes()` without `since`) and resume from there.
 * Extends `RangeError` (the position is out of the range the feed still
 * holds).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FeedGapError } from "@tether/db";
 * const err = new FeedGapError("Cannot read changes since '3': ...", "3", "9");
 * assert(err instanceof RangeError && err.oldest === "9");
 * ```
 */
export class FeedGapError extends RangeError {
  /** The position asked for. */
  readonly since: string;
  /** The oldest position the feed can resume from (`since` at least this). */
  readonly oldest: string;
  /**
   * Creates the error.
   *
   * @param message What was attempted and why it cannot resume.
   * @param since The position asked for.
   * @param oldest The oldest position the feed can resume from.
   */
  constructor(message: string, since: string, oldest: string) {
    super(message);
    this.name = "FeedGapError";
    this.since = since;
    this.oldest = oldest;
  }
}
