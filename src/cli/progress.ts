/**
 * Progress on stderr, only when it is a terminal: a bar with percentage,
 * rate and ETA when the total is known, a spinner with the amount done and
 * the elapsed time otherwise.
 *
 * @module
 */

import { formatBytes, type Out } from "./output.ts";

/** What a progress line shows. */
export interface ProgressState {
  /** What is being done: `importing`, `backing up`. */
  readonly label: string;
  /** How much is done (bytes or items). */
  readonly done: number;
  /** How much there is in all, when known. */
  readonly total?: number | undefined;
  /** What `done` and `total` count. */
  readonly unit: "bytes" | "items";
  /** Milliseconds since the start. */
  readonly elapsedMs: number;
  /** Which spinner frame (any whole number). */
  readonly frame?: number;
}

const FRAMES = ["|", "/", "-", "\\"];
const BAR = 20;

/**
 * A duration as `m:ss` or `h:mm:ss`.
 *
 * @param seconds The duration.
 * @returns The text.
 */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * The text of a progress line (without the carriage return and erase).
 * With a total: `label [#####...............]  25%  1.0 MiB/4.0 MiB
 * 512 KiB/s  ETA 0:06`; without: `| label 1.0 MiB  512 KiB/s  2.0 s`.
 *
 * @param state What to show.
 * @returns The line.
 */
export function formatProgress(state: ProgressState): string {
  const { label, done, total, unit, elapsedMs } = state;
  const amount = (n: number) =>
    unit === "bytes" ? formatBytes(n) : String(Math.round(n));
  const seconds = elapsedMs / 1000;
  const perSecond = seconds > 0 ? done / seconds : 0;
  const rate = `${
    unit === "bytes" ? formatBytes(perSecond) : Math.round(perSecond)
  }/s`;
  if (total !== undefined && total > 0) {
    const ratio = Math.min(1, Math.max(0, done / total));
    const filled = Math.floor(ratio * BAR);
    const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
    const eta = ratio >= 1
      ? "0:00"
      : perSecond > 0
      ? formatDuration((total - done) / perSecond)
      : "-:--";
    return `${label} [${"#".repeat(filled)}${
      ".".repeat(BAR - filled)
    }] ${percent}  ${amount(done)}/${amount(total)}  ${rate}  ETA ${eta}`;
  }
  const frame = FRAMES[(state.frame ?? 0) % FRAMES.length];
  return `${frame} ${label} ${done > 0 ? `${amount(done)}  ${rate}  ` : ""}${
    seconds.toFixed(1)
  } s`;
}

/** How far along: how much is done, and of how much when known. */
export type ProgressSource = () => {
  readonly done: number;
  readonly total?: number | undefined;
};

/**
 * A progress source fed by an API's `onProgress(done, total)`: nothing
 * known (a spinner) until its first call.
 *
 * @returns The source, and the callback that feeds it.
 */
export function tracker(): {
  readonly source: ProgressSource;
  readonly onProgress: (done: number, total: number | undefined) => void;
} {
  let state: { done: number; total?: number | undefined } = { done: 0 };
  return {
    source: () => state,
    onProgress: (done, total) => void (state = { done, total }),
  };
}

/**
 * Runs `work` with a progress bar on stderr (only on a terminal) fed by the
 * `onProgress(done, total)` callback it hands to the API call, and erases
 * the bar when the work ends, however it ends.
 *
 * @param ctx Where to draw: stderr and whether it is a terminal.
 * @param label What is being done: `verifying`.
 * @param unit What the API's counts count.
 * @param work The call, given the callback.
 * @returns What `work` returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withProgress } from "./progress.ts";
 * const err = { write: async () => {}, flush: async () => {} } as never;
 * const n = await withProgress(
 *   { err, stderrIsTerminal: false },
 *   "counting",
 *   "items",
 *   async (onProgress) => {
 *     onProgress(1, 1);
 *     return 1;
 *   },
 * );
 * assert.equal(n, 1);
 * ```
 */
export async function withProgress<R>(
  ctx: { readonly err: Out; readonly stderrIsTerminal: boolean },
  label: string,
  unit: "bytes" | "items",
  work: (
    onProgress: (done: number, total: number | undefined) => void,
  ) => Promise<R>,
): Promise<R> {
  const { source, onProgress } = tracker();
  const progress = new Progress(
    ctx.err,
    ctx.stderrIsTerminal,
    label,
    source,
    unit,
  );
  try {
    return await work(onProgress);
  } finally {
    await progress.stop();
  }
}

/** How often a progress line is redrawn, ms. */
export const REDRAW_MS = 200;

/**
 * A progress line on stderr, redrawn every 200 ms, only when `enabled`
 * (stderr is a terminal); erased by {@linkcode Progress.stop}.
 */
export class Progress {
  readonly #out: Out;
  readonly #label: string;
  readonly #source: ProgressSource;
  readonly #unit: "bytes" | "items";
  readonly #start = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #frame = 0;
  #shown = false;

  /**
   * @param out Stderr.
   * @param enabled Whether to draw at all (stderr is a terminal).
   * @param label What is being done.
   * @param source How far along (default: nothing known: a spinner).
   * @param unit What the source counts.
   */
  constructor(
    out: Out,
    enabled: boolean,
    label: string,
    source: ProgressSource = () => ({ done: 0 }),
    unit: "bytes" | "items" = "bytes",
  ) {
    this.#out = out;
    this.#label = label;
    this.#source = source;
    this.#unit = unit;
    if (enabled) this.#timer = setInterval(() => this.#draw(), REDRAW_MS);
  }

  #draw(): void {
    const { done, total } = this.#source();
    this.#shown = true;
    const line = formatProgress({
      label: this.#label,
      done,
      total,
      unit: this.#unit,
      elapsedMs: Date.now() - this.#start,
      frame: this.#frame++,
    });
    this.#out.write(`\r${line}\x1b[K`).catch(() => {});
  }

  /**
   * Stops and erases the line.
   *
   * @returns When erased.
   */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#shown) await this.#out.write("\r\x1b[K").catch(() => {});
    this.#shown = false;
    await this.#out.flush();
  }
}

/**
 * A pass-through stream that counts the bytes crossing it.
 *
 * @returns The stream and its count.
 */
export function counting(): {
  readonly stream: TransformStream<Uint8Array, Uint8Array>;
  readonly bytes: () => number;
} {
  let bytes = 0;
  return {
    stream: new TransformStream({
      transform(chunk, controller) {
        bytes += chunk.length;
        controller.enqueue(chunk);
      },
    }),
    bytes: () => bytes,
  };
}
