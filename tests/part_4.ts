/**
 * Part 4 of the small test files, run together in one worker by
 * `deno task test`, which names the other test files one by one: a test
 * file in a worker of its own costs ~0.75 s of CPU to start (runtime and
 * module graph), a minute over the suite on 2 cores. `parts_test.ts` checks
 * that every test file runs exactly once. Run one of them alone as usual
 * (`deno test -A tests/crc32c_test.ts`).
 *
 * @module
 */

import "./aggregate_test.ts";
import "./backup_test.ts";
import "./binary_values_test.ts";
import "./changes_test.ts";
import "./cursor_iterator_test.ts";
import "./expression_test.ts";
import "./feed_block_test.ts";
import "./file_compact_copy_test.ts";
import "./file_keydir_test.ts";
import "./file_read_runs_test.ts";
import "./gateway_esp32_test.ts";
import "./gateway_mqtt_test.ts";
import "./gateway_receive_test.ts";
import "./gateway_relay_test.ts";
import "./index_page_test.ts";
import "./index_run_test.ts";
import "./input_options_test.ts";
import "./kv_chain_test.ts";
import "./kv_cost_test.ts";
import "./kv_feed_race_test.ts";
import "./kv_layout_test.ts";
import "./query_compile_test.ts";
import "./query_montydb_test.ts";
import "./sort_projection_test.ts";
import "./sort_ties_test.ts";
import "./update_manual_test.ts";
