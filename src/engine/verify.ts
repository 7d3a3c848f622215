/**
 * Verification: reads every stored document and index entry and reports
 * what fails.
 *
 * @module
 */

import { entryId } from "./indexes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import type { Storage } from "../storage/contract.ts";
import { decodeRecord } from "../value_codec.ts";
import type { EngineCore } from "./state.ts";
import { DOC } from "./layout.ts";

/** What `verify` found. */
export interface VerifyReport {
  /** Stored values checked. */
  readonly checked: number;
  /** One per bad value: where, and what is wrong. */
  readonly problems: readonly {
    readonly collection: string;
    readonly key: string;
    readonly problem: string;
  }[];
}

/**
 * Reads every stored document and index entry and reports what fails:
 * values that fail their MAC or checksum (encrypted or compressed
 * databases), records that do not decode, and index entries that point at
 * no document.
 *
 * @returns How many stored values were checked, and the problems found.
 */
export async function verify(s: EngineCore): Promise<VerifyReport> {
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
    verify?: () => Promise<{
      checked: number;
      problems: { key: Uint8Array; message: string }[];
    }>;
  };
  if (typeof storage.verify === "function") {
    const sealed = await storage.verify();
    checked += sealed.checked;
    for (const p of sealed.problems) {
      problems.push({ ...name(p.key), problem: p.message });
    }
    if (problems.length > 0) return { checked, problems };
  }
  for await (const page of s.storage.scan({ prefix: encodeKey([DOC]) })) {
    for (const entry of page) {
      if (storage.verify === undefined) checked++;
      try {
        decodeRecord(entry.value, "Cannot verify");
      } catch (e) {
        problems.push({ ...name(entry.key), problem: (e as Error).message });
      }
    }
  }
  const index = encodeKey(["i"]);
  for await (const page of s.storage.scan({ prefix: index })) {
    const docs = await s.storage.getMany(page.map((e) => e.value));
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
        const cells = [...ram.tree(spec.name).values()];
        const docs = await s.storage.getMany(cells.map((c) => c.slot.key));
        for (let i = 0; i < cells.length; i++) {
          checked++;
          if (docs[i] !== null) continue;
          problems.push({
            collection,
            key: cells[i]!.slot.id,
            problem: `an entry of index '${spec.name}' points at no document`,
          });
        }
      }
    }
  }
  return { checked, problems };
}
