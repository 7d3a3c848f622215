import { KvStorage } from "../src/storage/kv.ts";
import { collectionSuite } from "./conformance/collection_suite.ts";
import { databaseSuite } from "./conformance/database_suite.ts";
import {
  type StorageFactory,
  storageSuite,
} from "./conformance/storage_suite.ts";

/** Fresh KV storages: in memory, or in a temporary file. */
function kvs(name: string, onDisk: boolean): StorageFactory {
  let dir: string | undefined;
  return {
    name,
    shared: true,
    create: async () => {
      let path = ":memory:";
      if (onDisk) {
        dir = await Deno.makeTempDir({ prefix: "tether-kv-" });
        path = `${dir}/kv.sqlite`;
      }
      return new KvStorage(await Deno.openKv(path), { closeKv: true });
    },
    cleanup: async () => {
      if (dir !== undefined) await Deno.remove(dir, { recursive: true });
      dir = undefined;
    },
  };
}

// Both run on the same SQLite engine: the normal suite runs every suite in
// memory and the storage suite on a file; `deno task torture`
// (TETHER_TORTURE=1) runs every suite on both.
const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
for (const factory of [kvs("kv :memory:", false), kvs("kv file", true)]) {
  storageSuite(factory);
  if (!TORTURE && factory.name === "kv file") continue;
  databaseSuite(factory);
  collectionSuite(factory);
}
