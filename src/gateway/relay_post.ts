/**
 * The HTTP side of a relay: one batch POSTed to a `receive` endpoint, with
 * a timeout and a stop signal.
 *
 * @module
 */

import type { ReceiveResult, RelayBatch } from "./protocol.ts";

/** A POST answered with another status than 200. */
export class HttpError extends Error {
  /**
   * @param message What happened.
   * @param retryAfter The answer's `Retry-After`, ms, if any.
   * @param status The answer's status.
   */
  constructor(
    message: string,
    readonly retryAfter: number | undefined,
    readonly status: number = 0,
  ) {
    super(message);
  }
}

/** Where and how {@linkcode postBatch} posts. */
export interface PostTarget {
  /** The endpoint. */
  readonly to: string | URL;
  /** The bearer token. */
  readonly token: string;
  /** How long the POST may take, ms. */
  readonly timeout: number;
  /** The `fetch` to post with. */
  readonly fetch: typeof fetch;
}

/** Where {@linkcode wireTexts} keeps a change's JSON. */
const TEXT = Symbol("wire text");

/** The JSON of changes already written out, by change object. */
export interface WireTexts {
  /** A change's JSON, if kept. */
  get(change: object): string | undefined;
}

/**
 * Keeps a change's JSON on the change object itself, under a symbol
 * (`JSON.stringify` leaves symbol-keyed properties out, so the change's
 * JSON is unchanged). A `WeakMap` keyed by the changes did the same at
 * ~0.6 µs a change: each change is a fresh object, given an identity hash
 * on its first use as a key.
 *
 * @param change The change.
 * @param text Its JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keepText, wireTexts } from "./relay_post.ts";
 * const change = { seq: "1", key: "k" };
 * keepText(change, JSON.stringify(change));
 * assert.equal(wireTexts.get(change), '{"seq":"1","key":"k"}');
 * assert.equal(JSON.stringify(change), '{"seq":"1","key":"k"}');
 * ```
 */
export function keepText(change: object, text: string): void {
  (change as { [TEXT]?: string })[TEXT] = text;
}

/** The texts {@linkcode keepText} kept. */
export const wireTexts: WireTexts = {
  get: (change) => (change as { [TEXT]?: string })[TEXT],
};

/**
 * POSTs a batch and reads the answer.
 *
 * @param target Endpoint, token, timeout and fetch.
 * @param batch The batch.
 * @param stop Aborts the POST (the relay closing).
 * @param texts The JSON of changes already written out (see
 *   {@linkcode batchBody}).
 * @returns The receiver's counts.
 * @throws {HttpError} When the answer is not 200.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { postBatch } from "./relay_post.ts";
 * const fetch = (() => Promise.resolve(Response.json({ applied: 1, skipped: 0 }))) as typeof globalThis.fetch;
 * const result = await postBatch(
 *   { to: "http://cloud.test/sync", token: "t", timeout: 1000, fetch },
 *   { origin: "gw~1", changes: [] },
 *   new AbortController().signal,
 * );
 * assert.deepEqual(result, { applied: 1, skipped: 0 });
 * ```
 */
export async function postBatch(
  target: PostTarget,
  batch: RelayBatch,
  stop: AbortSignal,
  texts?: WireTexts,
): Promise<ReceiveResult> {
  const { to, token, timeout } = target;
  // One controller for close() and the timeout (held by stop's listener
  // and the timer, so it lives as long as the post).
  const abort = new AbortController();
  const onStop = () => abort.abort(stop.reason);
  stop.addEventListener("abort", onStop, { once: true });
  const timer = setTimeout(
    () =>
      abort.abort(
        new DOMException(`No answer within ${timeout} ms`, "TimeoutError"),
      ),
    timeout,
  );
  let response: Response;
  let text: string;
  try {
    response = await target.fetch(to, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
      },
      body: batchBody(batch, texts),
      signal: abort.signal,
    });
    text = await response.text();
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
  }
  if (response.status !== 200) {
    const after = Number(response.headers.get("retry-after"));
    throw new HttpError(
      `${response.status} from ${to}: ${text.slice(0, 200)}`,
      Number.isFinite(after) && after >= 0 ? after * 1000 : undefined,
      response.status,
    );
  }
  return JSON.parse(text) as ReceiveResult;
}

/**
 * A batch's JSON, as `JSON.stringify(batch)` writes it, reusing the JSON of
 * the changes already written out (the relay measures each change's size
 * that way when it reads them).
 *
 * @param batch The batch.
 * @param texts The JSON of some changes, by change object.
 * @returns The request body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchBody, keepText, wireTexts } from "./relay_post.ts";
 * const change = { seq: "1", type: "delete" as const, collection: "c", key: "k", version: 1 };
 * const batch = { origin: "gw~1", changes: [change] };
 * const texts = new WeakMap([[change, JSON.stringify(change)]]);
 * assert.equal(batchBody(batch, texts), JSON.stringify(batch));
 * // Or kept on the change:
 * keepText(change, JSON.stringify(change));
 * assert.equal(batchBody(batch, wireTexts), JSON.stringify(batch));
 * ```
 */
export function batchBody(
  batch: RelayBatch,
  texts?: WireTexts,
): string {
  if (texts === undefined || Object.keys(batch).length !== 2) {
    return JSON.stringify(batch); // (a batch of other fields than these two)
  }
  const parts: string[] = new Array(batch.changes.length);
  for (let i = 0; i < batch.changes.length; i++) {
    const change = batch.changes[i]!;
    parts[i] = texts.get(change) ?? JSON.stringify(change);
  }
  return `{"origin":${JSON.stringify(batch.origin)},"changes":[${
    parts.join(",")
  }]}`;
}
