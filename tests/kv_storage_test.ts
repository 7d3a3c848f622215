import { KvStorage } from "../src/kv_storage.ts";
import {
  type StorageFactory,
  storageSuite,
} from "./conformance/storage_suite.ts";

/** Fresh KV storages: in memory, or in a temporary file. */
function kvs(name: string, onDisk: boolean): StorageFactory {
  let dir: string | undefined;
  return {
    name,
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

storageSuite(kvs("kv :memory:", false));
storageSuite(kvs("kv file", true));
