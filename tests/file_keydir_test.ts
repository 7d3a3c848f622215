/**
 * The file storage keeps keys in RAM and values on disk: values come from
 * positioned reads of the log, a record damaged after open is an
 * IntegrityError naming the file and offset, and entries follow their
 * records through compactions and writes made meanwhile.
 */
import assert from "node:assert/strict";
import { IntegrityError } from "../mod.ts";
import { faults, FileStorage } from "../src/storage/file.ts";
import { KeyDir, keyEntry, LEGACY } from "../src/storage/file_keydir.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function tempDir(): Promise<
  { dir: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "tether-kd-" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

Deno.test("values are read from the file, not kept in RAM: bytes changed on disk after open are what a get returns", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/a.tdb`;
  {
    const s = await FileStorage.open(path);
    const r = await s.commit({
      sets: [{ key: enc("k"), value: enc("VALUE-ONE") }],
    });
    assert(r.ok);
    await r.durable;
    await s.close();
  }
  const reader = await FileStorage.open(path, { readOnly: true });
  try {
    const bytes = await Deno.readFile(path);
    const at = indexOf(bytes, enc("VALUE-ONE"));
    assert(at > 0);
    // Same length, other bytes: a copy in RAM would not see it.
    const file = await Deno.open(path, { write: true });
    await file.seek(at, Deno.SeekMode.Start);
    await file.write(enc("VALUE-TWO"));
    file.close();
    assert.equal(dec((await reader.get(enc("k")))!.value), "VALUE-TWO");
  } finally {
    await reader.close();
  }
});

Deno.test("a record damaged after open is an IntegrityError naming the file and the offset", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/b.tdb`;
  {
    const s = await FileStorage.open(path);
    const r = await s.commit({
      sets: [{ key: enc("k"), value: enc("some value") }],
    });
    assert(r.ok);
    await r.durable;
    await s.close();
  }
  const reader = await FileStorage.open(path, { readOnly: true });
  try {
    // The record's key length varint (just before "k"): now it runs past.
    const bytes = await Deno.readFile(path);
    // The key is the last "k" before the value (an earlier 0x6b may be
    // part of the header's time or a checksum).
    const value = indexOf(bytes, enc("some value"));
    assert(value > 0);
    const at = bytes.subarray(0, value).lastIndexOf(0x6b);
    assert(at > 0);
    const file = await Deno.open(path, { write: true });
    await file.seek(at - 1, Deno.SeekMode.Start);
    await file.write(new Uint8Array([0x7f]));
    file.close();
    await assert.rejects(
      reader.get(enc("k")),
      (e: Error) =>
        e instanceof IntegrityError && e.message.includes("b.tdb") &&
        /at byte \d+/.test(e.message),
    );
  } finally {
    await reader.close();
  }
});

Deno.test("entries follow their records through compactions with writes meanwhile, in every durability", async () => {
  for (const durability of ["strict", "batched", "none"] as const) {
    await using tmp = await tempDir();
    const path = `${tmp.dir}/c.tdb`;
    const s = await FileStorage.open(path, { durability });
    const model = new Map<string, string>();
    const put = async (k: string, v: string) => {
      model.set(k, v);
      const r = await s.commit({ sets: [{ key: enc(k), value: enc(v) }] });
      assert(r.ok);
    };
    for (let i = 0; i < 300; i++) await put(`k${i}`, `v${i}-`.repeat(i % 7));
    for (let round = 0; round < 3; round++) {
      const compacting = s.compact();
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 50; i++) {
        writes.push(put(`k${(i * 7 + round) % 320}`, `r${round}-${i}`));
      }
      const del = `k${round * 11}`;
      model.delete(del);
      await s.commit({ deletes: [enc(del)] });
      await Promise.all([compacting, ...writes]);
      for (const [k, v] of model) {
        assert.equal(
          dec((await s.get(enc(k)))!.value),
          v,
          `${durability} ${k}`,
        );
      }
      let n = 0;
      for await (const page of s.scan({})) {
        for (const e of page) {
          assert.equal(dec(e.value), model.get(dec(e.key)));
          n++;
        }
      }
      assert.equal(n, model.size);
    }
    await s.close();
    const again = await FileStorage.open(path, { readOnly: true });
    for (const [k, v] of model) {
      assert.equal(dec((await again.get(enc(k)))!.value), v);
    }
    await again.close();
  }
});

Deno.test("a version-2 file compacted while writes go on: the commits made meanwhile are upgraded and read back, before and after reopening", async () => {
  for (const durability of ["strict", "batched"] as const) {
    await using tmp = await tempDir();
    const path = `${tmp.dir}/v2.tdb`;
    await Deno.copyFile(
      new URL("./fixtures/file_v2.tdb", import.meta.url),
      path,
    );
    const s = await FileStorage.open(path, { durability });
    const before = new Map<string, string>();
    for await (const page of s.scan({})) {
      for (const e of page) before.set(dec(e.key), dec(e.value));
    }
    const compacting = s.compact();
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      writes.push(
        s.commit({ sets: [{ key: enc(`w${i}`), value: enc(`x${i}`) }] }),
      );
    }
    await Promise.all([compacting, ...writes]);
    for (let i = 40; i < 60; i++) {
      await s.commit({ sets: [{ key: enc(`w${i}`), value: enc(`x${i}`) }] });
    }
    const check = async (st: FileStorage) => {
      for (const [k, v] of before) {
        assert.equal(dec((await st.get(enc(k)))!.value), v);
      }
      for (let i = 0; i < 60; i++) {
        assert.equal(dec((await st.get(enc(`w${i}`)))!.value), `x${i}`);
      }
    };
    await check(s);
    await s.close();
    assert.equal((await Deno.readFile(path))[8], 3);
    const again = await FileStorage.open(path, { readOnly: true });
    await check(again);
    await again.close();
  }
});

Deno.test("a version-2 log: a commit made while its compaction renames the new file is written in version 3 (reopens clean)", async () => {
  for (const step of ["snapshot", "synced"]) {
    // At "synced" the commit is made in a microtask: while the rename of
    // the new file over the log is awaited.
    await using tmp = await tempDir();
    const path = `${tmp.dir}/v2.tdb`;
    await Deno.copyFile(
      new URL("./fixtures/file_v2.tdb", import.meta.url),
      path,
    );
    const s = await FileStorage.open(path);
    let during: Promise<unknown> | undefined;
    faults.compactStep = (at) => {
      if (at === step && during === undefined) {
        const { promise, resolve } = Promise.withResolvers<unknown>();
        during = promise;
        queueMicrotask(() => {
          resolve(
            s.commit({ sets: [{ key: enc("during"), value: enc("x") }] })
              .then((r) => r.ok ? r.durable : undefined),
          );
        });
      }
    };
    try {
      await s.compact();
    } finally {
      faults.compactStep = undefined;
    }
    await during;
    assert.equal(dec((await s.get(enc("during")))!.value), "x");
    await s.close();
    const again = await FileStorage.open(path, { readOnly: true });
    assert.equal(dec((await again.get(enc("during")))!.value), "x");
    await again.close();
  }
});

Deno.test("key entry: kind, generation and the unwritten flag share one field without disturbing each other; the directory holds the frames by commit", () => {
  const frame = new Uint8Array([1, 2, 3]);
  const e = keyEntry(7, 1, 2, LEGACY, 5, true, 3, -1, 9);
  assert.equal(e.kind, LEGACY);
  assert.equal(e.gen, 5);
  assert.equal(e.pending, true);
  e.gen = 123_456_789;
  assert.equal(e.gen, 123_456_789);
  assert.equal(e.kind, LEGACY);
  assert.equal(e.pending, true);
  e.kind = 0;
  assert.equal(e.kind, 0);
  assert.equal(e.gen, 123_456_789);
  assert.equal(e.pending, true);
  const dir = new KeyDir({
    gen: 123_456_789,
    path: "x.tdb",
    read: () => {
      throw new Error("not read from the file");
    },
  });
  dir.hold(7, frame);
  assert.equal(dir.frameOf(e), frame);
  assert.deepEqual(dir.stored(e), frame.subarray(1, 3));
  const other = new Uint8Array(4);
  dir.hold(7, other); // replaced while unwritten (an upgrade)
  assert.equal(dir.frameOf(e), other);
  e.settle();
  assert.equal(e.pending, false);
  assert.equal(dir.frameOf(e), undefined);
  e.settle(); // twice: still written
  assert.equal(e.pending, false);
  assert.equal(e.gen, 123_456_789);
  assert.equal(e.kind, 0);
  // One frame per commit, let go once it is written or taken back.
  assert.equal(dir.held, 1);
  dir.release(7);
  assert.equal(dir.held, 0);
  const gone = keyEntry(8, 0, 2, 0, 0, true, -1, -1, 0);
  assert.throws(() => dir.stored(gone), /taken back/);
  assert.deepEqual(
    [e.seq, e.at, e.len, e.envelope, e.x, e.f],
    [7, 1, 2, true, -1, 9],
  );
  // The directory's highest insertion sequence stands for the record's.
  assert.deepEqual(e.meta(40), { seq: 40, expiresAt: undefined, feed: 9 });
  const written = keyEntry(1, 0, 4, 0, 0, false, -1, -1, 0);
  assert.equal(written.pending, false);
  assert.equal(written.kind, 0);
  assert.equal(written.gen, 0);
  assert.equal(written.envelope, false);
  assert.equal(written.meta(40), undefined);
  // An expiry is kept by the entries that have one, beside the same flags.
  const expiring = keyEntry(2, 8, 4, 0, 3, true, 5, 1_700_000_000_123, 11);
  assert.equal(expiring.x, 1_700_000_000_123);
  assert.deepEqual(expiring.meta(7), {
    seq: 7,
    expiresAt: 1_700_000_000_123,
    feed: 11,
  });
  assert.equal(expiring.pending, true);
  expiring.gen = 99;
  expiring.settle();
  assert.deepEqual(
    [expiring.gen, expiring.kind, expiring.envelope, expiring.pending],
    [99, 0, true, false],
  );
});
