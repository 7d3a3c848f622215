/**
 * The memory storage's write log (src/storage/memory_log.ts) against a
 * model: object sets written again while they wait (logged once), byte
 * sets, deletes, and folds of any size in between, as the engine writes
 * (a set object stands for one key and is not written after its key's
 * delete). After a full fold the key table holds exactly the model's keys,
 * values and versionstamps; and the memory storage folds a large log in
 * the background, a slice per turn, with reads always up to date.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { KeyTable } from "../src/engine/key_table.ts";
import { stamp, WriteLog } from "../src/storage/memory_log.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import type { ObjectSet } from "../src/storage/contract.ts";

const RUNS = Deno.env.get("TETHER_TORTURE") ? 2_000 : 200;

/** An object set as the engine makes them: the record can change. */
class Doc implements ObjectSet {
  readonly key: Uint8Array;
  memo: unknown;
  logged: number | undefined = undefined;
  constructor(key: Uint8Array, memo: unknown) {
    this.key = key;
    this.memo = memo;
  }
  readonly encode = (memo: unknown): Uint8Array =>
    new TextEncoder().encode(JSON.stringify(memo));
}

const keyOf = (k: number) => new Uint8Array([1, k]);

/** `n` object sets under the key byte `first`, the i-th with memo `i`. */
function numbered(first: number, n: number): Doc[] {
  const docs: Doc[] = [];
  for (let i = 0; i < n; i++) {
    docs.push(
      new Doc(new Uint8Array([first, i >> 16, (i >> 8) & 255, i & 255]), i),
    );
  }
  return docs;
}

type Op =
  | { t: "obj"; k: number; n: number }
  | { t: "bytes"; k: number; n: number }
  | { t: "del"; k: number }
  | { t: "fold"; limit: number }
  | { t: "check" };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    t: fc.constant("obj" as const),
    k: fc.nat(7),
    n: fc.nat(1000),
  }),
  fc.record({
    t: fc.constant("bytes" as const),
    k: fc.nat(7),
    n: fc.nat(255),
  }),
  fc.record({ t: fc.constant("del" as const), k: fc.nat(7) }),
  fc.record({ t: fc.constant("fold" as const), limit: fc.nat(6) }),
  fc.record({ t: fc.constant("check" as const) }),
);

Deno.test("memory write log: any folds between writes give the model's table", () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const table = new KeyTable();
      const log = new WriteLog(table);
      // Per key: its bytes and the version of its last write.
      const model = new Map<number, { bytes: string; version: number }>();
      // The live object set of a key (the engine's slot).
      const docs = new Map<number, Doc>();
      let version = 0;
      const check = () => {
        log.fold();
        assert.equal(log.pending, 0);
        assert.equal(log.waste, 0);
        const got = [...table.slots()].map((s) => ({
          k: s.key[1]!,
          bytes: new TextDecoder().decode(s.value),
          versionstamp: s.versionstamp,
        }));
        const want = [...model.entries()]
          .sort(([a], [b]) => a - b)
          .map(([k, v]) => ({
            k,
            bytes: v.bytes,
            versionstamp: stamp(v.version),
          }));
        assert.deepEqual(got, want);
      };
      for (const o of ops) {
        if (o.t === "obj") {
          version++;
          let doc = docs.get(o.k);
          if (doc === undefined) {
            doc = new Doc(keyOf(o.k), { n: o.n });
            docs.set(o.k, doc);
          } else doc.memo = { n: o.n }; // the engine's update of its slot
          log.append([doc], undefined, version);
          model.set(o.k, { bytes: JSON.stringify({ n: o.n }), version });
        } else if (o.t === "bytes") {
          version++;
          // A byte set replaces the key: its object set is done with.
          docs.delete(o.k);
          const bytes = JSON.stringify({ b: o.n });
          log.append(
            [{ key: keyOf(o.k), value: new TextEncoder().encode(bytes) }],
            undefined,
            version,
          );
          model.set(o.k, { bytes, version });
        } else if (o.t === "del") {
          version++;
          docs.delete(o.k);
          log.append(undefined, [keyOf(o.k)], version);
          model.delete(o.k);
        } else if (o.t === "fold") {
          const before = log.pending;
          const left = log.fold(o.limit);
          assert.equal(left, Math.max(0, before - o.limit));
        } else {
          check();
        }
      }
      check();
    }),
    { numRuns: RUNS },
  );
});

Deno.test("memory storage: a log heavy with deletes folds in the background, a slice per turn; reads see every write", async () => {
  const storage = new MemoryStorage();
  const N = 70_000;
  const docs = numbered(2, N);
  storage.objects!.commit({ sets: docs });
  // Every other one deleted: enough deletes to start a background fold.
  const gone = docs.filter((_, i) => i % 2 === 0).map((d) => d.key);
  for (let i = 0; i < gone.length; i += 1000) {
    storage.objects!.commit({ deletes: gone.slice(i, i + 1000) });
  }
  for (let i = 0; i < 70_000; i += 1000) {
    const keys: Uint8Array[] = [];
    for (let j = i; j < i + 1000; j++) {
      keys.push(new Uint8Array([3, j >> 16, (j >> 8) & 255, j & 255]));
    }
    storage.objects!.commit({ deletes: keys });
  }
  // Deletes of keys never written still wait in the log until folded. The
  // fold runs in slices between turns (the loop keeps turning meanwhile),
  // with no read to force it.
  const before = storage.stats();
  assert.equal(before.backgroundFolds, 1);
  assert(before.loggedSteps > 100_000);
  let turns = 0;
  const timer = setInterval(() => turns++, 0);
  while (storage.stats().loggedSteps > 0) {
    await new Promise((r) => setTimeout(r, 1));
  }
  clearInterval(timer);
  assert(turns > 0);
  // Reads fold whatever is left first: exactly the odd keys remain.
  const seen: number[] = [];
  for await (const page of storage.scan({ prefix: new Uint8Array([2]) })) {
    for (const e of page) seen.push((e.memo ?? 0) as number);
  }
  assert.equal(seen.length, N / 2);
  assert(seen.every((n, i) => n === 2 * i + 1));
  assert.equal(await storage.get(docs[0]!.key), null);
  assert.equal((await storage.get(docs[1]!.key))?.memo, 1);
  await storage.close();
});

Deno.test("memory storage: a read after a long log is answered after a few turns, with every write before it; a close meanwhile rejects it", async () => {
  const storage = new MemoryStorage();
  const N = 50_000;
  const docs = numbered(4, N);
  for (let i = 0; i < N; i += 500) {
    storage.objects!.commit({ sets: docs.slice(i, i + 500) });
  }
  assert.equal(storage.stats().loggedSteps, N);
  // A timer due now runs while the read folds (the loop turns).
  let ticked = false;
  setTimeout(() => ticked = true, 0);
  const read = storage.get(docs[N - 1]!.key);
  // A write after the read was asked may be seen or not; this one is to a
  // key the read does not look at.
  storage.objects!.commit({ sets: [new Doc(new Uint8Array([5]), "later")] });
  assert.equal((await read)?.memo, N - 1);
  assert(ticked);
  assert.equal(storage.stats().loggedSteps, 0);
  const all = await storage.getMany(docs.map((d) => d.key));
  assert(all.every((e, i) => e?.memo === i));
  // A checked commit after a long log: checked against every write.
  for (let i = 0; i < N; i += 500) {
    storage.objects!.commit({ sets: docs.slice(i, i + 500) });
  }
  const last = (await storage.get(docs[7]!.key))!;
  for (let i = 0; i < N; i += 500) {
    storage.objects!.commit({ sets: docs.slice(i, i + 500) });
  }
  const stale = await storage.commit({
    checks: [{ key: docs[7]!.key, versionstamp: last.versionstamp }],
    sets: [{ key: new Uint8Array([6]), value: new Uint8Array([1]) }],
  });
  assert.equal(stale.ok, false, "the key was written again since");
  // Closed while a read waits for the fold: the read is refused.
  for (let i = 0; i < N; i += 500) {
    storage.objects!.commit({ sets: docs.slice(i, i + 500) });
  }
  const pending = storage.get(docs[0]!.key);
  await storage.close();
  await assert.rejects(pending, /closed/);
});

Deno.test("memory database: a delete-heavy run folds in the background while writes go on; verify, backup and restore see exactly the model", async () => {
  const { open } = await import("../mod.ts");
  await using db = await open<{ n: number }>({
    ttlCheckInterval: Infinity,
    cleanupInterval: Infinity,
  });
  const storage = () =>
    db.stats().storageStats as { loggedSteps: number; backgroundFolds: number };
  const model = new Map<string, number>();
  // Rounds of 10,000 puts and deletes of the previous round's odd keys,
  // with turns of the event loop in between, where folds run.
  let n = 0;
  for (let round = 0; round < 10; round++) {
    const batch = new Map<string, { n: number }>();
    for (let i = 0; i < 10_000; i++) {
      const key = `r${round}-${i}`;
      batch.set(key, { n: ++n });
      model.set(key, n);
    }
    await db.putBatch(batch);
    if (round > 0) {
      for (let i = 1; i < 10_000; i += 2) {
        const key = `r${round - 1}-${i}`;
        await db.delete(key);
        model.delete(key);
      }
    }
    // One document written again and again (one object logged once).
    await db.put("hot", { n: ++n });
    model.set("hot", n);
    await new Promise((r) => setTimeout(r, 0));
  }
  // Enough deletes for a background fold (more than 65,536 waiting).
  for (let i = 0; i < 10_000; i++) {
    const key = `r9-${i}`;
    await db.delete(key);
    model.delete(key);
  }
  for (let round = 0; round < 9; round++) {
    for (let i = 0; i < 10_000; i += 2) {
      const key = `r${round}-${i}`;
      await db.delete(key);
      model.delete(key);
    }
  }
  await db.put("hot", { n: ++n });
  model.set("hot", n);
  assert(storage().backgroundFolds >= 1);
  while (storage().loggedSteps > 0) {
    await new Promise((r) => setTimeout(r, 1));
  }
  // The engine's view and the storage's bytes agree.
  assert.deepEqual((await db.verify()).problems, []);
  assert.equal(db.stats().items, model.size);
  // A backup reads the storage's table: exactly the model's documents.
  const chunks: Uint8Array[] = [];
  const done = await db.backup(
    new WritableStream({ write: (c) => void chunks.push(c) }),
  );
  assert.equal(done.documents, model.size);
  await using copy = await open<{ n: number }>();
  await copy.restore(new Blob(chunks as Uint8Array<ArrayBuffer>[]).stream());
  const got = new Map<string, number>();
  for await (const e of copy.find({}).entries()) got.set(e.key, e.value.n);
  assert.deepEqual(got, model);
});
