/**
 * Writing to stdout and stderr: ordered writes, buffering, JSON, sizes,
 * plurals and aligned columns.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Text written to a stream in order, one write at a time. */
export class Out {
  readonly #stream: WritableStream<Uint8Array>;
  #chain: Promise<void> = Promise.resolve();

  /** @param stream Where the text goes. */
  constructor(stream: WritableStream<Uint8Array>) {
    this.#stream = stream;
  }

  /** The stream written to. */
  get stream(): WritableStream<Uint8Array> {
    return this.#stream;
  }

  /**
   * Writes text after every earlier write.
   *
   * @param text The text.
   * @returns When written.
   */
  write(text: string): Promise<void> {
    const next = this.#chain.then(async () => {
      const writer = this.#stream.getWriter();
      try {
        await writer.write(encoder.encode(text));
      } finally {
        writer.releaseLock();
      }
    });
    this.#chain = next.catch(() => {});
    return next;
  }

  /**
   * Writes a value as one line of JSON (pretty with `indent`).
   *
   * @param value The value.
   * @param indent Spaces of indentation, none for one line.
   * @returns When written.
   */
  json(value: unknown, indent?: number): Promise<void> {
    return this.write(`${JSON.stringify(value, null, indent)}\n`);
  }

  /**
   * Waits for every write so far.
   *
   * @returns When flushed.
   */
  flush(): Promise<void> {
    return this.#chain;
  }
}

/** Writes what comes in, a few KiB at a time. */
export class Buffered {
  #text = "";
  readonly #out: Out;

  /** @param out Where it goes. */
  constructor(out: Out) {
    this.#out = out;
  }

  /**
   * Queues text, writing when enough is queued.
   *
   * @param text The text.
   * @returns When queued or written.
   */
  async write(text: string): Promise<void> {
    this.#text += text;
    if (this.#text.length >= 65_536) await this.flush();
  }

  /**
   * Writes what is queued.
   *
   * @returns When written.
   */
  async flush(): Promise<void> {
    if (this.#text.length === 0) return;
    const text = this.#text;
    this.#text = "";
    await this.#out.write(text);
  }
}

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `12 MiB`.
 *
 * @param n Bytes.
 * @returns The text.
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/**
 * `1 document`, `2 documents`.
 *
 * @param n The count.
 * @param word The singular.
 * @param many The plural (default: `word` and an s).
 * @returns The text.
 */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/**
 * Text on one line (an error message for stderr).
 *
 * @param text The text.
 * @returns It with its line breaks folded.
 */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * Aligned columns, the last one not padded.
 *
 * @param header The column names.
 * @param rows The cells.
 * @param right Which columns are aligned right.
 * @returns The lines.
 */
export function layout(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly boolean[],
): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length))
  );
  const line = (cells: readonly string[]) =>
    cells.map((c, i) =>
      i === cells.length - 1 && !right[i]
        ? c
        : right[i]
        ? c.padStart(widths[i]!)
        : c.padEnd(widths[i]!)
    ).join("  ").trimEnd() + "\n";
  return line(header) + rows.map(line).join("");
}
