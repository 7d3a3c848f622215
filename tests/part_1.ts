/**
 * Part 1 of the small test files, run together in one worker by
 * `deno task test`, which names the other test files one by one: a test
 * file in a worker of its own costs ~0.75 s of CPU to start (runtime and
 * module graph), a minute over the suite on 2 cores. `parts_test.ts` checks
 * that every test file runs exactly once. Run one of them alone as usual
 * (`deno test -A tests/crc32c_test.ts`).
 *
 * @module
 */

import "./aggregate_manual_test.ts";
import "./crc32c_test.ts";
import "./crypto_kdf_test.ts";
import "./crypto_rekey_test.ts";
import "./deploy_example_test.ts";
import "./file_database_test.ts";
import "./file_format3_test.ts";
import "./gateway_relay_refused_test.ts";
import "./gateway_relay_source_test.ts";
import "./index_keys_test.ts";
import "./input_redaction_test.ts";
import "./key_codec_test.ts";
import "./lazy_keys_test.ts";
import "./memory_storage_test.ts";
import "./put_paths_test.ts";
import "./query_manual_test.ts";
import "./record_table_dense_test.ts";
import "./sha256_test.ts";
import "./update_mingo_test.ts";
import "./update_storage_test.ts";
