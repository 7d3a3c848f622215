/**
 * The log is read a window at a time (the file is never held whole in RAM):
 * for every window size, on intact, torn, damaged and compacted logs, with
 * and without salvage, the read passes the same commits at the same file
 * offsets and finds the same end, torn bytes, damage and failure as a read
 * of the whole file at once. And a database reopens from a log several
 * windows long.
 *
 * @module
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { walkPayload } from "../src/storage/file_format.ts";
import { fileSource } from "../src/storage/file_io.ts";
import {
  bytesSource,
  type LogScan,
  type LogSource,
  scanLog,
} from "../src/storage/file_scan.ts";

/** What a read passed to `apply`, with file offsets, and what it found. */
function readAll(
  source: LogSource,
  salvage: boolean,
  window?: number,
): { frames: string[]; scan: LogScan } {
  const frames: string[] = [];
  const scan = scanLog(source, salvage, (frame, base, version) => {
    const at: number[] = [];
    const gone: number[] = [];
    if (frame.binary !== undefined) {
      walkPayload(
        frame.binary,
        (w, i) => at.push(base + i, w.end - i),
        (start) => gone.push(base + start),
      );
    } else {
      for (const set of frame.sets) at.push(base + set.at, set.len);
      gone.push(frame.deletes.length);
    }
    frames.push(
      `${frame.seq} v${version} sets ${at.join(",")} deletes ${gone.join(",")}`,
    );
  }, window);
  return { frames, scan };
}

/** A log of several commits, a compaction (a snapshot), then more commits. */
async function makeLog(dir: string): Promise<Uint8Array> {
  const path = `${dir}/log.tdb`;
  const db = await open({ path, ttlCheckInterval: Infinity });
  for (let i = 0; i < 12; i++) {
    await db.put(`k${i}`, { i, pad: "x".repeat(i * 37) });
  }
  await db.putBatch(
    new Map(Array.from({ length: 30 }, (_, i) => [`b${i}`, { i }])),
  );
  await db.delete("k3");
  await db.compact();
  await db.put("big", { pad: "y".repeat(5000) });
  await db.delete("k4");
  for (let i = 0; i < 5; i++) await db.put(`late${i}`, { i });
  await db.close();
  return await Deno.readFile(path);
}

const WINDOWS = [1, 13, 64, 65, 200, 1024, 4999, 5100, 1 << 20];

function sameAsWhole(bytes: Uint8Array, what: string): void {
  for (const salvage of [false, true]) {
    const whole = readAll(bytesSource(bytes), salvage);
    for (const w of WINDOWS) {
      const got = readAll(bytesSource(bytes), salvage, w);
      assert.deepEqual(
        got,
        whole,
        `${what}, salvage ${salvage}, window ${w}: read differs`,
      );
    }
  }
}

Deno.test("windowed log read: an intact log reads the same at every window size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = await makeLog(dir);
    const whole = readAll(bytesSource(bytes), false);
    assert.equal(whole.scan.failure, undefined);
    assert.equal(whole.scan.end, bytes.length);
    assert(whole.frames.length >= 8, `${whole.frames.length} frames`);
    sameAsWhole(bytes, "intact");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("windowed log read: torn tails, zero tails and flipped bytes are judged the same at every window size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = await makeLog(dir);
    // Cut at many points (inside the snapshot and after it).
    for (let cut = 70; cut < bytes.length; cut += 211) {
      sameAsWhole(bytes.subarray(0, cut), `cut at ${cut}`);
    }
    // A tail of zeros, as a crash during a preallocating write leaves.
    const zeros = new Uint8Array(bytes.length + 64);
    zeros.set(bytes);
    sameAsWhole(zeros, "zero tail");
    // Flipped bytes (some in the header, some in frames, some in values).
    for (let at = 3; at < bytes.length; at += 173) {
      const bad = bytes.slice();
      bad[at] = bad[at]! ^ 0x41;
      sameAsWhole(bad, `byte ${at} flipped`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("windowed log read: a file read through fileSource matches its bytes, and a database opens from a log many windows long", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = await makeLog(dir);
    const path = `${dir}/log.tdb`;
    const file = await Deno.open(path, { read: true });
    try {
      for (const w of [64, 4096]) {
        assert.deepEqual(
          readAll(fileSource(file, bytes.length), false, w),
          readAll(bytesSource(bytes), false),
        );
      }
    } finally {
      file.close();
    }
    // Past the default window (8 MiB): reopened, every document reads back.
    const big = `${dir}/big.tdb`;
    const db = await open({ path: big, durability: "none" });
    const pad = "z".repeat(900);
    for (let s = 0; s < 12_000; s += 1000) {
      await db.putBatch(
        new Map(
          Array.from(
            { length: 1000 },
            (_, i) => [`d${s + i}`, { n: s + i, pad }],
          ),
        ),
      );
    }
    // Compacted: a snapshot of several frames, its checksum taken across
    // windows.
    await db.compact();
    await db.put("after", { n: -1 });
    await db.close();
    const size = (await Deno.stat(big)).size;
    assert(size > (8 << 20) + 1000, `${size} bytes`);
    const whole = readAll(bytesSource(await Deno.readFile(big)), false);
    assert.equal(whole.scan.failure, undefined);
    assert.equal(whole.scan.end, size);
    const bigFile = await Deno.open(big, { read: true });
    try {
      for (const w of [1 << 16, 3_000_001, undefined]) {
        assert.deepEqual(readAll(fileSource(bigFile, size), false, w), whole);
      }
    } finally {
      bigFile.close();
    }
    const again = await open({ path: big });
    try {
      assert.equal(await again.count(), 12_001);
      for (const n of [0, 4_321, 9_999, 11_999]) {
        assert.deepEqual(await again.get(`d${n}`), { n, pad });
      }
    } finally {
      await again.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
