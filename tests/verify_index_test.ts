/**
 * `verify()` reports documents whose index entries are missing or, in a
 * unique index, name another document (what a lost entry, or a write that
 * broke a unique index, leaves), on the storages that store index entries.
 * The damage is made through the storage underneath the open database.
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { decodeKey, encodeKey } from "../src/key_codec.ts";
import type { Storage, StorageEntry } from "../src/storage/contract.ts";
import { FileStorage } from "../src/storage/file.ts";
import { KvStorage } from "../src/storage/kv.ts";

async function indexEntries(
  storage: Storage,
  index: string,
): Promise<StorageEntry[]> {
  const out: StorageEntry[] = [];
  for await (
    const page of storage.scan({ prefix: encodeKey(["i", "users", index]) })
  ) {
    for (const entry of page) out.push(entry);
  }
  return out;
}

/** The entry whose key holds `part` (an id, or a unique value). */
function entryFor(entries: StorageEntry[], part: string): StorageEntry {
  const found = entries.find((e) => decodeKey(e.key).includes(part));
  assert.ok(found !== undefined, `an entry for '${part}'`);
  return found;
}

const storages: [
  string,
  () => Promise<{
    storage: Storage;
    done: () => Promise<void>;
  }>,
][] = [
  ["kv", async () => {
    const kv = await Deno.openKv(":memory:");
    return {
      storage: new KvStorage(kv),
      done: () => Promise.resolve(kv.close()),
    };
  }],
  ["file", async () => {
    const dir = await Deno.makeTempDir({ prefix: "tether-verify-" });
    return {
      storage: await FileStorage.open(`${dir}/db.tdb`),
      done: () => Deno.remove(dir, { recursive: true }),
    };
  }],
];

for (const [name, make] of storages) {
  Deno.test(`verify (${name}): a document without its index entry, and one whose unique entry names another document, are reported`, async () => {
    const { storage, done } = await make();
    try {
      await using db = await open({ storage });
      const users = db.collection("users");
      await users.createIndex("email", { unique: true });
      await users.createIndex("age");
      await users.insertMany([
        { _id: "a", email: "a@x", age: 1 },
        { _id: "b", email: "b@x", age: 2 },
        { _id: "c", email: "c@x", age: 3 },
      ]);
      assert.deepEqual((await db.verify()).problems, []);
      // "a"'s unique entry now names "b" (as a broken unique index leaves
      // it); "c"'s age entry is gone.
      const emails = await indexEntries(storage, "email_1");
      const ages = await indexEntries(storage, "age_1");
      const ofB = entryFor(emails, "b@x");
      await storage.commit({
        sets: [{ key: entryFor(emails, "a@x").key, value: ofB.value }],
        deletes: [entryFor(ages, "c").key],
      });
      const problems = (await db.verify()).problems;
      assert.deepEqual(
        problems.map((p) => [p.collection, p.key, p.problem]),
        [
          ["users", "a", "its entry of unique index 'email_1' names 'b'"],
          ["users", "c", "it has no entry in index 'age_1'"],
        ],
      );
    } finally {
      await done();
    }
  });
}
