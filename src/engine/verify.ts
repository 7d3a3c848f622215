/**
 * Verification: reads every stored document and index entry and reports
 * what fails.
 *
 * @module
 */

import { entryId, type IndexEntry } from "./indexes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import type { Storage, StorageEntry } from "../storage/contract.ts";
import { decodeRecord } from "../value_codec.ts";
import type { EngineCore } from "./state.ts";
import { DOC, isExpired } from "./layout.ts";
import type { StoredRecord } from "../value_codec.ts";
import { type ProgressCallback, ProgressReport } from "../progress.ts";
import { readPositions } from "./feed_block.ts";
import { BY_POSITION } from "./feed_format.ts";

/** Index cells of a volatile storage checked per step (and report). */
const PAGE = 1000;

/** What `verify` found. */
export interface VerifyReport {
  /** Stored values checked. */
  readonly checked: number;
  /**
   * One per bad value: where, and what is wrong. Damage the storage's own
   * checksums find (a file log's frame) is one problem with an empty
   * `collection` and `key`.
   */
  readonly problems: readonly {
    readonly collection: string;
    readonly key: string;
    readonly problem: string;
  }[];
}

/**
 * Options of `verify`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open, type VerifyOptions } from "@tether/db";
 * await using db = await open();
 * await db.put("k", 1);
 * let last = [0, 0];
 * const options: VerifyOptions = { onProgress: (done, total) => last = [done, total] };
 * await db.verify(options);
 * assert.equal(last[0], last[1]);
 * ```
 */
export interface VerifyOptions {
  /**
   * Called as stored values are checked (after each page of them, not each
   * value), with how many are done of how many in all: the total is known
   * from the first call on (an estimate from the documents and index entries
   * counted, plus the values stored for a sealed pass), `done` never
   * decreases nor passes it, and the last call has `done === total`. If it
   * throws, the verification stops with that error.
   */
  readonly onProgress?: ProgressCallback | undefined;
}

/** The stored values of each pass, estimated before any is read. */
function estimate(
  s: EngineCore,
  sealed: boolean,
): { docs: number; entries: number; sealed: number } {
  let docs = 0;
  let entries = 0;
  for (const state of s.collections.values()) {
    docs += state.stored;
    for (const spec of state.indexes.list) {
      entries += s.volatile
        ? state.ram?.tree(spec.name).size ?? 0
        : state.stored;
    }
  }
  // A sealed pass reads every stored value (the header left out).
  const keys = sealed ? s.storage.stats?.().keys : undefined;
  return {
    docs,
    entries,
    sealed: !sealed
      ? 0
      : typeof keys === "number"
      ? Math.max(0, keys - 1)
      : docs + entries,
  };
}

/**
 * Reads every stored document and index entry and reports what fails:
 * values that fail their MAC or checksum (encrypted or compressed
 * databases), records that do not decode, index entries that point at no
 * document, live documents without their index entries (or whose
 * unique entry names another document), and on Deno KV the change feed's
 * by-position entries that do not read.
 *
 * @param s The engine.
 * @param onProgress Told how far along it is.
 * @returns How many stored values were checked, and the problems found.
 */
export async function verify(
  s: EngineCore,
  onProgress?: ProgressCallback,
): Promise<VerifyReport> {
  s.assertOpen("Cannot verify");
  const problems: { collection: string; key: string; problem: string }[] = [];
  let checked = 0;
  const name = (key: Uint8Array) => {
    try {
      const parts = decodeKey(key);
      return { collection: String(parts[1]), key: String(parts[2] ?? "") };
    } catch {
      return { collection: "", key: "" };
    }
  };
  const storage = s.storage as Storage & {
    verify?: (onProgress?: (checked: number) => void) => Promise<{
      checked: number;
      problems: { key: Uint8Array; message: string }[];
    }>;
  };
  // The storage's own checksums first (a file log opened from its key
  // directory hint was not read whole).
  const damaged = await storage.checkLog?.();
  if (damaged !== undefined) {
    problems.push({ collection: "", key: "", problem: damaged });
  }
  const sealing = typeof storage.verify === "function";
  const work = estimate(s, sealing);
  const progress = new ProgressReport(
    onProgress,
    work.sealed + work.docs + work.entries,
  );
  progress.report(0);
  // Values read so far, over every pass.
  let done = 0;
  if (sealing) {
    const sealed = await storage.verify!((n) => progress.report(n));
    done = Math.max(sealed.checked, work.sealed);
    progress.report(done);
    checked += sealed.checked;
    for (const p of sealed.problems) {
      problems.push({ ...name(p.key), problem: p.message });
    }
    if (problems.length > 0) {
      progress.finish();
      return { checked, problems };
    }
  }
  for await (const page of s.storage.scan({ prefix: encodeKey([DOC]) })) {
    done += page.length;
    progress.report(done);
    const docs: IndexedDoc[] = [];
    for (const entry of page) {
      if (storage.verify === undefined) checked++;
      try {
        decodeRecord(entry.value, "Cannot verify");
      } catch (e) {
        problems.push({ ...name(entry.key), problem: (e as Error).message });
        continue;
      }
      const { collection, key } = name(entry.key);
      if ((s.collections.get(collection)?.indexes.size ?? 0) === 0) continue;
      docs.push({ collection, id: key, record: s.decode(entry, ACTION) });
    }
    await checkEntries(s, docs, problems);
  }
  const index = encodeKey(["i"]);
  for await (const all of s.storage.scan({ prefix: index })) {
    done += all.length;
    progress.report(done);
    // An entry whose value cannot be read (another program's, on Deno KV)
    // is a problem of its own.
    const page: StorageEntry[] = [];
    const targets: Uint8Array[] = [];
    for (const entry of all) {
      try {
        targets.push(entry.value);
        page.push(entry);
      } catch (e) {
        if (storage.verify === undefined) checked++;
        const parts = decodeKey(entry.key);
        problems.push({
          collection: String(parts[1]),
          key: "",
          problem: `an entry of index '${String(parts[2])}' cannot be read: ${
            (e as Error).message
          }`,
        });
      }
    }
    const docs = await s.storage.getMany(targets);
    for (let i = 0; i < page.length; i++) {
      if (storage.verify === undefined) checked++;
      if (docs[i] !== null) continue;
      const parts = decodeKey(page[i]!.key);
      problems.push({
        collection: String(parts[1]),
        key: entryId(page[i]!.value),
        problem: `an entry of index '${
          String(parts[2])
        }' points at no document`,
      });
    }
  }
  // A volatile storage keeps no index entries: check the index trees.
  if (s.volatile) {
    for (const [collection, state] of s.collections) {
      const ram = state.ram!;
      for (const spec of state.indexes.list) {
        const all = [...ram.tree(spec.name).values()];
        for (let at = 0; at < all.length; at += PAGE) {
          const cells = all.slice(at, at + PAGE);
          const docs = await s.storage.getMany(cells.map((c) => c.key));
          done += cells.length;
          progress.report(done);
          for (let i = 0; i < cells.length; i++) {
            checked++;
            if (docs[i] !== null) continue;
            problems.push({
              collection,
              key: cells[i]!.id,
              problem: `an entry of index '${spec.name}' points at no document`,
            });
          }
        }
      }
    }
  }
  // Deno KV: the change feed's by-position entries (local storages keep
  // them in RAM, rebuilt from the records checked above).
  if (s.shared) {
    for await (
      const page of s.storage.scan({ prefix: encodeKey([BY_POSITION]) })
    ) {
      for (const entry of page) {
        if (storage.verify === undefined) checked++;
        try {
          readPositions(entry);
        } catch (e) {
          problems.push({
            collection: "",
            key: "",
            problem: (e as Error).message,
          });
        }
      }
    }
  }
  progress.finish();
  return { checked, problems };
}

const ACTION = "Cannot verify";

/** A live document of an indexed collection, as verify read it. */
interface IndexedDoc {
  readonly collection: string;
  readonly id: string;
  readonly record: StoredRecord;
}

/**
 * Reports documents whose index entries are missing, or (unique indexes)
 * name another document: what a write that broke a unique index, or a lost
 * entry, leaves. Expired documents are left out (their entries go with
 * them, possibly first).
 */
async function checkEntries(
  s: EngineCore,
  docs: readonly IndexedDoc[],
  problems: { collection: string; key: string; problem: string }[],
): Promise<void> {
  const now = s.now();
  const expected: { doc: IndexedDoc; entry: IndexEntry }[] = [];
  for (const [collection, state] of s.collections) {
    const mine = docs.filter((d) =>
      d.collection === collection && !isExpired(d.record, now)
    );
    if (mine.length === 0) continue;
    await state.indexes.prepare(mine.map((d) => d.record));
    for (const doc of mine) {
      let entries: IndexEntry[];
      try {
        entries = state.indexes.entries(doc.id, doc.record);
      } catch (e) {
        problems.push({
          collection,
          key: doc.id,
          problem: `its indexed values cannot be indexed: ${
            (e as Error).message
          }`,
        });
        continue;
      }
      for (const entry of entries) expected.push({ doc, entry });
    }
  }
  if (expected.length === 0) return;
  // The memory storage keeps index entries in RAM only; the others store
  // them (what queries on them read).
  const holders: (string | null | undefined)[] = s.volatile
    ? expected.map(({ doc, entry }) =>
      s.collections.get(doc.collection)!.ram!.holder(entry)?.id
    )
    : (await s.storage.getMany(expected.map(({ entry }) => entry.key))).map(
      (found) => {
        if (found === null) return undefined;
        try {
          return entryId(found.value);
        } catch {
          return null; // unreadable: reported by the pass over the entries
        }
      },
    );
  for (let i = 0; i < expected.length; i++) {
    const { doc, entry } = expected[i]!;
    const holder = holders[i];
    if (holder === doc.id || holder === null) continue;
    problems.push({
      collection: doc.collection,
      key: doc.id,
      problem: holder === undefined
        ? `it has no entry in index '${entry.index}'`
        : `its entry of unique index '${entry.index}' names '${holder}'`,
    });
  }
}
