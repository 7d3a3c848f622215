/**
 * Tombstones: the time each document was deleted, kept
 * `tombstoneRetention` ms so that incremental backups see deletions.
 *
 * @module
 */

import { encodeUtf8 } from "../bytes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import type { EngineCore } from "./state.ts";
import { PURGED, TOMB } from "./layout.ts";
import { settle } from "./load.ts";
import type { StorageEntry } from "../storage/contract.ts";
import { readTombstone } from "./feed_format.ts";
import { feedPurge, feedPurged } from "./feed_hooks.ts";

/**
 * The deletions recorded at or after `since` (tombstones), page by page.
 *
 * @param since Epoch ms.
 * @param collections Only these (default: all).
 * @returns Pages of `{ collection, id, at }`.
 */
export async function* tombstones(
  s: EngineCore,
  since: number,
  collections?: readonly string[],
): AsyncGenerator<{ collection: string; id: string; at: number }[]> {
  const prefixes = collections === undefined
    ? [encodeKey([TOMB])]
    : [...new Set(collections)].sort().map((c) => encodeKey([TOMB, c]));
  for (const prefix of prefixes) {
    for await (const page of s.storage.scan({ prefix })) {
      const out: { collection: string; id: string; at: number }[] = [];
      for (const entry of page) {
        const tomb = readTombstone(entry.value);
        // Expiry markers (change feed) are not deletions.
        if (tomb.expired || !(tomb.at >= since)) continue;
        const at = tomb.at;
        const parts = decodeKey(entry.key);
        out.push({
          collection: parts[1] as string,
          id: parts[2] as string,
          at,
        });
      }
      if (out.length > 0) yield out;
    }
  }
}

/**
 * Removes tombstones older than the retention.
 *
 * @returns How many were removed.
 */
export async function purgeTombstones(s: EngineCore): Promise<number> {
  const before = s.now() - s.settings.tombstoneRetention;
  const old: StorageEntry[] = [];
  for await (
    const page of s.storage.scan({ prefix: encodeKey([TOMB]) })
  ) {
    for (const entry of page) {
      if (!(readTombstone(entry.value).at >= before)) old.push(entry);
    }
  }
  if (old.length === 0) return 0;
  // First the marks: deletions before them may be gone from now on, so an
  // incremental backup since earlier would miss some, and a change feed
  // read from an earlier position is refused (and positions never go back).
  const feed = await feedPurge(s, old);
  const marks = feed.sets;
  if (before > await tombstonesFrom(s)) {
    marks.push({ key: PURGED, value: encodeUtf8(String(before)) });
  }
  if (marks.length > 0) {
    const result = await s.storage.commit({ sets: marks });
    if (result.ok && result.durable !== undefined) {
      await settle(s, result.durable);
    }
  }
  feedPurged(s, old, marks);
  // Each tombstone goes only if unchanged since the scan (a delete or an
  // expiry meanwhile wrote a new one); then the by-position keys (Deno KV).
  const limits = s.storage.limits;
  const size = limits === undefined
    ? 1024
    : Math.min(limits.maxChecks, limits.maxMutations >> 1);
  let removed = 0;
  await s.inGroups(old, size, async (group) => {
    const result = await s.storage.commit({
      checks: group.map((e) => ({
        key: e.key,
        versionstamp: e.versionstamp,
      })),
      deletes: group.map((e) => e.key),
    });
    if (result.ok) removed += group.length;
    if (result.ok && result.durable !== undefined) {
      await settle(s, result.durable);
    }
  });
  await s.inGroups(feed.deletes, size, async (deletes) => {
    const result = await s.storage.commit({ deletes: [...deletes] });
    if (result.ok && result.durable !== undefined) {
      await settle(s, result.durable);
    }
  });
  return removed;
}

/**
 * The time from which every deletion still has its tombstone: 0 until
 * tombstones were first purged, then the purge's cut-off.
 *
 * @returns Epoch ms.
 */
export async function tombstonesFrom(s: EngineCore): Promise<number> {
  const found = await s.storage.get(PURGED);
  if (found === null) return 0;
  const at = Number(new TextDecoder().decode(found.value));
  return Number.isFinite(at) ? at : Infinity;
}
