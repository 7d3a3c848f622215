import { MemoryStorage } from "../storage.ts";
import { collectionSuite } from "./conformance/collection_suite.ts";
import { databaseSuite } from "./conformance/database_suite.ts";
import { storageSuite } from "./conformance/storage_suite.ts";

const factory = {
  name: "memory",
  create: () => Promise.resolve(new MemoryStorage()),
};

storageSuite(factory);
databaseSuite(factory);
collectionSuite(factory);
