/**
 * Part 2 of the small test files, run together in one worker by
 * `deno task test`, which names the other test files one by one: a test
 * file in a worker of its own costs ~0.75 s of CPU to start (runtime and
 * module graph), a minute over the suite on 2 cores. `parts_test.ts` checks
 * that every test file runs exactly once. Run one of them alone as usual
 * (`deno test -A tests/crc32c_test.ts`).
 *
 * @module
 */

import "./backup_format_test.ts";
import "./cli_follow_test.ts";
import "./cli_import_test.ts";
import "./count_scan_test.ts";
import "./crypto_header_test.ts";
import "./feed_deferred_test.ts";
import "./feed_index_test.ts";
import "./file_compact_full_disk_test.ts";
import "./file_salvage_test.ts";
import "./file_scan_window_test.ts";
import "./gateway_auth_test.ts";
import "./gateway_feed_test.ts";
import "./memory_log_test.ts";
import "./module_graph_test.ts";
import "./planner_test.ts";
import "./query_operators2_test.ts";
import "./sweep_reads_test.ts";
import "./unosql_test.ts";
import "./value_codec_test.ts";
