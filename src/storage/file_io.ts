/**
 * The file storage's I/O helpers, its error wording, and the fault points
 * tests use.
 *
 * @module
 */

import { QuotaError, TetherError } from "../errors.ts";
import { concatBytes } from "../bytes.ts";

/**
 * Points where tests make writes fail or stop compaction. Not part of the
 * public API.
 */
export const faults: {
  /** Called before each write to the log; throw to fail it. */
  beforeWrite?: (() => void) | undefined;
  /** Called at each step of a compaction; throw to stop it there. */
  compactStep?: ((step: string) => void) | undefined;
  /**
   * Called before each write to a compaction's new file, with its length;
   * throw to fail it (as a full disk would, with an error whose `code` is
   * `"ENOSPC"`).
   */
  compactWrite?: ((bytes: number) => void) | undefined;
} = {};
/** The directory of a path. */
export function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/** Helper of the file storage. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}

/** Helper of the file storage. */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}

/** Helper of the file storage. */
export async function readAll(file: Deno.FsFile): Promise<Uint8Array> {
  const { size } = await file.stat();
  const out = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const n = await file.read(out.subarray(at));
    if (n === null) break;
    at += n;
  }
  return at === size ? out : out.subarray(0, at);
}

/** Helper of the file storage. */
export async function syncDir(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const dir = await Deno.open(dirname(path), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** Helper of the file storage. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Helper of the file storage. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    /no space left|quota exceeded/i.test(errorText(e));
}

/** The error a failed compaction rejects with. */
export function compactionError(
  path: string,
  cause: unknown,
  renamed: boolean,
): Error {
  if (renamed) {
    return new TetherError(
      `Cannot finish compacting '${path}': the new file replaced the log, but ${
        errorText(cause)
      }; the database uses the new file`,
      { cause },
    );
  }
  if (cause instanceof TetherError) return cause;
  const message = `Cannot compact '${path}': ${
    errorText(cause)
  }; the new file was removed and the database is unchanged, still in the old file`;
  return isNoSpace(cause)
    ? new QuotaError(message, { cause })
    : new TetherError(message, { cause });
}
