/**
 * Truncation of the file log (format version 2): a compacted file carries a
 * snapshot end frame, so a cut anywhere inside its snapshot (at a frame
 * boundary or not) is an IntegrityError naming the offset, and the file is
 * left as it is; only an incomplete last frame after the snapshot is a torn
 * tail, cut off, counted in `stats()` and told to the logger. Version-1
 * files still open, and become version 2 at their next compaction.
 */

import assert from "node:assert/strict";
import { IntegrityError } from "../mod.ts";
import { faults, FileStorage } from "../src/storage/file.ts";
import {
  decodeHeader,
  encodeFrame,
  encodeHeader,
  FILE_FORMAT_VERSION,
  type FileHeader,
  FLAG_SNAPSHOT,
  HEADER_BYTES,
  KIND_SNAPSHOT_END,
  readFrame,
} from "../src/storage/file_format.ts";
import type { Logger } from "../src/logger.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const key = (s: string): Uint8Array => encoder.encode(s);

async function tempDir(): Promise<
  { dir: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "tether-truncation-" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

interface Entry {
  message: string;
  data: Readonly<Record<string, unknown>>;
}

/** A logger that keeps what it is told, by level. */
function recorder(): Logger & { seen: Record<string, Entry[]> } {
  const seen: Record<string, Entry[]> = {
    debug: [],
    info: [],
    warn: [],
    error: [],
  };
  const at =
    (level: string) =>
    (message: string, data: Readonly<Record<string, unknown>>) =>
      seen[level]!.push({ message, data });
  return {
    seen,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
}

async function contents(storage: FileStorage): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const page of storage.scan({})) {
    for (const e of page) {
      const v = e.value;
      out.set(decoder.decode(e.key), `${v.length}:${v[0]}:${v[v.length - 1]}`);
    }
  }
  return out;
}

/** Commits one set and waits until it is durable. */
async function putDurably(
  storage: FileStorage,
  k: string,
  v: Uint8Array,
): Promise<void> {
  const r = await storage.commit({ sets: [{ key: key(k), value: v }] });
  assert(r.ok);
  await r.durable;
}

function valueOf(i: number, size: number): Uint8Array {
  const v = new Uint8Array(size);
  v.fill(i & 0xff);
  v[0] = (i * 7) & 0xff;
  return v;
}

/** The frames of a log: offset, end and kind of each. */
function framesOf(
  bytes: Uint8Array,
  from = HEADER_BYTES,
): { at: number; end: number; kind: number }[] {
  const out: { at: number; end: number; kind: number }[] = [];
  let at = from;
  while (at < bytes.length) {
    const read = readFrame(bytes, at, 0);
    if (!("frame" in read)) {
      throw new Error(`no frame at ${at}: ${read.reason}`);
    }
    out.push({ at, end: read.end, kind: read.frame.kind });
    at = read.end;
  }
  return out;
}

/**
 * A compacted log: about 3 MiB of live data (several snapshot frames),
 * commits made while the compaction ran (covered by the end frame), then
 * commits appended after it.
 */
async function compactedLog(path: string): Promise<{
  bytes: Uint8Array;
  /** Where the snapshot end frame ends. */
  snapshotEnd: number;
  /** Contents when the file ends at `snapshotEnd`, and in full. */
  atSnapshot: Map<string, string>;
  full: Map<string, string>;
  /** Where the last frame starts. */
  lastStart: number;
  beforeLast: Map<string, string>;
}> {
  const storage = await FileStorage.open(path);
  const put = (k: string, v: Uint8Array) => putDurably(storage, k, v);
  for (let i = 0; i < 12; i++) await put(`big${i}`, valueOf(i, 256 * 1024));
  for (let i = 0; i < 12; i++) await put(`big${i}`, valueOf(i + 1, 256 * 1024));
  const during: Promise<unknown>[] = [];
  faults.compactStep = (step) => {
    if (step !== "open") return;
    for (let i = 0; i < 3; i++) {
      during.push(
        putDurably(storage, `during${i}`, valueOf(i, 10)),
      );
    }
  };
  try {
    assert.equal(await storage.compact(), true);
  } finally {
    faults.compactStep = undefined;
  }
  await Promise.all(during);
  const atSnapshot = await contents(storage);
  const snapshotEnd = storage.stats().fileBytes;
  for (let i = 0; i < 3; i++) await put(`after${i}`, valueOf(i, 50));
  const beforeLast = await contents(storage);
  const lastStart = storage.stats().fileBytes;
  await put("after3", valueOf(3, 500));
  const full = await contents(storage);
  await storage.close();
  const bytes = await Deno.readFile(path);
  return { bytes, snapshotEnd, atSnapshot, full, lastStart, beforeLast };
}

async function assertRefused(
  path: string,
  offset: number,
  what: string,
): Promise<void> {
  const before = await Deno.readFile(path);
  for (const options of [{}, { readOnly: true }]) {
    await assert.rejects(FileStorage.open(path, options), (e: unknown) => {
      assert(e instanceof IntegrityError, `${what}: ${e}`);
      assert.match(e.message, new RegExp(`damaged at byte ${offset} of`), what);
      return true;
    });
  }
  assert.deepEqual(
    await Deno.readFile(path),
    before,
    `${what}: file unchanged`,
  );
}

Deno.test("a compacted file cut at any frame boundary inside its snapshot, or inside any of its frames, is an IntegrityError naming the offset, and the file is not changed", async () => {
  await using tmp = await tempDir();
  const log = await compactedLog(`${tmp.dir}/source.tdb`);
  const header = decodeHeader(log.bytes) as FileHeader;
  assert.equal(header.version, FILE_FORMAT_VERSION);
  assert.equal(header.flags & FLAG_SNAPSHOT, FLAG_SNAPSHOT);
  const frames = framesOf(log.bytes);
  const endFrame = frames.findIndex((f) => f.kind === KIND_SNAPSHOT_END);
  assert.equal(frames[endFrame]!.end, log.snapshotEnd);
  const snapshot = frames.slice(0, endFrame + 1);
  // Several snapshot frames, then the 3 commits made during the compaction.
  assert(snapshot.length >= 6, `${snapshot.length} frames in the snapshot`);
  const path = `${tmp.dir}/cut.tdb`;
  let cuts = 0;
  for (const frame of snapshot) {
    const inside = [
      1,
      12,
      21,
      22,
      (frame.end - frame.at) >> 1,
      frame.end - frame.at - 1,
    ];
    for (const cut of [frame.at, ...inside.map((d) => frame.at + d)]) {
      await Deno.writeFile(path, log.bytes.subarray(0, cut));
      // The first frame that does not read, or the end of the file.
      const offset = cut === frame.at ? cut : frame.at;
      await assertRefused(path, offset, `cut at ${cut}`);
      cuts++;
    }
  }
  assert(cuts > 30);
  // Inside the header of a compacted file (once its flags are there).
  for (const cut of [11, 40, HEADER_BYTES - 1]) {
    await Deno.writeFile(path, log.bytes.subarray(0, cut));
    await assertRefused(path, cut, `cut at ${cut}`);
  }
  // A whole frame taken out of the middle of the snapshot: the end frame's
  // count, length and checksum say so.
  const second = snapshot[1]!;
  const spliced = new Uint8Array(log.bytes.length - (second.end - second.at));
  spliced.set(log.bytes.subarray(0, second.at));
  spliced.set(log.bytes.subarray(second.end), second.at);
  await Deno.writeFile(path, spliced);
  await assertRefused(
    path,
    snapshot[endFrame]!.at - (second.end - second.at),
    "a snapshot frame removed",
  );
});

Deno.test("a compacted file: a cut inside its last frame is a torn tail, cut off, in stats() and told to the logger; a cut at the end of the snapshot keeps the snapshot", async () => {
  await using tmp = await tempDir();
  const log = await compactedLog(`${tmp.dir}/source.tdb`);
  const path = `${tmp.dir}/torn.tdb`;
  for (
    const cut of [log.lastStart + 1, log.lastStart + 30, log.bytes.length - 1]
  ) {
    await Deno.writeFile(path, log.bytes.subarray(0, cut));
    const logger = recorder();
    const storage = await FileStorage.open(path, { logger });
    try {
      assert.equal(storage.stats().tornBytes, cut - log.lastStart);
      assert.deepEqual(await contents(storage), log.beforeLast);
      const torn = logger.seen.warn!.filter((e) =>
        e.data.event === "torn-tail"
      );
      assert.equal(torn.length, 1);
      assert.equal(torn[0]!.data.offset, log.lastStart);
      assert.equal(torn[0]!.data.bytes, cut - log.lastStart);
      assert.match(torn[0]!.message, /torn\.tdb/);
    } finally {
      await storage.close();
    }
    assert.equal((await Deno.stat(path)).size, log.lastStart);
  }
  // Exactly at the end of the snapshot end frame: the commits after it were
  // never written, as far as anyone can tell (documented).
  await Deno.writeFile(path, log.bytes.subarray(0, log.snapshotEnd));
  const storage = await FileStorage.open(path);
  try {
    assert.equal(storage.stats().tornBytes, 0);
    assert.deepEqual(await contents(storage), log.atSnapshot);
  } finally {
    await storage.close();
  }
});

Deno.test("a version-1 file opens, takes commits as version 1, and becomes version 3 at its next compaction", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/v1.tdb`;
  const header = encodeHeader({
    version: 1,
    flags: 0,
    createdAt: 1_700_000_000_000,
    baseSeq: 0,
    salt: new Uint8Array(16),
  });
  const frames = [
    encodeFrame(1, [{ key: key("a"), value: key("1") }], [], 1),
    encodeFrame(
      2,
      [{ key: key("b"), value: key("2") }, {
        key: key("c"),
        value: key("3"),
      }],
      [],
      1,
    ),
    encodeFrame(3, [], [key("b")], 1),
  ];
  const parts = [header, ...frames];
  const v1 = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    v1.set(p, at);
    at += p.length;
  }
  // A kind-2 frame means nothing in version 1 (and a header flag for it is
  // refused).
  await Deno.writeFile(path, v1);
  const read = async (storage: FileStorage) =>
    Object.fromEntries([...await contents(storage)].map(([k, v]) => [k, v]));
  {
    const storage = await FileStorage.open(path);
    assert.deepEqual(await read(storage), { a: "1:49:49", c: "1:51:51" });
    await putDurably(storage, "d", key("4"));
    await storage.close();
  }
  assert.equal(
    (decodeHeader(await Deno.readFile(path)) as FileHeader).version,
    1,
  );
  {
    const storage = await FileStorage.open(path);
    assert.deepEqual(await read(storage), {
      a: "1:49:49",
      c: "1:51:51",
      d: "1:52:52",
    });
    assert.equal(await storage.compact(), true);
    await storage.close();
  }
  const after = decodeHeader(await Deno.readFile(path)) as FileHeader;
  assert.equal(after.version, FILE_FORMAT_VERSION);
  assert.equal(after.flags & FLAG_SNAPSHOT, FLAG_SNAPSHOT);
  assert.equal(after.createdAt, 1_700_000_000_000);
  const storage = await FileStorage.open(path, { readOnly: true });
  assert.deepEqual(await read(storage), {
    a: "1:49:49",
    c: "1:51:51",
    d: "1:52:52",
  });
  await storage.close();
  // A version-1 header with the snapshot flag is not a log.
  const flagged = encodeHeader({
    version: 1,
    flags: FLAG_SNAPSHOT,
    createdAt: 0,
    baseSeq: 0,
    salt: new Uint8Array(16),
  });
  await Deno.writeFile(path, flagged);
  await assert.rejects(FileStorage.open(path), IntegrityError);
});

Deno.test("logger: a repair warns with each damaged range; a compaction is a debug message", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/logged.tdb`;
  const logger = recorder();
  {
    const storage = await FileStorage.open(path, { logger, logLevel: "debug" });
    for (let i = 0; i < 4; i++) {
      await putDurably(storage, `k${i}`, valueOf(i, 100));
    }
    assert.equal(await storage.compact(), true);
    await storage.close();
  }
  const compaction = logger.seen.debug!.filter((e) =>
    e.data.event === "compaction"
  );
  assert.equal(compaction.length, 1);
  assert.equal(typeof compaction[0]!.data.after, "number");
  const bytes = await Deno.readFile(path);
  const frames = framesOf(bytes);
  bytes[frames[1]!.at + 30]! ^= 1;
  await Deno.writeFile(path, bytes);
  const storage = await FileStorage.open(path, { logger, repair: true });
  await storage.close();
  const repairs = logger.seen.warn!.filter((e) => e.data.event === "repair");
  assert(repairs.length >= 1);
  assert.equal(repairs[0]!.data.offset, frames[1]!.at);
});

Deno.test("salvage of a compacted file cut inside its snapshot: the intact frames are readable, the missing end is listed as damage, the file is not changed", async () => {
  await using tmp = await tempDir();
  const log = await compactedLog(`${tmp.dir}/source.tdb`);
  const frames = framesOf(log.bytes);
  const path = `${tmp.dir}/cut.tdb`;
  // Cut after the second snapshot frame: the first two frames' keys remain.
  const cut = frames[2]!.at;
  await Deno.writeFile(path, log.bytes.subarray(0, cut));
  const storage = await FileStorage.open(path, {
    readOnly: true,
    repair: true,
  });
  try {
    const kept = await contents(storage);
    assert(kept.size > 0 && kept.size < log.atSnapshot.size);
    for (const [k, v] of kept) assert.equal(log.atSnapshot.get(k), v, k);
    const { damage } = storage.stats();
    assert.equal(damage.length, 1);
    assert.equal(damage[0]!.offset, cut);
    assert.equal(damage[0]!.bytes, 0);
    assert.match(damage[0]!.reason, /cut short/);
  } finally {
    await storage.close();
  }
  assert.deepEqual(await Deno.readFile(path), log.bytes.subarray(0, cut));
});
