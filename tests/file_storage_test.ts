import { FileStorage } from "../src/storage/file.ts";
import { collectionSuite } from "./conformance/collection_suite.ts";
import { databaseSuite } from "./conformance/database_suite.ts";
import {
  type StorageFactory,
  storageSuite,
} from "./conformance/storage_suite.ts";

/** Fresh file storages in temporary directories, strict or batched. */
function files(
  name: string,
  durability: "strict" | "batched",
  reopen: boolean,
): StorageFactory {
  let dir: string | undefined;
  let path = "";
  const factory: StorageFactory = {
    name,
    create: async () => {
      dir = await Deno.makeTempDir({ prefix: "tether-conformance-" });
      path = `${dir}/db.tdb`;
      return await FileStorage.open(path, { durability });
    },
    cleanup: async () => {
      if (dir !== undefined) await Deno.remove(dir, { recursive: true });
      dir = undefined;
    },
  };
  if (!reopen) return factory;
  return {
    ...factory,
    reopen: () => FileStorage.open(path, { durability }),
    propertyScale: REOPENED_SCALE,
  };
}

/**
 * The reopened variant runs half the property cases the plain one runs in
 * full (all of them under `deno task torture`): each of its cases reopens
 * the file after every write.
 */
const REOPENED_SCALE = Deno.env.get("TETHER_TORTURE") === "1" ? 1 : 0.5;

for (
  const factory of [
    files("file", "strict", false),
    files("file, reopened after every write", "strict", true),
  ]
) {
  storageSuite(factory);
  databaseSuite(factory);
  collectionSuite(factory);
}
storageSuite(files("file, batched", "batched", false));
