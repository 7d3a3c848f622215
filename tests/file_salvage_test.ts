/**
 * Salvage reads of the file storage: `FileStorage.open(path, { readOnly:
 * true, repair: true })` keeps every intact commit of a damaged log, lists
 * the damaged ranges, refuses writes, takes no lock and never changes a
 * byte of the file or creates one beside it.
 */

import assert from "node:assert/strict";
import { IntegrityError } from "../mod.ts";
import { FileStorage } from "../src/storage/file.ts";
import {
  FRAME_HEADER_BYTES,
  HEADER_BYTES,
} from "../src/storage/file_format.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const key = (s: string): Uint8Array => encoder.encode(s);

async function tempDir(): Promise<
  { dir: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "tether-salvage-" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    await Deno.readFile(path),
  );
  return Array.from(new Uint8Array(digest), (b) => b.toString(16)).join("");
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function keysOf(storage: FileStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const page of storage.scan({})) {
    for (const entry of page) out.push(decoder.decode(entry.key));
  }
  return out;
}

/** A log of `n` strict commits `k0`..`k{n-1}`, and where each frame starts. */
async function writeLog(
  path: string,
  n: number,
): Promise<{ starts: number[]; size: number }> {
  const storage = await FileStorage.open(path);
  const starts: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      starts.push(storage.stats().fileBytes);
      const result = await storage.commit({
        sets: [{ key: key(`k${i}`), value: encoder.encode(`value ${i}`) }],
      });
      assert(result.ok);
      await result.durable;
    }
    starts.push(storage.stats().fileBytes);
  } finally {
    await storage.close();
  }
  return { starts, size: starts[n]! };
}

Deno.test("salvage: a read-only repair open keeps the intact commits, lists the damage, and leaves the file byte for byte as it was", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/damaged.tdb`;
  const { starts } = await writeLog(path, 8);
  // Flip bytes in the middle of frames 3 and 5 (their payloads).
  const bytes = await Deno.readFile(path);
  for (const f of [3, 5]) bytes[starts[f]! + FRAME_HEADER_BYTES + 3]! ^= 0x5a;
  await Deno.writeFile(path, bytes);
  const hash = await sha256(path);
  const files = await listDir(tmp.dir);

  // A normal open refuses it and changes nothing.
  await assert.rejects(
    FileStorage.open(path),
    (e: unknown) =>
      e instanceof IntegrityError &&
      e.message.includes(`damaged at byte ${starts[3]}`),
  );
  assert.equal(await sha256(path), hash);

  const salvage = await FileStorage.open(path, {
    readOnly: true,
    repair: true,
  });
  try {
    assert.deepEqual(await keysOf(salvage), [
      "k0",
      "k1",
      "k2",
      "k4",
      "k6",
      "k7",
    ]);
    assert.equal(
      decoder.decode((await salvage.get(key("k7")))!.value),
      "value 7",
    );
    const stats = salvage.stats();
    assert.equal(stats.readOnly, true);
    assert.equal(stats.repairedRanges, 2);
    assert.deepEqual(
      stats.damage.map((d) => [d.offset, d.bytes]),
      [
        [starts[3]!, starts[4]! - starts[3]!],
        [starts[5]!, starts[6]! - starts[5]!],
      ],
    );
    assert.equal(
      stats.repairedBytes,
      stats.damage[0]!.bytes + stats.damage[1]!.bytes,
    );
    for (const d of stats.damage) {
      assert.match(d.reason, /payload checksum does not match/);
    }
    assert.equal(stats.damagedCopy, undefined);
    await assert.rejects(
      salvage.commit({ sets: [{ key: key("x"), value: key("y") }] }),
      TypeError,
    );
    await assert.rejects(salvage.compact(), TypeError);
  } finally {
    await salvage.close();
  }
  assert.equal(await sha256(path), hash);
  assert.deepEqual(await listDir(tmp.dir), files, "no file created beside it");
});

Deno.test("salvage: takes no lock (a writer may hold the file) and keeps a torn tail in place", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/held.tdb`;
  const { size } = await writeLog(path, 3);
  const writer = await FileStorage.open(path);
  try {
    const salvage = await FileStorage.open(path, {
      readOnly: true,
      repair: true,
    });
    assert.deepEqual(await keysOf(salvage), ["k0", "k1", "k2"]);
    await salvage.close();
  } finally {
    await writer.close();
  }
  // Half a frame appended: a torn tail, reported and left alone.
  const bytes = await Deno.readFile(path);
  const torn = new Uint8Array(size + 10);
  torn.set(bytes);
  torn.set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + 10), size);
  await Deno.writeFile(path, torn);
  const hash = await sha256(path);
  const salvage = await FileStorage.open(path, {
    readOnly: true,
    repair: true,
  });
  try {
    assert.equal(salvage.stats().tornBytes, 10);
    assert.deepEqual(salvage.stats().damage, []);
    assert.deepEqual(await keysOf(salvage), ["k0", "k1", "k2"]);
  } finally {
    await salvage.close();
  }
  assert.equal(await sha256(path), hash);
});

Deno.test("salvage: a damaged file header is listed as damage at byte 0 and every frame is kept", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/header.tdb`;
  await writeLog(path, 4);
  const bytes = await Deno.readFile(path);
  bytes[20]! ^= 1;
  await Deno.writeFile(path, bytes);
  const hash = await sha256(path);
  const salvage = await FileStorage.open(path, {
    readOnly: true,
    repair: true,
  });
  try {
    assert.deepEqual(await keysOf(salvage), ["k0", "k1", "k2", "k3"]);
    assert.deepEqual(
      salvage.stats().damage.map((d) => [d.offset, d.bytes]),
      [[0, HEADER_BYTES]],
    );
  } finally {
    await salvage.close();
  }
  assert.equal(await sha256(path), hash);
});
