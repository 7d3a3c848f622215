/**
 * Part 3 of the small test files, run together in one worker by
 * `deno task test`, which names the other test files one by one: a test
 * file in a worker of its own costs ~0.75 s of CPU to start (runtime and
 * module graph), a minute over the suite on 2 cores. `parts_test.ts` checks
 * that every test file runs exactly once. Run one of them alone as usual
 * (`deno test -A tests/crc32c_test.ts`).
 *
 * @module
 */

import "./aggregate_mingo_test.ts";
import "./backup_stage_test.ts";
import "./bench_charts_test.ts";
import "./cli_commands_test.ts";
import "./database_test.ts";
import "./file_decode_test.ts";
import "./gateway_ingest_test.ts";
import "./gateway_relay_pipeline_test.ts";
import "./input_limits_test.ts";
import "./kv_sweep_count_test.ts";
import "./lazy_order_test.ts";
import "./ndjson_test.ts";
import "./put_group_test.ts";
import "./query_positional_projection_test.ts";
import "./query_projection2_test.ts";
import "./query_test.ts";
import "./unique_batch_test.ts";
import "./unique_ops_test.ts";
import "./unosql_import_test.ts";
import "./update_test.ts";
import "./verify_index_test.ts";
import "./watch_durable_test.ts";
