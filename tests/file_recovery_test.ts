/**
 * Crash recovery of the file storage: torn tails, zero-filled tails, flipped
 * bytes (refused, then salvaged by `repair`), interrupted compactions, disk
 * errors during writes, and files that are not logs at all.
 */

import assert from "node:assert/strict";
import {
  type Database,
  DuplicateKeyError,
  type FileStorageStats,
  IntegrityError,
  open,
  QuotaError,
  TetherError,
} from "../mod.ts";
import { faults, FileStorage } from "../src/storage/file.ts";
import { encodeFrame } from "../src/storage/file_format.ts";
import { crc32c } from "../src/storage/crc32c.ts";
import { mulberry32 as prng } from "../bench/data.ts";

const HEADER_BYTES = 64;
const FRAME_HEADER_BYTES = 21;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// --- Helpers ---------------------------------------------------------------

async function tempDir(): Promise<
  { dir: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "tether-recovery-" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function fileStats(db: Database<unknown>): FileStorageStats {
  return db.stats().storageStats as FileStorageStats;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function damagedCopies(dir: string, name: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(`${name}.damaged-`)) out.push(entry.name);
  }
  return out;
}

function resetFaults(): void {
  faults.beforeWrite = undefined;
  faults.compactStep = undefined;
}

function diskError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The payload length written in the frame header at `at`. */
function frameLength(bytes: Uint8Array, at: number): number {
  return FRAME_HEADER_BYTES +
    new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, true);
}

function withZerosFrom(bytes: Uint8Array, from: number): Uint8Array {
  const out = bytes.slice();
  out.fill(0, from);
  return out;
}

function withZerosAppended(bytes: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(bytes.length + n);
  out.set(bytes);
  return out;
}

/** Whether `needle` occurs in `haystack`. */
function contains(haystack: Uint8Array, needle: string): boolean {
  const n = encoder.encode(needle);
  outer: for (let i = 0; i + n.length <= haystack.length; i++) {
    for (let j = 0; j < n.length; j++) {
      if (haystack[i + j] !== n[j]) continue outer;
    }
    return true;
  }
  return false;
}

// --- A document log with indexes ---------------------------------------------

interface User {
  _id: string;
  email: string;
  city: string;
  n: number;
}

const USER_INDEXES = [
  { fields: "email", unique: true },
  { fields: "city" },
] as const;

const byId = (a: User, b: User) => a._id < b._id ? -1 : a._id > b._id ? 1 : 0;

/**
 * A log of single-commit document writes to "users" (unique `email`,
 * secondary `city`) whose last commit is `final`; with the models before and
 * after it and the byte range of its frame.
 */
interface UserLog {
  bytes: Uint8Array;
  /** Where the last frame starts (the file size before the final commit). */
  before: number;
  /** The file size after it. */
  after: number;
  prior: Map<string, User>;
  full: Map<string, User>;
  /** Emails and cities worth querying (those of both models). */
  emails: string[];
  cities: string[];
}

async function buildUserLog(
  dir: string,
  final: "insert" | "update",
): Promise<UserLog> {
  const path = `${dir}/source-${final}.tdb`;
  const model = new Map<string, User>();
  const cities = ["Oslo", "Rome", "Lima"];
  {
    await using db = await open({ path, ttlCheckInterval: Infinity });
    const users = db.collection<User>("users", { indexes: [...USER_INDEXES] });
    for (let i = 0; i < 6; i++) {
      const doc = {
        _id: `u${i}`,
        email: `u${i}@example.com`,
        city: cities[i % 3]!,
        n: i,
      };
      await users.insert(doc);
      model.set(doc._id, doc);
    }
    assert.equal(
      await users.update({ _id: "u1" }, { $set: { city: "Oslo" } }),
      1,
    );
    model.set("u1", { ...model.get("u1")!, city: "Oslo" });
    assert(await users.delete("u2"));
    model.delete("u2");
    const prior = new Map(model);
    const before = (await Deno.stat(path)).size;
    assert.equal(fileStats(db).fileBytes, before);
    if (final === "insert") {
      const doc = { _id: "u9", email: "u9@example.com", city: "Quito", n: 9 };
      await users.insert(doc);
      model.set(doc._id, doc);
    } else {
      await users.update({ _id: "u3" }, {
        $set: { email: "moved@example.com", city: "Quito" },
      });
      model.set("u3", {
        ...model.get("u3")!,
        email: "moved@example.com",
        city: "Quito",
      });
    }
    const after = (await Deno.stat(path)).size;
    await db.close();
    const bytes = await Deno.readFile(path);
    assert.equal(bytes.length, after);
    // The final write is exactly one frame.
    assert.equal(before + frameLength(bytes, before), after);
    const all = [...prior.values(), ...model.values()];
    return {
      bytes,
      before,
      after,
      prior,
      full: model,
      emails: [...new Set(all.map((u) => u.email))],
      cities: [...new Set([...all.map((u) => u.city), "Nowhere"])],
    };
  }
}

/** The documents, and every index answer, match the model exactly. */
async function checkUsers(
  db: Database<unknown>,
  model: Map<string, User>,
  log: Pick<UserLog, "emails" | "cities">,
  items: number = model.size,
): Promise<void> {
  const users = db.collection<User>("users");
  const expected = [...model.values()].sort(byId);
  assert.equal(await users.count(), model.size);
  assert.equal(db.stats().items, items);
  assert.deepEqual(await users.all(), expected);
  for (const email of log.emails) {
    const holder = expected.find((u) => u.email === email) ?? null;
    assert.deepEqual(await users.findOne({ email }), holder, email);
    assert.equal(await users.count({ email }), holder === null ? 0 : 1);
  }
  for (const city of log.cities) {
    const inCity = expected.filter((u) => u.city === city);
    assert.deepEqual(await users.find({ city }).toArray(), inCity, city);
    // Answered from the index entries alone: a stale entry would show here.
    const plan = await users.find({ city }).explain("count");
    assert.equal(plan.index, "city_1");
    assert.equal(plan.returned, inCity.length, city);
  }
  assert.equal(
    (await users.find({ email: "x" }).explain()).index,
    "email_1",
  );
}

// --- 1. Torn tails -------------------------------------------------------------

Deno.test("a cut at every byte of the last frame is a torn tail: earlier commits and their index entries are kept", async () => {
  await using tmp = await tempDir();
  for (const final of ["insert", "update"] as const) {
    const log = await buildUserLog(tmp.dir, final);
    const path = `${tmp.dir}/cut-${final}.tdb`;
    for (let cut = log.before; cut <= log.after; cut++) {
      await Deno.writeFile(path, log.bytes.subarray(0, cut));
      const torn = cut === log.after ? 0 : cut - log.before;
      const model = cut === log.after ? log.full : log.prior;
      {
        await using db = await open({ path, ttlCheckInterval: Infinity });
        const stats = fileStats(db);
        assert.equal(stats.tornBytes, torn, `cut at ${cut}`);
        assert.equal(stats.repairedRanges, 0);
        assert.equal(stats.damagedCopy, undefined);
        assert.equal(stats.fileBytes, cut - torn);
        await checkUsers(db, model, log);
      }
      // Physically cut off: the next open finds nothing torn.
      assert.equal((await Deno.stat(path)).size, cut - torn);
      await using db = await open({ path, ttlCheckInterval: Infinity });
      assert.equal(fileStats(db).tornBytes, 0);
      assert.equal(db.stats().items, model.size);
      if (cut === log.before + 1 || cut === log.after - 1) {
        // The cut-off write left no unique index entry behind: it can be
        // made again, and then it is there after a reopen.
        const users = db.collection<User>("users");
        if (final === "insert") {
          await users.insert(log.full.get("u9")!);
        } else {
          await users.update({ _id: "u3" }, {
            $set: { email: "moved@example.com", city: "Quito" },
          });
        }
        await db.close();
        await using again = await open({ path, ttlCheckInterval: Infinity });
        await checkUsers(again, log.full, log);
      }
    }
    assert(!(await damagedCopies(tmp.dir, `cut-${final}.tdb`)).length);
  }
});

Deno.test("a cut exactly at a frame boundary is nothing torn, and the file is left as it is", async () => {
  await using tmp = await tempDir();
  const log = await buildUserLog(tmp.dir, "insert");
  const path = `${tmp.dir}/boundary.tdb`;
  await Deno.writeFile(path, log.bytes.subarray(0, log.before));
  {
    await using db = await open({ path, ttlCheckInterval: Infinity });
    assert.equal(fileStats(db).tornBytes, 0);
    assert.equal(fileStats(db).fileBytes, log.before);
    await checkUsers(db, log.prior, log);
  }
  assert.deepEqual(
    await Deno.readFile(path),
    log.bytes.subarray(0, log.before),
  );
});

// --- 2. Zero-filled tails --------------------------------------------------------

Deno.test("zeros appended after the last frame are a torn tail, not damage", async () => {
  await using tmp = await tempDir();
  const log = await buildUserLog(tmp.dir, "insert");
  const path = `${tmp.dir}/zeros.tdb`;
  for (const n of [1, 20, 21, 22, 64, 4096]) {
    await Deno.writeFile(path, withZerosAppended(log.bytes, n));
    {
      await using db = await open({ path, ttlCheckInterval: Infinity });
      assert.equal(fileStats(db).tornBytes, n, `${n} zeros`);
      await checkUsers(db, log.full, log);
    }
    assert.deepEqual(await Deno.readFile(path), log.bytes);
  }
});

Deno.test("a last frame overwritten entirely with zeros is a torn tail", async () => {
  await using tmp = await tempDir();
  const log = await buildUserLog(tmp.dir, "update");
  const path = `${tmp.dir}/zeroed.tdb`;
  await Deno.writeFile(path, withZerosFrom(log.bytes, log.before));
  {
    await using db = await open({ path, ttlCheckInterval: Infinity });
    assert.equal(fileStats(db).tornBytes, log.after - log.before);
    await checkUsers(db, log.prior, log);
  }
  assert.equal((await Deno.stat(path)).size, log.before);
});

Deno.test("a last frame whose tail was overwritten with zeros is a torn tail", async () => {
  // Documented: "damaged bytes at the end that are all zeros" are a torn
  // tail: what a crash leaves when the file grew but the last pages of the
  // append never reached the disk. Here the zeros start inside the last
  // frame (in its header, or in its payload with the header intact) and run
  // for at least 16 bytes to the end of the file.
  // FAILS at the time of writing: only a frame that is zero from its very
  // first byte counts as torn; these are IntegrityErrors.
  await using tmp = await tempDir();
  const log = await buildUserLog(tmp.dir, "insert");
  const path = `${tmp.dir}/zero-tail.tdb`;
  const frame = log.after - log.before;
  const failures: string[] = [];
  for (const k of [1, 12, 20, 21, 22, 40, frame >> 1, frame - 16]) {
    const damaged = withZerosFrom(log.bytes, log.before + k);
    assert.notDeepEqual(damaged, log.bytes);
    await Deno.writeFile(path, damaged);
    try {
      await using db = await open({ path, ttlCheckInterval: Infinity });
      assert.equal(fileStats(db).tornBytes, frame);
      await checkUsers(db, log.prior, log);
    } catch (e) {
      failures.push(
        `zeros from byte ${k} of the ${frame}-byte last frame: ${e}`,
      );
    }
  }
  assert.deepEqual(failures, []);
});

// --- 3. Flipped bytes and repair -----------------------------------------------

interface ModelCommit {
  sets: [string, string][];
  deletes: string[];
}

/** Random commits over a few keys: overwrites, deletes, empty values. */
function modelCommits(random: () => number, count: number): ModelCommit[] {
  const commits: ModelCommit[] = [];
  const live = new Set<string>();
  for (let c = 0; c < count; c++) {
    const sets: [string, string][] = [];
    const deletes: string[] = [];
    const used = new Set<string>();
    const nSets = 1 + Math.floor(random() * 4);
    for (let i = 0; i < nSets; i++) {
      const key = `key-${Math.floor(random() * 8)}`;
      if (used.has(key)) continue;
      used.add(key);
      const value = `c${c}:` + "v".repeat(Math.floor(random() * 40));
      sets.push([key, value]);
    }
    for (const key of live) {
      if (!used.has(key) && random() < 0.15) {
        deletes.push(key);
        used.add(key);
      }
    }
    for (const [key] of sets) live.add(key);
    for (const key of deletes) live.delete(key);
    commits.push({ sets, deletes });
  }
  return commits;
}

/** The keys and values after every commit except those in `skip`. */
function replayModel(
  commits: readonly ModelCommit[],
  skip: ReadonlySet<number> = new Set(),
): Map<string, string> {
  const out = new Map<string, string>();
  commits.forEach((commit, i) => {
    if (skip.has(i)) return;
    for (const [key, value] of commit.sets) out.set(key, value);
    for (const key of commit.deletes) out.delete(key);
  });
  return out;
}

async function contents(storage: FileStorage): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const page of storage.scan({})) {
    for (const entry of page) {
      out.set(decoder.decode(entry.key), decoder.decode(entry.value));
    }
  }
  return out;
}

/** Writes the commits through FileStorage; returns each frame's start. */
async function writeModelLog(
  path: string,
  commits: readonly ModelCommit[],
): Promise<{ bytes: Uint8Array; starts: number[] }> {
  const storage = await FileStorage.open(path);
  const starts: number[] = [];
  try {
    for (const commit of commits) {
      starts.push(storage.stats().fileBytes);
      const result = await storage.commit({
        sets: commit.sets.map(([k, v]) => ({
          key: encoder.encode(k),
          value: encoder.encode(v),
        })),
        deletes: commit.deletes.map((k) => encoder.encode(k)),
      });
      assert(result.ok);
      await result.durable;
    }
    starts.push(storage.stats().fileBytes);
  } finally {
    await storage.close();
  }
  const bytes = await Deno.readFile(path);
  assert.equal(starts[0], HEADER_BYTES);
  assert.equal(starts[starts.length - 1], bytes.length);
  for (let i = 0; i + 1 < starts.length; i++) {
    assert.equal(starts[i]! + frameLength(bytes, starts[i]!), starts[i + 1]);
  }
  return { bytes, starts };
}

/** The index of the frame holding byte `at`, or -1 for the header. */
function frameAt(starts: readonly number[], at: number): number {
  if (at < HEADER_BYTES) return -1;
  let i = 0;
  while (starts[i + 1]! <= at) i++;
  return i;
}

/**
 * Opens `damaged` at `path`: a plain open must refuse it without touching
 * it; a repair keeps exactly `model` and reports `dropped` bytes in one
 * range; afterwards a plain open works.
 */
async function expectRepair(
  dir: string,
  name: string,
  damaged: Uint8Array,
  expected: {
    message: RegExp;
    model: Map<string, string>;
    ranges: number;
    dropped: number;
  },
): Promise<void> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, damaged);
  await assert.rejects(FileStorage.open(path), (e: unknown) => {
    assert(e instanceof IntegrityError, String(e));
    assert.match(e.message, expected.message);
    assert.match(e.message, /tether repair --db/);
    return true;
  });
  assert.deepEqual(await Deno.readFile(path), damaged, "left untouched");
  assert.deepEqual(await damagedCopies(dir, name), []);
  assert(!(await exists(`${path}.compact`)));

  const repaired = await FileStorage.open(path, { repair: true });
  let copy: string;
  try {
    const stats = repaired.stats();
    assert.equal(stats.repairedRanges, expected.ranges);
    assert.equal(stats.repairedBytes, expected.dropped);
    assert.equal(stats.tornBytes, 0);
    assert.equal(typeof stats.damagedCopy, "string");
    copy = stats.damagedCopy!;
    assert(copy.startsWith(`${path}.damaged-`), copy);
    assert.match(copy.slice(path.length), /^\.damaged-\d+$/);
    assert.deepEqual(await contents(repaired), expected.model);
  } finally {
    await repaired.close();
  }
  assert.deepEqual(await Deno.readFile(copy), damaged, "the damaged copy");
  assert(!(await exists(`${path}.compact`)));

  const again = await FileStorage.open(path);
  try {
    const stats = again.stats();
    assert.equal(stats.repairedRanges, 0);
    assert.equal(stats.tornBytes, 0);
    assert.equal(stats.damagedCopy, undefined);
    assert.deepEqual(await contents(again), expected.model);
  } finally {
    await again.close();
  }
}

Deno.test("a flipped byte anywhere is an IntegrityError naming its frame's offset; repair keeps every other commit", async () => {
  await using tmp = await tempDir();
  const random = prng(0x7e7e7);
  const commits = modelCommits(random, 12);
  const { bytes, starts } = await writeModelLog(
    `${tmp.dir}/model.tdb`,
    commits,
  );
  const everything = replayModel(commits);
  const seenFrames = new Set<number>();
  for (let i = 0; i < 200; i++) {
    // Aim at the header, the first and the last frame now and then, so every
    // kind of place is hit whatever the seed.
    const at = i === 0
      ? 5
      : i === 1
      ? starts[0]! + 2
      : i === 2
      ? bytes.length - 1
      : i === 3
      ? starts[commits.length - 1]! + 1
      : Math.floor(random() * bytes.length);
    const damaged = bytes.slice();
    damaged[at]! ^= 1 + Math.floor(random() * 255);
    const frame = frameAt(starts, at);
    seenFrames.add(frame);
    if (frame < 0) {
      await expectRepair(tmp.dir, `flip-${i}.tdb`, damaged, {
        message: /not a readable @tether\/db log/,
        model: everything,
        ranges: 1,
        dropped: HEADER_BYTES,
      });
    } else {
      // Every field of a frame is under a checksum, so even a flip in the
      // last frame's length (which could make it look cut short) is
      // damage, never a torn tail.
      const start = starts[frame]!;
      await expectRepair(tmp.dir, `flip-${i}.tdb`, damaged, {
        message: new RegExp(
          `damaged at byte ${start} of ${bytes.length}\\b`,
        ),
        model: replayModel(commits, new Set([frame])),
        ranges: 1,
        dropped: starts[frame + 1]! - start,
      });
    }
  }
  for (let f = -1; f < commits.length; f++) {
    assert(seenFrames.has(f), `frame ${f} was hit`);
  }
});

Deno.test("a flipped header byte is an IntegrityError; repair salvages every frame", async () => {
  await using tmp = await tempDir();
  const commits = modelCommits(prng(42), 6);
  const { bytes } = await writeModelLog(`${tmp.dir}/model.tdb`, commits);
  for (const at of [0, 7, 8, 12, 16, 24, 40, 59, 60, 63]) {
    const damaged = bytes.slice();
    damaged[at]! ^= 0x10;
    await expectRepair(tmp.dir, `header-${at}.tdb`, damaged, {
      message: at < 8
        ? /not a readable @tether\/db log \(.*it does not start with 'TETHERDB'\)/
        : /not a readable @tether\/db log \(.*the header checksum does not match\)/,
      model: replayModel(commits),
      ranges: 1,
      dropped: HEADER_BYTES,
    });
  }
});

Deno.test("a damaged file header: the IntegrityError names the byte offset", async () => {
  // Documented: any damage other than a torn tail is an IntegrityError
  // naming the byte offset. FAILS at the time of writing for the file
  // header: the message says "the header checksum does not match" but names
  // no offset.
  await using tmp = await tempDir();
  const { bytes } = await writeModelLog(
    `${tmp.dir}/model.tdb`,
    modelCommits(prng(5), 3),
  );
  const damaged = bytes.slice();
  damaged[20]! ^= 1;
  const path = `${tmp.dir}/header.tdb`;
  await Deno.writeFile(path, damaged);
  await assert.rejects(FileStorage.open(path), (e: unknown) => {
    assert(e instanceof IntegrityError);
    assert.match(e.message, /\bbyte \d+/);
    return true;
  });
});

/** A frame with right checksums, after `patch` changed its bytes. */
function forgedFrame(
  seq: number,
  key: string,
  value: string,
  patch: (frame: Uint8Array) => Uint8Array = (f) => f,
): Uint8Array {
  const frame = patch(
    encodeFrame(seq, [{
      key: encoder.encode(key),
      value: encoder.encode(value),
    }], []),
  );
  const view = new DataView(frame.buffer, frame.byteOffset);
  view.setUint32(0, frame.length - FRAME_HEADER_BYTES, true);
  view.setUint32(13, crc32c(frame, FRAME_HEADER_BYTES, frame.length), true);
  view.setUint32(17, crc32c(frame, 0, 17), true);
  return frame;
}

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("a frame with right checksums but a backward sequence number, an unknown kind or a bad structure is damage, never a torn tail", async () => {
  await using tmp = await tempDir();
  const commits = modelCommits(prng(11), 5);
  const { bytes, starts } = await writeModelLog(
    `${tmp.dir}/model.tdb`,
    commits,
  );
  const lastSeq = commits.length;
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "backward",
      forgedFrame(lastSeq - 2, "forged", "x"),
      /sequence number \d+ is below/,
    ],
    [
      "kind",
      forgedFrame(lastSeq + 1, "forged", "x", (f) => {
        f[12] = 7;
        return f;
      }),
      /frame kind 7 is unknown/,
    ],
    [
      "trailing",
      forgedFrame(
        lastSeq + 1,
        "forged",
        "x",
        (f) => concatBytes(f, new Uint8Array([7])),
      ),
      /trailing bytes/,
    ],
    [
      "overrun",
      forgedFrame(lastSeq + 1, "forged", "x", (f) => {
        // The set count says two sets; the payload holds one.
        new DataView(f.buffer, f.byteOffset).setUint32(
          FRAME_HEADER_BYTES,
          2,
          true,
        );
        return f;
      }),
      /runs past the frame/,
    ],
  ];
  for (const [name, frame, reason] of cases) {
    const end = starts[commits.length]!;
    // As the last frame, and in the middle (followed by a real commit).
    const tail = concatBytes(bytes, frame);
    await expectRepair(tmp.dir, `${name}-last.tdb`, tail, {
      message: new RegExp(
        `damaged at byte ${end} of ${tail.length}\\b.*${reason.source}`,
      ),
      model: replayModel(commits),
      ranges: 1,
      dropped: frame.length,
    });
    const next = forgedFrame(lastSeq + 5, "after", "kept");
    const middle = concatBytes(bytes, frame, next);
    await expectRepair(tmp.dir, `${name}-middle.tdb`, middle, {
      message: new RegExp(
        `damaged at byte ${end} of ${middle.length}\\b.*${reason.source}`,
      ),
      model: new Map([...replayModel(commits), ["after", "kept"]]),
      ranges: 1,
      dropped: frame.length,
    });
  }
});

Deno.test("damage spanning frames is one dropped range; the commits around it are kept", async () => {
  await using tmp = await tempDir();
  const random = prng(7);
  const commits = modelCommits(random, 10);
  const { bytes, starts } = await writeModelLog(
    `${tmp.dir}/model.tdb`,
    commits,
  );
  for (let i = 0; i < 20; i++) {
    // Garbage over the boundary between frames f and f + 1.
    const f = 1 + Math.floor(random() * (commits.length - 3));
    const boundary = starts[f + 1]!;
    const from = boundary - 1 - Math.floor(random() * 10);
    const to = boundary + 1 + Math.floor(random() * 10);
    const damaged = bytes.slice();
    for (let at = from; at < to; at++) damaged[at] = 0xa5 ^ (at & 0xff);
    await expectRepair(tmp.dir, `span-${i}.tdb`, damaged, {
      message: new RegExp(`damaged at byte ${starts[f]} of ${bytes.length}\\b`),
      model: replayModel(commits, new Set([f, f + 1])),
      ranges: 1,
      dropped: starts[f + 2]! - starts[f]!,
    });
  }
});

Deno.test("a repaired database keeps working: documents, indexes, new writes", async () => {
  await using tmp = await tempDir();
  const log = await buildUserLog(tmp.dir, "insert");
  const path = `${tmp.dir}/db-repair.tdb`;
  const damaged = log.bytes.slice();
  damaged[log.before + FRAME_HEADER_BYTES + 3]! ^= 0xff;
  await Deno.writeFile(path, damaged);
  await assert.rejects(open({ path }), (e: unknown) => {
    assert(e instanceof IntegrityError);
    assert.match(e.message, new RegExp(`damaged at byte ${log.before} `));
    return true;
  });
  {
    await using db = await open({ path, repair: true });
    assert.equal(fileStats(db).repairedRanges, 1);
    assert.equal(fileStats(db).repairedBytes, log.after - log.before);
    await checkUsers(db, log.prior, log);
    await db.collection<User>("users").insert(log.full.get("u9")!);
  }
  await using db = await open({ path });
  await checkUsers(db, log.full, log);
});

// --- 4. Compaction -------------------------------------------------------------

const STEPS = ["open", "snapshot", "synced", "renamed"] as const;

interface Fixture {
  keys: Map<string, unknown>;
  users: Map<string, User>;
}

/** Writes a log worth compacting; returns what it holds. */
async function fillForCompaction(db: Database<unknown>): Promise<Fixture> {
  const keys = new Map<string, unknown>();
  for (let i = 0; i < 30; i++) await db.put("counter", i);
  keys.set("counter", 29);
  await db.put("tagged", { a: 1 }, { ttl: 3_600_000, tags: ["x", "y"] });
  keys.set("tagged", { a: 1 });
  await db.put("gone", 1);
  assert(await db.delete("gone"));
  const users = db.collection<User>("users", { indexes: [...USER_INDEXES] });
  const model = new Map<string, User>();
  for (let i = 0; i < 5; i++) {
    const doc = { _id: `u${i}`, email: `u${i}@e.com`, city: `c${i % 2}`, n: i };
    await users.insert(doc);
    model.set(doc._id, doc);
  }
  await users.update({ _id: "u0" }, { $set: { email: "first@e.com" } });
  model.set("u0", { ...model.get("u0")!, email: "first@e.com" });
  return { keys, users: model };
}

async function checkFixture(
  db: Database<unknown>,
  fixture: Fixture,
): Promise<void> {
  for (const [key, value] of fixture.keys) {
    assert.deepEqual(await db.get(key), value, key);
  }
  assert.equal(await db.count(), fixture.keys.size);
  assert.equal(await db.get("gone"), null);
  const emails = [...fixture.users.values()].map((u) => u.email);
  await checkUsers(db, fixture.users, {
    emails: [...emails, "u0@e.com"],
    cities: ["c0", "c1"],
  }, fixture.keys.size + fixture.users.size);
}

Deno.test("compaction stopped at each step: the files on disk at that moment open with every acknowledged write, and the stray .compact is removed", async (t) => {
  await using tmp = await tempDir();
  for (const step of STEPS) {
    await t.step(step, async () => {
      const path = `${tmp.dir}/${step}/app.tdb`;
      const image = `${tmp.dir}/${step}-image/app.tdb`;
      await Deno.mkdir(`${tmp.dir}/${step}-image`, { recursive: true });
      let fixture: Fixture;
      let hadCompact = false;
      try {
        await using db = await open({ path, ttlCheckInterval: Infinity });
        fixture = await fillForCompaction(db);
        const size = (await Deno.stat(path)).size;
        faults.compactStep = (s) => {
          if (s !== step) return;
          // What a crash at this point leaves on disk.
          Deno.copyFileSync(path, image);
          try {
            Deno.copyFileSync(`${path}.compact`, `${image}.compact`);
            hadCompact = true;
          } catch (e) {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          }
          throw new Error(`crash at ${s}`);
        };
        await assert.rejects(db.compact(), new RegExp(`crash at ${step}`));
        resetFaults();
        // The compaction cleaned up after itself in this process.
        assert(!(await exists(`${path}.compact`)));
        if (step === "renamed") {
          assert(!hadCompact);
          assert((await Deno.stat(image)).size < size, "already compacted");
        } else {
          assert(hadCompact, "the .compact file existed at the crash");
        }
      } finally {
        resetFaults();
      }
      {
        await using db = await open({
          path: image,
          ttlCheckInterval: Infinity,
        });
        assert(!(await exists(`${image}.compact`)), "stray .compact removed");
        assert.equal(fileStats(db).tornBytes, 0);
        assert.equal(fileStats(db).repairedRanges, 0);
        await checkFixture(db, fixture);
      }
      await using db = await open({ path, ttlCheckInterval: Infinity });
      await checkFixture(db, fixture);
    });
  }
});

Deno.test("compaction stopped at each step: the open database keeps every write made afterwards", async (t) => {
  // FAILS at "renamed" at the time of writing: once the new file has been
  // renamed over the log, a failure before the storage switches to it
  // leaves later commits going to the old, unlinked file.
  await using tmp = await tempDir();
  for (const step of STEPS) {
    await t.step(step, async () => {
      const path = `${tmp.dir}/${step}/app.tdb`;
      let fixture: Fixture;
      try {
        await using db = await open({ path, ttlCheckInterval: Infinity });
        fixture = await fillForCompaction(db);
        faults.compactStep = (s) => {
          if (s === step) throw new Error(`stopped at ${s}`);
        };
        await assert.rejects(db.compact(), new RegExp(`stopped at ${step}`));
        resetFaults();
        assert.match(String(fileStats(db).lastError), /stopped at/);
        // Acknowledged after the failed compaction.
        await db.put("after", { step });
        fixture.keys.set("after", { step });
        await db.put("counter", 100);
        fixture.keys.set("counter", 100);
        const users = db.collection<User>("users");
        const doc = { _id: "u7", email: "u7@e.com", city: "c1", n: 7 };
        await users.insert(doc);
        fixture.users.set(doc._id, doc);
        await checkFixture(db, fixture);
      } finally {
        resetFaults();
      }
      {
        await using db = await open({ path, ttlCheckInterval: Infinity });
        await checkFixture(db, fixture);
        // A compaction now completes and keeps it all.
        assert.equal(await db.compact(), true);
        await checkFixture(db, fixture);
      }
      await using db = await open({ path, ttlCheckInterval: Infinity });
      await checkFixture(db, fixture);
    });
  }
});

Deno.test("batched durability: commits still queued when a compaction stops at any step are neither lost nor damage", async (t) => {
  // FAILS at "renamed" at the time of writing (same cause as above: the
  // writes made after the failed compaction go to the old, unlinked file).
  await using tmp = await tempDir();
  for (const step of STEPS) {
    await t.step(step, async () => {
      const path = `${tmp.dir}/${step}/app.tdb`;
      const options = {
        path,
        durability: "batched" as const,
        flushInterval: 60_000, // only close() and compaction write
        ttlCheckInterval: Infinity,
      };
      try {
        {
          await using db = await open(options);
          for (let i = 0; i < 5; i++) await db.put(`k${i}`, i);
          assert.equal(fileStats(db).queued, 5);
          faults.compactStep = (s) => {
            if (s === step) throw new Error(`stopped at ${s}`);
          };
          await assert.rejects(db.compact(), /stopped at/);
          resetFaults();
          await db.put("k0", 100);
          await db.put("k5", 5);
        }
        await using db = await open(options);
        assert.equal(fileStats(db).tornBytes, 0);
        assert.equal(await db.get("k0"), 100);
        for (let i = 1; i <= 5; i++) assert.equal(await db.get(`k${i}`), i);
        assert.equal(await db.count(), 6);
      } finally {
        resetFaults();
      }
    });
  }
});

Deno.test("a stray .compact file left by a crash is removed on open and changes nothing", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/app.tdb`;
  let fixture: Fixture;
  {
    await using db = await open({ path, ttlCheckInterval: Infinity });
    fixture = await fillForCompaction(db);
  }
  const log = await Deno.readFile(path);
  // A half-written compaction: a header and part of a frame.
  await Deno.writeFile(`${path}.compact`, log.subarray(0, 100));
  {
    await using db = await open({ path, ttlCheckInterval: Infinity });
    assert(!(await exists(`${path}.compact`)));
    await checkFixture(db, fixture);
  }
  assert.deepEqual(await Deno.readFile(path), log);
});

Deno.test("a completed compaction shrinks the file, keeps metadata, versions and indexes, and drops expired items", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/app.tdb`;
  let now = 1_700_000_000_000;
  const clock = { now: () => now };
  const options = { path, clock, ttlCheckInterval: Infinity };
  let fixture: Fixture;
  const entries = new Map<string, unknown>();
  {
    await using db = await open(options);
    fixture = await fillForCompaction(db);
    now += 10;
    await db.put("short", "expired-secret-value", { ttl: 50, tags: ["s"] });
    await db.put("long", { keep: true }, { ttl: 60_000, tags: ["t"] });
    now += 5;
    await db.put("long", { keep: 2 }, { ttl: 60_000, tags: ["t", "u"] });
    fixture.keys.set("long", { keep: 2 });
    now += 100; // "short" has expired; "long" has not.
    assert.equal(await db.get("short"), null);
    for (const key of fixture.keys.keys()) {
      entries.set(key, await db.getEntry(key));
    }
    const long = await db.getEntry("long");
    assert.equal(long?.version, 2);
    assert.deepEqual(long?.tags, ["t", "u"]);
    assert.equal(long?.expiresAt, now - 100 + 60_000);
    assert.equal((await db.getEntry("counter"))?.version, 30);
    const users = db.collection<User>("users");
    const u0 = await users.getEntry("u0");
    assert.equal(u0?.version, 2);
    entries.set("users/u0", u0);

    const before = (await Deno.stat(path)).size;
    assert(contains(await Deno.readFile(path), "expired-secret-value"));
    // Writes made while the compaction runs end up in the new file too.
    const during: Promise<unknown>[] = [];
    faults.compactStep = (s) => {
      if (s === "open") during.push(db.put("during", { s }));
    };
    try {
      assert.equal(await db.compact(), true);
    } finally {
      resetFaults();
    }
    await Promise.all(during);
    fixture.keys.set("during", { s: "open" });
    const after = (await Deno.stat(path)).size;
    assert(after < before / 2, `${after} < ${before} / 2`);
    assert.equal(fileStats(db).fileBytes, after);
    assert.equal(fileStats(db).compactions, 1);
    assert(db.stats().expired >= 1);
    assert(!(await exists(`${path}.compact`)));
    assert(!contains(await Deno.readFile(path), "expired-secret-value"));
    await checkFixture(db, fixture);
  }
  await using db = await open(options);
  assert.equal(fileStats(db).tornBytes, 0);
  await checkFixture(db, fixture);
  for (const [key, entry] of entries) {
    if (key.startsWith("users/")) continue;
    assert.deepEqual(await db.getEntry(key), entry, key);
  }
  const users = db.collection<User>("users");
  assert.deepEqual(await users.getEntry("u0"), entries.get("users/u0"));
  assert.equal(await db.get("short"), null);
  assert.equal(db.stats().ttlItems, 2); // "tagged" and "long"
  // The unique index still holds its values.
  await assert.rejects(
    users.insert({ _id: "dup", email: "first@e.com", city: "c0", n: 0 }),
    DuplicateKeyError,
  );
  // TTL still runs on the compacted data.
  now += 60_000;
  assert.equal(await db.get("long"), null);
  await db.cleanup();
  assert.equal(db.stats().ttlItems, 1);
  assert.equal(await db.count(), fixture.keys.size - 1);
});

// --- 5. Disk errors --------------------------------------------------------------

Deno.test("ENOSPC on a write: QuotaError with the cause, the write is taken back, the database stays consistent", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/app.tdb`;
  const options = { path, ttlCheckInterval: Infinity };
  const model = new Map<string, User>();
  try {
    await using db = await open(options);
    const users = db.collection<User>("users", { indexes: [...USER_INDEXES] });
    for (let i = 0; i < 3; i++) {
      const doc = { _id: `u${i}`, email: `u${i}@e.com`, city: "Oslo", n: i };
      await users.insert(doc);
      model.set(doc._id, doc);
    }
    await db.put("k", 1, { tags: ["a"] });
    const items = () => model.size + 1;
    const probe = {
      emails: ["u0@e.com", "u1@e.com", "u2@e.com", "new@e.com", "u3@e.com"],
      cities: ["Oslo", "Rome"],
    };

    const cause = diskError("ENOSPC", "No space left on device (os error 28)");
    let calls = 0;
    faults.beforeWrite = () => {
      calls++;
      throw cause;
    };
    const failures: [string, () => Promise<unknown>][] = [
      ["put", () => db.put("k", 2)],
      ["update", () =>
        users.update({ _id: "u1" }, {
          $set: { email: "new@e.com", city: "Rome" },
        })],
      [
        "insert",
        () =>
          users.insert({ _id: "u3", email: "u3@e.com", city: "Rome", n: 3 }),
      ],
      ["delete", () => users.delete("u2")],
    ];
    // What count() and stats() said the moment each write rejected.
    const immediate: string[] = [];
    for (const [name, write] of failures) {
      const error = await write().then(() => undefined, (e: unknown) => e);
      const counted = await users.count();
      const listed = db.stats().items;
      if (counted !== model.size || listed !== items()) {
        immediate.push(
          `${name}: count() ${counted}, stats().items ${listed} right after the rejection`,
        );
      }
      await new Promise((r) => setTimeout(r, 0));
      assert.equal(await users.count(), model.size, `${name}: count`);
      assert.equal(db.stats().items, items(), `${name}: stats().items`);
      assert(error instanceof QuotaError, `${name}: ${error}`);
      assert.equal(error.cause, cause);
      assert.match(error.message, /No space left on device/);
      assert.equal(await db.get("k"), 1);
      assert.equal((await db.getEntry("k"))?.version, 1);
      // The frame of the commit taken back is let go.
      assert.equal(
        (db.stats().storageStats as { unwrittenFrames: number })
          .unwrittenFrames,
        0,
        `${name}: unwritten frames held`,
      );
      await checkUsers(db, model, probe, items());
    }
    assert.equal(calls, failures.length);
    const stats = fileStats(db);
    assert.equal(stats.writeErrors, failures.length);
    assert.match(String(stats.lastError), /No space left/);
    assert.equal(stats.queued, 0);
    assert.equal(stats.fileBytes, (await Deno.stat(path)).size);

    // Another kind of error: a TetherError (not a QuotaError) with its cause.
    const eio = diskError("EIO", "Input/output error (os error 5)");
    faults.beforeWrite = () => {
      throw eio;
    };
    await assert.rejects(db.put("k", 3), (e: unknown) => {
      assert(e instanceof TetherError && !(e instanceof QuotaError));
      assert.equal(e.cause, eio);
      return true;
    });
    resetFaults();

    // Once the disk has room again, the same writes succeed.
    await db.put("k", 4);
    await users.update({ _id: "u1" }, {
      $set: { email: "new@e.com", city: "Rome" },
    });
    model.set("u1", { ...model.get("u1")!, email: "new@e.com", city: "Rome" });
    await users.insert({ _id: "u3", email: "u3@e.com", city: "Rome", n: 3 });
    model.set("u3", { _id: "u3", email: "u3@e.com", city: "Rome", n: 3 });
    assert.equal((await db.getEntry("k"))?.version, 2);
    await checkUsers(db, model, probe, items());
    await db.close();
    await using again = await open(options);
    assert.equal(fileStats(again).tornBytes, 0);
    const k = await again.getEntry("k");
    assert.equal(k?.value, 4);
    assert.equal(k?.version, 2);
    assert.deepEqual(k?.tags, []);
    assert.equal(again.stats().items, items());
    await checkUsers(again, model, probe, items());
    // The engine's counts must be right as soon as a failed write rejects.
    // FAILS at the time of writing: they are rebuilt by a reload queued
    // behind the rejection, so for a moment they are stale or half-built.
    assert.deepEqual(immediate, []);
  } finally {
    resetFaults();
  }
});

Deno.test("concurrent writes: every write in the flush that fails rejects and is not visible; the others are kept", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/app.tdb`;
  const options = { path, ttlCheckInterval: Infinity };
  const cause = diskError("ENOSPC", "No space left on device");
  try {
    await using db = await open(options);
    await db.put("base", 0);
    let calls = 0;
    const n = 8;
    const writes: Promise<unknown>[] = [];
    faults.beforeWrite = () => {
      // The first flush goes through; the second fails. Writes waiting
      // together commit as one (a group), so the second half is written
      // while the first flush is under way: it commits apart.
      if (++calls === 1) {
        for (let i = n / 2; i < n; i++) writes[i] = db.put(`w${i}`, i);
      }
      if (calls === 2) throw cause;
    };
    for (let i = 0; i < n / 2; i++) writes[i] = db.put(`w${i}`, i);
    await Promise.allSettled(writes.slice(0, n / 2));
    assert.equal(writes.length, n);
    const results = await Promise.allSettled(writes);
    resetFaults();
    const rejected = results.flatMap((r, i) =>
      r.status === "rejected" ? [i] : []
    );
    assert.equal(results[0]!.status, "fulfilled");
    assert(rejected.length >= 1, "one flush failed");
    // The failing group is one run of consecutive writes...
    for (let j = 1; j < rejected.length; j++) {
      assert.equal(rejected[j], rejected[j - 1]! + 1);
    }
    // ... which all share the one error.
    const errors = new Set(
      results.flatMap((r) => r.status === "rejected" ? [r.reason] : []),
    );
    assert.equal(errors.size, 1);
    const [error] = errors;
    assert(error instanceof QuotaError);
    assert.equal(error.cause, cause);
    const kept = new Map<string, number>([["base", 0]]);
    for (let i = 0; i < n; i++) {
      if (!rejected.includes(i)) kept.set(`w${i}`, i);
    }
    const check = async (d: Database<unknown>) => {
      for (let i = 0; i < n; i++) {
        assert.equal(await d.get(`w${i}`), kept.get(`w${i}`) ?? null, `w${i}`);
      }
      assert.equal(await d.count(), kept.size);
      assert.equal(d.stats().items, kept.size);
    };
    await check(db);
    // Later writes are fine.
    await db.put("later", 1);
    kept.set("later", 1);
    await check(db);
    await db.close();
    await using again = await open(options);
    await check(again);
    assert.deepEqual(
      new Map(
        (await Array.fromAsync(again.find({}).entries())).map((
          e,
        ) => [e.key, e.value]),
      ),
      kept,
    );
  } finally {
    resetFaults();
  }
});

/** Whether every commit so far is written (none queued or in flight). */
function written(db: Database<unknown>, flushes: number): boolean {
  const stats = fileStats(db);
  return stats.queued === 0 && stats.flushes >= flushes;
}

/** Polls (2 ms at a time, at most ~2 s) until `done()` holds. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let spins = 0; !done(); spins++) {
    assert(spins < 1000, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const BATCHED = {
  durability: "batched" as const,
  flushInterval: 2,
  ttlCheckInterval: Infinity,
};

Deno.test("batched durability: a failed flush keeps the commits queued and retries them", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/app.tdb`;
  try {
    {
      await using db = await open({ path, ...BATCHED });
      await db.put("before", 0);
      await until(() => written(db, 1), "the first flush");
      let calls = 0;
      faults.beforeWrite = () => {
        calls++;
        throw diskError("ENOSPC", "No space left on device");
      };
      for (let i = 0; i < 5; i++) await db.put(`q${i}`, i); // acknowledged
      // Retried again and again; between attempts the commits wait in the
      // queue (an attempt in flight has taken them out of it).
      await until(
        () => calls >= 3 && fileStats(db).queued === 5,
        "three failed attempts",
      );
      let stats = fileStats(db);
      assert(stats.writeErrors >= 3);
      assert.match(String(stats.lastError), /No space left/);
      // Visible meanwhile.
      for (let i = 0; i < 5; i++) assert.equal(await db.get(`q${i}`), i);
      assert.equal(await db.count(), 6);
      const flushes = fileStats(db).flushes;
      resetFaults();
      // The next retry writes them.
      await until(() => written(db, flushes + 1), "the retry");
      stats = fileStats(db);
      assert.equal(stats.fileBytes, (await Deno.stat(path)).size);

      // More commits whose flush fails until close(), which writes them.
      const errors = stats.writeErrors;
      faults.beforeWrite = () => {
        throw diskError("EIO", "Input/output error");
      };
      await db.put("q5", 5);
      await db.put("q0", 10);
      await until(
        () => fileStats(db).writeErrors > errors && fileStats(db).queued === 2,
        "a failed attempt",
      );
      resetFaults();
      await db.close();
    }
    await using db = await open({ path, ...BATCHED });
    assert.equal(fileStats(db).tornBytes, 0);
    assert.equal(await db.get("before"), 0);
    assert.equal(await db.get("q0"), 10);
    for (let i = 1; i <= 5; i++) assert.equal(await db.get(`q${i}`), i);
    assert.equal(await db.count(), 7);
  } finally {
    resetFaults();
  }
});

Deno.test("batched durability: close() while a flush is failing still writes the queue once the disk is back", async () => {
  // FAILS at the time of writing: FileStorage.flush() (called by close())
  // awaits the attempt already in flight and, seeing it failed, throws
  // without trying once itself, so close() rejects and the acknowledged
  // commits are lost although the disk works again.
  await using tmp = await tempDir();
  const path = `${tmp.dir}/app.tdb`;
  try {
    const db = await open({ path, ...BATCHED });
    await db.put("before", 0);
    await until(() => written(db, 1), "the first flush");
    let closing: Promise<unknown> | undefined;
    faults.beforeWrite = () => {
      // The timer's flush fails; the disk is fine from now on, and the
      // application closes the database while that attempt unwinds.
      faults.beforeWrite = undefined;
      closing = db.close().then(() => "closed", (e: unknown) => e);
      throw diskError("ENOSPC", "No space left on device");
    };
    await db.put("acknowledged", 1);
    await until(() => closing !== undefined, "the failing flush");
    assert.equal(await closing, "closed");
    await using again = await open({ path, ...BATCHED });
    assert.equal(await again.get("before"), 0);
    assert.equal(await again.get("acknowledged"), 1);
  } finally {
    resetFaults();
  }
});

// --- 6. Files that are not logs --------------------------------------------------

Deno.test("a file that is not a @tether/db log is an IntegrityError that says so, and is left alone", async () => {
  await using tmp = await tempDir();
  const random = prng(99);
  const noise = Uint8Array.from({ length: 1000 }, () => random() * 256);
  const cases: [string, Uint8Array, RegExp][] = [
    ["random", noise, /does not start with 'TETHERDB'/],
    [
      "text",
      encoder.encode(
        "This is a plain text file, long enough to be mistaken for a header.\n"
          .repeat(3),
      ),
      /does not start with 'TETHERDB'/,
    ],
    [
      "short text",
      encoder.encode("hello\n"),
      /shorter than the 64-byte header/,
    ],
    ["json", encoder.encode('{"a":1}'), /shorter than the 64-byte header/],
  ];
  for (const [name, bytes, reason] of cases) {
    const path = `${tmp.dir}/${name}.tdb`;
    await Deno.writeFile(path, bytes);
    for (
      const attempt of [() => open({ path }), () => FileStorage.open(path)]
    ) {
      await assert.rejects(attempt(), (e: unknown) => {
        assert(e instanceof IntegrityError, `${name}: ${e}`);
        assert.match(e.message, /not a readable @tether\/db log/);
        assert.match(e.message, reason);
        assert(e.message.includes(path));
        return true;
      });
    }
    assert.deepEqual(await Deno.readFile(path), bytes, name);
    assert.deepEqual(await damagedCopies(tmp.dir, `${name}.tdb`), []);
  }
});

Deno.test("an empty file, or one holding only part of a header, opens as a new database", async () => {
  await using tmp = await tempDir();
  const source = `${tmp.dir}/source.tdb`;
  {
    await using db = await open({ path: source });
    await db.put("k", 1);
  }
  const header = (await Deno.readFile(source)).subarray(0, HEADER_BYTES);
  for (const n of [0, 1, 5, 7, 8, 9, 30, 60, 63]) {
    const path = `${tmp.dir}/partial-${n}.tdb`;
    await Deno.writeFile(path, header.subarray(0, n));
    {
      await using db = await open({ path, ttlCheckInterval: Infinity });
      assert.equal(await db.count(), 0, `${n} bytes`);
      assert.equal(fileStats(db).fileBytes, HEADER_BYTES);
      assert.equal(fileStats(db).tornBytes, 0);
      await db.put("new", n);
    }
    const bytes = await Deno.readFile(path);
    assert.equal(decoder.decode(bytes.subarray(0, 8)), "TETHERDB");
    await using db = await open({ path, ttlCheckInterval: Infinity });
    assert.equal(await db.get("new"), n);
    assert.equal(await db.count(), 1);
  }
  // A whole header and nothing else: an empty database.
  const path = `${tmp.dir}/header-only.tdb`;
  await Deno.writeFile(path, header);
  await using db = await open({ path, ttlCheckInterval: Infinity });
  assert.equal(await db.count(), 0);
  assert.equal(fileStats(db).tornBytes, 0);
});
