/**
 * `@tether/db/gateway`: device gateways in a few lines. `ingest` is the HTTP
 * handler devices post readings to, `relay` forwards stored changes to the
 * cloud (store-and-forward, resumable, at least once), and `receive` is the
 * endpoint that applies them there exactly once in effect.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { ingest, receive, relay } from "@tether/db/gateway";
 *
 * await using gateway = await open();
 * await using cloud = await open();
 * const handle = ingest(gateway, { devices: { "esp32-kitchen": "kitchen-token" } });
 * const response = await handle(new Request("http://gateway/", {
 *   method: "POST",
 *   headers: { authorization: "Bearer kitchen-token", "content-type": "application/x-ndjson" },
 *   body: '{"seq":1,"temp":21.5}\n{"seq":2,"temp":21.7}\n',
 * }));
 * assert.deepEqual(await response.json(), { stored: 2, duplicates: 0 });
 *
 * const endpoint = receive(cloud, { token: "sync-token" });
 * await using uplink = relay(gateway, {
 *   collections: ["readings"],
 *   to: "http://cloud.example/sync",
 *   token: "sync-token",
 *   fetch: (url, init) => endpoint(new Request(url as string, init)),
 * });
 * await uplink.idle();
 * assert.equal(await cloud.collection("readings").count(), 2);
 * ```
 *
 * See `docs/gateway.md` for the protocol (headers, bodies, statuses,
 * idempotency) and the data path.
 *
 * @module
 */

export {
  ingest,
  type IngestHandler,
  type IngestOptions,
  type IngestStats,
} from "./src/gateway/ingest.ts";
export { relay } from "./src/gateway/relay.ts";
export type {
  Relay,
  RelayCollection,
  RelayOptions,
  RelayStats,
  UnreadableChange,
} from "./src/gateway/relay_options.ts";
export {
  REFUSED_COLLECTION,
  type RefusedChange,
  type RefusedPolicy,
} from "./src/gateway/relay_refused.ts";
export type { RetryOptions } from "./src/gateway/retry.ts";
export {
  applyBatch,
  type ApplyOptions,
  receive,
  type ReceiveOptions,
} from "./src/gateway/receive.ts";
export type {
  ReceiveResult,
  RelayBatch,
  RelayChange,
} from "./src/gateway/protocol.ts";
export type { TokenSpec } from "./src/gateway/auth.ts";
export type { BodyFormat } from "./src/gateway/body.ts";
export type { RateClock, RateLimitOptions } from "./src/gateway/rate_limit.ts";
