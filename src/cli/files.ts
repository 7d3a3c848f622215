/**
 * Input and output files: written beside and renamed into place, read with
 * their size known, or stdin/stdout for `-`; with progress.
 *
 * @module
 */

import type { Context } from "./context.ts";
import { CliError, ExitCode } from "./exit.ts";
import type { Out } from "./output.ts";
import { counting, Progress, type ProgressSource } from "./progress.ts";

/**
 * A file written beside its final name and renamed over it once complete
 * and fsynced, so that a failed export or backup never leaves a truncated
 * file where a good one was. (A path that is not a regular file, such as a
 * FIFO, is written directly.)
 */
export interface FileSink {
  /** Where to write. */
  readonly writable: WritableStream<Uint8Array>;
  /** Bytes written so far. */
  readonly bytes: () => number;
  /** Renames it into place (after the writer closed the stream). */
  commit(): Promise<void>;
  /** Removes what was written (after a failure). */
  discard(): Promise<void>;
}

/**
 * Opens a file to write beside `path`.
 *
 * @param path The final name.
 * @returns The sink.
 */
export async function fileSink(path: string): Promise<FileSink> {
  let direct = false;
  try {
    direct = !(await Deno.stat(path)).isFile;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const temp = direct
    ? path
    : `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(temp, { write: true, create: true, truncate: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        ExitCode.NoInput,
        `cannot create '${path}': its directory does not exist`,
      );
    }
    throw e;
  }
  let bytes = 0;
  let closed = false;
  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  return {
    writable: new WritableStream({
      async write(chunk) {
        let at = 0;
        while (at < chunk.length) at += await file.write(chunk.subarray(at));
        bytes += chunk.length;
      },
      async close() {
        if (!direct) await file.sync();
        close();
      },
      abort() {
        close();
      },
    }),
    bytes: () => bytes,
    async commit() {
      close();
      if (direct) return;
      await Deno.rename(temp, path);
      await syncDir(path);
    },
    async discard() {
      close();
      if (!direct) await Deno.remove(temp).catch(() => {});
    },
  };
}

/** Best effort: makes a rename in the file's directory durable. */
async function syncDir(path: string): Promise<void> {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  try {
    using handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Not every platform opens directories.
  }
}

/**
 * Runs `write` with a stream to `<file>` (beside it, then renamed) or to
 * stdout (`-`), with progress: bytes written, against `total` when given
 * (then in the unit it counts).
 *
 * @param ctx The command's context.
 * @param file The path, or `-`.
 * @param label The progress label.
 * @param write Writes the stream (and closes it).
 * @param source How far along, when the command knows better than bytes.
 * @returns What `write` returns.
 */
export async function toOutput<R>(
  ctx: Context,
  file: string,
  label: string,
  write: (stream: WritableStream<Uint8Array>) => Promise<R>,
  source?: { readonly progress: ProgressSource; readonly unit: "items" },
): Promise<R> {
  const progressOf = (bytes: () => number) =>
    new Progress(
      ctx.err,
      ctx.stderrIsTerminal,
      label,
      source?.progress ?? (() => ({ done: bytes() })),
      source?.unit ?? "bytes",
    );
  if (file === "-") {
    const counter = counting();
    const piping = counter.stream.readable.pipeTo(ctx.out.stream, {
      preventClose: true,
    });
    const progress = progressOf(counter.bytes);
    try {
      const result = await write(counter.stream.writable);
      await piping;
      return result;
    } catch (e) {
      await piping.catch(() => {});
      throw e;
    } finally {
      await progress.stop();
    }
  }
  const sink = await fileSink(file);
  const progress = progressOf(sink.bytes);
  try {
    const result = await write(sink.writable);
    await sink.commit();
    return result;
  } catch (e) {
    await sink.discard();
    throw e;
  } finally {
    await progress.stop();
  }
}

/**
 * The size of an input file; exit 66 when it is missing.
 *
 * @param file The path.
 * @returns Its size in bytes.
 */
export async function inputSize(file: string): Promise<number> {
  try {
    const stat = await Deno.stat(file);
    if (!stat.isFile) {
      throw new CliError(ExitCode.NoInput, `cannot read '${file}': not a file`);
    }
    return stat.size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        ExitCode.NoInput,
        `cannot open '${file}': no such file`,
      );
    }
    throw e;
  }
}

/**
 * Runs `read` on the bytes of `<file>` or of stdin (`-`), read once, with
 * progress: percentage, rate and ETA for a file (its size is known), a
 * spinner with the bytes read for stdin.
 *
 * @param ctx The command's context.
 * @param file The path, or `-`.
 * @param label The progress label.
 * @param read Reads the stream.
 * @returns What `read` returns.
 */
export async function fromInput<R>(
  ctx: Context,
  file: string,
  label: string,
  read: (source: ReadableStream<Uint8Array>) => Promise<R>,
): Promise<R> {
  const total = file === "-" ? undefined : await inputSize(file);
  const counter = counting();
  const progress = new Progress(
    ctx.err,
    ctx.stderrIsTerminal,
    label,
    () => ({ done: counter.bytes(), total }),
  );
  const handle = file === "-"
    ? undefined
    : await Deno.open(file, { read: true });
  try {
    const input = handle?.readable ?? ctx.stdin();
    return await read(input.pipeThrough(counter.stream));
  } finally {
    try {
      handle?.close();
    } catch {
      // Already closed at the end of its stream.
    }
    await progress.stop();
  }
}

/**
 * Where a summary goes: stderr when stdout carries the data.
 *
 * @param ctx The command's context.
 * @param file The output path, or `-`.
 * @returns The stream for the summary.
 */
export function report(ctx: Context, file: string): Out {
  return file === "-" ? ctx.err : ctx.out;
}
