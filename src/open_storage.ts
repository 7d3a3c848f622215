/**
 * The storage behind `open()`: which one its options name (file, Deno KV,
 * a given storage, memory), opened, and the memory limit in bytes.
 *
 * @module
 */

import { checkKvOptions, type KvLike, KvStorage } from "./storage/kv.ts";
import { FileStorage } from "./storage/file.ts";
import { MemoryStorage } from "./storage/memory.ts";
import type { Storage } from "./storage/contract.ts";
import type { OpenOptions } from "./types.ts";
import { describeType } from "./validate.ts";
import { FILE_OPTIONS } from "./options.ts";

/**
 * The storage `open()` asked for: a file at `path`, Deno KV (`kv`), the
 * `storage` given, or memory.
 *
 * @param options The options of `open()`.
 * @returns The storage, open.
 * @throws {TypeError} When the options mix storages, or give one's option
 *   to another.
 */
export function openStorage(options: OpenOptions): Promise<Storage> {
  const action = "Cannot open the database";
  const { path, kv } = options;
  if (kv !== undefined) return openKvStorage(options, kv);
  if (options.prefix !== undefined) {
    throw new TypeError(
      `${action}: prefix is an option of Deno KV; give kv too`,
    );
  }
  if (path === undefined) {
    const stray = FILE_OPTIONS.find((name) => options[name] !== undefined);
    if (stray !== undefined) {
      throw new TypeError(
        `${action}: ${stray} is an option of file storage; give a path too`,
      );
    }
    const { storage } = options;
    if (storage === undefined) return Promise.resolve(new MemoryStorage());
    checkStorage(storage, action);
    return Promise.resolve(storage);
  }
  if (options.storage !== undefined) {
    throw new TypeError(
      `${action}: give either a path or a storage, not both`,
    );
  }
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(
      `${action}: path must be a non-empty string, got ${describeType(path)}`,
    );
  }
  return FileStorage.open(path, options);
}

/** The largest value the Deno KV storage takes. */
const KV_MAX_VALUE = 786_432;

async function openKvStorage(
  options: OpenOptions,
  kv: KvLike | string,
): Promise<Storage> {
  const action = "Cannot open the database";
  const other = options.path !== undefined
    ? "path"
    : options.storage !== undefined
    ? "storage"
    : FILE_OPTIONS.find((name) => options[name] !== undefined);
  if (other !== undefined) {
    throw new TypeError(
      `${action}: ${other} is not an option of Deno KV storage (kv)`,
    );
  }
  const settings = {
    closeKv: typeof kv === "string",
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    // Room for the codec's envelope (up to 67 bytes) around a record of
    // maxValueBytes, within what one atomic operation holds.
    maxValueBytes: typeof options.maxValueBytes === "number" &&
        options.maxValueBytes > KV_MAX_VALUE
      ? options.maxValueBytes // refused by KvStorage, with the figure
      : Math.min(KV_MAX_VALUE, (options.maxValueBytes ?? 65_536) + 1024),
  };
  if (typeof kv !== "string") return new KvStorage(kv, settings);
  const openKv = (globalThis as {
    Deno?: { openKv?: (path?: string) => Promise<KvLike> };
  }).Deno?.openKv;
  if (typeof openKv !== "function") {
    throw new TypeError(
      `${action}: Deno.openKv is missing; run Deno with --unstable-kv`,
    );
  }
  checkKvOptions(settings); // before anything is opened or made
  // A local file in a folder not made yet: made, as the file storage does.
  if (kv !== "" && kv !== ":memory:" && !/^[a-z][a-z0-9+.-]*:\/\//i.test(kv)) {
    const cut = Math.max(kv.lastIndexOf("/"), kv.lastIndexOf("\\"));
    if (cut > 0) await Deno.mkdir(kv.slice(0, cut), { recursive: true });
  }
  const opened = await openKv(kv === "" ? undefined : kv);
  try {
    return new KvStorage(opened, settings);
  } catch (e) {
    opened.close();
    throw e;
  }
}

/**
 * The memory limit in bytes (`Infinity` when none).
 *
 * @param limit Bytes, or a percentage of the free memory such as `"25%"`.
 * @returns Bytes.
 * @throws {RangeError} When it is not above 0 or not a percentage.
 * @throws {TypeError} When a percentage cannot be read (no --allow-sys).
 */
export function resolveMemoryLimit(limit: OpenOptions["memoryLimit"]): number {
  const action = "Cannot open the database";
  if (limit === undefined) return Infinity;
  if (typeof limit === "number") {
    if (!(limit > 0)) {
      throw new RangeError(
        `${action}: memoryLimit must be a number of bytes above 0, got ${limit}`,
      );
    }
    return limit;
  }
  const match = typeof limit === "string"
    ? /^(\d+(?:\.\d+)?)%$/.exec(limit)
    : null;
  const percent = match === null ? NaN : Number(match[1]);
  if (!(percent > 0 && percent <= 100)) {
    throw new RangeError(
      `${action}: memoryLimit must be bytes or a percentage such as "25%", got ${
        describeType(limit)
      }`,
    );
  }
  let available: number;
  try {
    available = Deno.systemMemoryInfo().available;
  } catch (cause) {
    throw new TypeError(
      `${action}: memoryLimit "${limit}" needs the system's free memory, which needs --allow-sys`,
      { cause },
    );
  }
  return Math.floor(available * percent / 100);
}

/** The methods every storage has (src/storage/contract.ts). */
const STORAGE_METHODS = ["get", "getMany", "scan", "commit", "close"] as const;

/**
 * Checks that `open({ storage })` was given a storage.
 *
 * @param storage What was given.
 * @param action For the message.
 * @throws {TypeError} When it lacks `capabilities` or a method.
 */
function checkStorage(storage: unknown, action: string): void {
  const s = storage as Record<string, unknown> | null;
  const missing = typeof s !== "object" || s === null
    ? "capabilities"
    : typeof s.capabilities !== "object" || s.capabilities === null
    ? "capabilities"
    : STORAGE_METHODS.find((m) => typeof s[m] !== "function");
  if (missing !== undefined) {
    throw new TypeError(
      `${action}: storage must implement the Storage contract (it has no ${missing}), got ${
        describeType(storage)
      }`,
    );
  }
}
