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
  const decoder = new TextDecoder();
  for (const prefix of prefixes) {
    for await (const page of s.storage.scan({ prefix })) {
      const out: { collection: string; id: string; at: number }[] = [];
      for (const entry of page) {
        const at = Number(decoder.decode(entry.value));
        if (!(at >= since)) continue;
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
  const old: Uint8Array[] = [];
  for await (
    const page of s.storage.scan({ prefix: encodeKey([TOMB]) })
  ) {
    for (const entry of page) {
      const at = Number(new TextDecoder().decode(entry.value));
      if (!(at >= before)) old.push(entry.key);
    }
  }
  if (old.length === 0) return 0;
  // First the mark: deletions before it may be gone from now on, so an
  // incremental backup since earlier would miss some.
  if (before > await tombstonesFrom(s)) {
    const result = await s.storage.commit({
      sets: [{ key: PURGED, value: encodeUtf8(String(before)) }],
    });
    if (result.ok && result.durable !== undefined) {
      await settle(s, result.durable);
    }
  }
  const size = s.storage.limits?.maxMutations ?? 1024;
  await s.inGroups(old, size, async (deletes) => {
    const result = await s.storage.commit({ deletes: [...deletes] });
    if (result.ok && result.durable !== undefined) {
      await settle(s, result.durable);
    }
  });
  return old.length;
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
