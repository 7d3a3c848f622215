/**
 * The buffers between a query run and its consumer: a sink that holds a
 * chunk's results until they are taken, and the iterator of a cursor's
 * values that hands them out (internal to the cursor).
 *
 * @module
 */

import type { StorageEntry } from "../storage/contract.ts";
import type { StoredRecord } from "../value_codec.ts";
import type { Sink } from "./scan_page.ts";

/** A sink that holds results until an iterating consumer takes them. */
export class Buffered implements Sink {
  #records: StoredRecord[] = [];
  #entries: StorageEntry[] = [];
  readonly #withEntries: boolean;

  constructor(withEntries = false) {
    this.#withEntries = withEntries;
  }

  get pending(): boolean {
    return this.#records.length > 0;
  }

  add(record: StoredRecord, entry: StorageEntry): void {
    this.#records.push(record);
    if (this.#withEntries) this.#entries.push(entry);
  }

  take(): StoredRecord[] {
    const out = this.#records;
    this.#records = [];
    return out;
  }

  takeEntries(): [StoredRecord, StorageEntry][] {
    const records = this.take();
    const entries = this.#entries;
    this.#entries = [];
    return records.map((r, i) => [r, entries[i]!]);
  }
}

/**
 * The iterator of a cursor's values: hands out the buffered results of a
 * chunk with one settled promise each (no generator frame per value) and
 * runs the scan on for the next chunk when they are taken. Calls wait for
 * the one before them, as an async generator's do.
 */
export class Values<T> implements AsyncIterator<T, undefined> {
  readonly #makeShape: () => (value: unknown) => unknown;
  readonly #start: (sink: Buffered) => AsyncGenerator<void>;
  readonly #sink = new Buffered();
  #shape: ((value: unknown) => unknown) | undefined;
  #run: AsyncGenerator<void> | undefined;
  #buffer: StoredRecord[] = [];
  #at = 0;
  #done = false;
  /** The last call still running, if any. */
  #busy: Promise<unknown> | undefined;

  constructor(
    makeShape: () => (value: unknown) => unknown,
    start: (sink: Buffered) => AsyncGenerator<void>,
  ) {
    this.#makeShape = makeShape;
    this.#start = start;
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#busy === undefined && this.#at < this.#buffer.length) {
      const record = this.#buffer[this.#at++]!;
      return Promise.resolve({
        value: this.#shape!(record.value) as T,
        done: false,
      });
    }
    return this.#queue(() => this.#step());
  }

  return(): Promise<IteratorResult<T, undefined>> {
    return this.#queue(async () => {
      this.#done = true;
      this.#buffer = [];
      this.#at = 0;
      await this.#run?.return(undefined);
      return { value: undefined, done: true };
    });
  }

  #queue(
    fn: () => Promise<IteratorResult<T, undefined>>,
  ): Promise<IteratorResult<T, undefined>> {
    const before = this.#busy;
    const call = before === undefined ? fn() : before.then(fn, fn);
    this.#busy = call;
    const clear = () => {
      if (this.#busy === call) this.#busy = undefined;
    };
    call.then(clear, clear);
    return call;
  }

  async #step(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      if (this.#at < this.#buffer.length) {
        const record = this.#buffer[this.#at++]!;
        return { value: this.#shape!(record.value) as T, done: false };
      }
      if (this.#done) return { value: undefined, done: true };
      let step: IteratorResult<void>;
      try {
        if (this.#run === undefined) {
          this.#shape = this.#makeShape();
          this.#run = this.#start(this.#sink);
        }
        step = await this.#run.next();
      } catch (e) {
        this.#done = true;
        throw e;
      }
      this.#buffer = this.#sink.take();
      this.#at = 0;
      if (step.done === true) this.#done = true;
    }
  }
}
