/**
 * `rekey()` racing writes (issue 13, item 1) and revoking the old secret
 * (item 9): every write acknowledged before, during or after a rekey reads
 * back after a reopen with the new secret, the file always opens, and the
 * old secret opens nothing of it.
 */

import assert from "node:assert/strict";
import { open, WrongKeyError } from "../mod.ts";
import { base64ToBytes } from "../src/bytes.ts";
import {
  EnvelopeError,
  importKeys,
  open as openEnvelope,
} from "../src/crypto/codec.ts";
import { openWithSecret } from "../src/crypto/codec_wrap.ts";
import { FileStorage } from "../src/storage/file.ts";
import { encodeKey } from "../src/key_codec.ts";

const HEADER = encodeKey(["k", "header"]);

const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
const RUNS = TORTURE ? 20 : 6;
const WORKERS = 4;
const PUTS = TORTURE ? 150 : 60;

Deno.test("rekey racing hundreds of puts: every acknowledged write reads back after a reopen with the new secret", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-rekey-" });
  try {
    for (let run = 0; run < RUNS; run++) {
      const path = `${dir}/r${run}.tdb`;
      const old = { passphrase: `old ${run}`, iterations: 1000 };
      const next = { passphrase: `new ${run}`, iterations: 1000 };
      const model = new Map<string, unknown>();
      {
        const db = await open({ path, encryption: old });
        const c = db.collection("c");
        await c.createIndex("n");
        for (let i = 0; i < 40; i++) {
          await db.put(`pre${i}`, { i });
          model.set(`pre${i}`, { i });
        }
        const workers = Array.from({ length: WORKERS }, async (_, w) => {
          for (let i = 0; i < PUTS; i++) {
            const key = `w${w}-${i % 50}`;
            const value = { w, i, pad: "x".repeat(i % 40) };
            if (i % 3 === 0) {
              const doc = { n: i % 7, w };
              await c.put(key, doc);
              model.set(`c/${key}`, doc);
            } else {
              await db.put(key, value);
              model.set(key, value);
            }
          }
        });
        // The rekey starts at a different moment in each run.
        for (let i = 0; i < run % 5; i++) await db.get("pre0");
        const rekey = db.rekey(next);
        await Promise.all([...workers, rekey]);
        // And writes after it.
        for (let i = 0; i < 10; i++) {
          await db.put(`post${i}`, { i });
          model.set(`post${i}`, { i });
        }
        await db.close();
      }
      await assert.rejects(open({ path, encryption: old }), WrongKeyError);
      await using db = await open({ path, encryption: next });
      for (const [key, value] of model) {
        if (key.startsWith("c/")) {
          assert.deepEqual(
            await db.collection("c").get(key.slice(2)),
            value,
            `run ${run}: ${key}`,
          );
        } else {
          assert.deepEqual(await db.get(key), value, `run ${run}: ${key}`);
        }
      }
      // The blind index still answers.
      const byIndex = await db.collection("c").count({ n: 3 });
      let expected = 0;
      for (const [key, value] of model) {
        if (key.startsWith("c/") && (value as { n: number }).n === 3) {
          expected++;
        }
      }
      assert.equal(byIndex, expected, `run ${run}: index`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Every raw entry of a file database, below the codec. */
async function rawEntries(
  path: string,
): Promise<{ key: Uint8Array; value: Uint8Array }[]> {
  const inner = await FileStorage.open(path);
  try {
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for await (const page of inner.scan({})) {
      for (const e of page) out.push({ key: e.key, value: e.value });
    }
    return out;
  } finally {
    await inner.close();
  }
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0];
  outer: for (let i = haystack.indexOf(first!); i >= 0;) {
    if (i + needle.length > haystack.length) return false;
    for (let j = 1; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) {
        i = haystack.indexOf(first!, i + 1);
        continue outer;
      }
    }
    return true;
  }
  return false;
}

Deno.test("rekey revokes the old secret: no old wrap, key or value is left in the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-rekey-" });
  try {
    const path = `${dir}/db.tdb`;
    const old = { passphrase: "old secret", iterations: 1000 };
    const next = { passphrase: "new secret", iterations: 1000 };
    {
      await using db = await open({ path, encryption: old });
      const c = db.collection("c");
      await c.createIndex("city");
      for (let i = 0; i < 30; i++) {
        await c.put(`d${i}`, { city: ["Oslo", "Lima"][i % 2], i });
      }
    }
    // What the old secret opens: the wrap, the data keys, every value.
    const before = await rawEntries(path);
    const header = before.find((e) =>
      e.key.length === HEADER.length && e.key.every((b, i) => b === HEADER[i])
    )!;
    const wrap = JSON.parse(new TextDecoder().decode(header.value))
      .encryption.wraps[0];
    const material = JSON.parse(
      new TextDecoder().decode(
        (await openWithSecret(old, wrap))!,
      ),
    );
    const oldKeys = await Promise.all(
      Object.entries(material as Record<string, string>)
        .filter(([name]) => /^\d+$/.test(name))
        .map(([name, b64]) => {
          const bytes = base64ToBytes(b64);
          return importKeys(
            Number(name),
            bytes.subarray(0, bytes.length - 32),
            bytes.subarray(bytes.length - 32),
          );
        }),
    );
    const values = before.filter((e) => e !== header);
    assert.ok(values.length >= 60);
    let opened = 0;
    for (const e of values) {
      await openEnvelope(e.value, e.key, () => oldKeys[0]);
      opened++;
    }
    assert.equal(opened, values.length);
    const bytesBefore = await Deno.readFile(path);
    const text = new TextEncoder();
    assert.ok(contains(bytesBefore, text.encode(wrap.keys)));
    const events: string[] = [];
    const logger = {
      info: (_: string, data: Readonly<Record<string, unknown>>) =>
        events.push(String(data.event)),
    };
    {
      await using db = await open({ path, encryption: old, logger });
      assert.ok(await db.rekey(next) >= values.length);
      await db.put("after", 1);
    }
    // Key-rotation progress reaches the logger.
    assert.ok(events.includes("rekey-start") && events.includes("rekey-done"));
    // Nothing the old keys open is left, live or dead.
    const file = await Deno.readFile(path);
    assert.ok(!contains(file, text.encode(wrap.keys)), "old wrap");
    assert.ok(!contains(file, text.encode(wrap.salt)), "old salt");
    for (const e of values) {
      // Each old envelope's tag: gone from the file.
      assert.ok(!contains(file, e.value.subarray(e.value.length - 32)));
    }
    for (const e of await rawEntries(path)) {
      for (const keys of oldKeys) {
        await assert.rejects(
          openEnvelope(e.value, e.key, () => keys),
          EnvelopeError,
        );
      }
    }
    await assert.rejects(open({ path, encryption: old }), WrongKeyError);
    await using db = await open({ path, encryption: next });
    assert.equal(await db.collection("c").count({ city: "Lima" }), 15);
    assert.equal(await db.get("after"), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
