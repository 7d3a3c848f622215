/**
 * The durable change feed, `changes({ since })`, on memory (restarted over
 * the same memory in one process), file and Deno KV storages: the same
 * tests on each. See docs/changes.md for what they check.
 */

import assert from "node:assert/strict";
import { FeedGapError, open } from "../mod.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import type {
  Storage,
  StorageCommit,
  StorageCommitResult,
} from "../src/storage/contract.ts";
import { decodeKey, encodeKey } from "../src/key_codec.ts";
import { encodeRecord } from "../src/value_codec.ts";
import { FakeClock } from "./conformance/database_suite.ts";
import {
  assertGrowing,
  brief,
  collect,
  keepOpen,
  place,
  PLACES,
} from "./changes_helpers.ts";

const DAY = 86_400_000;

for (const name of PLACES) {
  const t = (title: string, fn: () => Promise<void>) =>
    Deno.test(`changes (${name}): ${title}`, fn);

  t(
    "after a restart, the first read lists every key as written: non-ASCII, NUL, quotes, in several collections",
    async () => {
      const at = await place(name);
      try {
        const ids = [
          "plain",
          "caf\u00e9",
          "nul\u0000inside",
          "\u{1F600}",
          'q"uote',
          "\u007f",
          "\u0080",
          "a\u00ffb",
          "",
        ].filter((id) => id !== "");
        const want: string[] = [];
        {
          await using db = await at.open();
          for (const c of ["a", "b.x", "c"]) {
            const col = db.collection(c);
            for (const id of ids) {
              await col.put(id, { c, id });
              want.push(`put ${c}/${id}`);
            }
          }
          // A key written again after others: its latest position only.
          await db.collection("a").put("plain", { again: true });
          want.splice(want.indexOf("put a/plain"), 1);
          want.push("put a/plain");
        }
        // Reopened: the feed indexes the stored documents on first read.
        await using db = await at.open();
        const all = await collect(db);
        assert.deepEqual(brief(all), want);
        assertGrowing(all);
        for (const c of all) {
          if (c.key === "plain" && c.collection === "a") {
            assert.deepEqual(c.doc, { again: true });
          } else {
            assert.deepEqual(c.doc, { c: c.collection, id: c.key });
          }
        }
      } finally {
        await at.drop();
      }
    },
  );

  t(
    "holds each key's latest change in position order; since is exclusive; limit",
    async () => {
      const at = await place(name);
      try {
        await using db = await at.open();
        const r = db.collection<{ n: number }>("r");
        await r.put("a", { n: 1 });
        await r.put("b", { n: 1 });
        await r.put("a", { n: 2 });
        await r.put("c", { n: 1 });
        assert(await r.delete("b"));
        await r.delete("nothing"); // no change
        const all = await collect(r);
        assert.deepEqual(brief(all), ["put r/a", "put r/c", "delete r/b"]);
        assertGrowing(all);
        assert.deepEqual(all[0]!.doc, { n: 2 });
        assert.equal(all[0]!.version, 2);
        assert.equal(all[2]!.doc, undefined);
        assert.equal(all[2]!.version, 2, "a delete is the next version");
        // since is exclusive.
        assert.deepEqual(brief(await collect(r, { since: all[0]!.seq })), [
          "put r/c",
          "delete r/b",
        ]);
        assert.deepEqual(await collect(r, { since: all[2]!.seq }), []);
        // limit.
        assert.deepEqual(brief(await collect(r, { limit: 2 })), [
          "put r/a",
          "put r/c",
        ]);
        // Documents are copies.
        (all[0]!.doc as { n: number }).n = 99;
        assert.deepEqual((await collect(r, { limit: 1 }))[0]!.doc, { n: 2 });
        // The database's feed covers every collection, or the ones named.
        await db.collection("s").put("z", 1);
        await db.put("d", 1);
        assert.deepEqual(brief(await collect(db, { since: all[2]!.seq })), [
          "put s/z",
          "put default/d",
        ]);
        assert.deepEqual(
          brief(await collect(db, { collections: ["s", "r"] })),
          ["put r/a", "put r/c", "delete r/b", "put s/z"],
        );
        // A collection's feed only its own.
        assert.deepEqual(brief(await collect(db.collection("s"))), ["put s/z"]);
        assert.deepEqual(brief(await collect(db)).at(-1), "put default/d");
      } finally {
        await at.drop();
      }
    },
  );

  t(
    "resumes from a saved seq after a restart; positions are never reused",
    async () => {
      const at = await place(name);
      try {
        let saved: string;
        let top: number;
        {
          await using db = await at.open();
          await db.put("a", 1);
          await db.put("b", 2, { ttl: 1000 });
          const first = await collect(db);
          saved = first.at(-1)!.seq;
          await db.put("c", 3);
          await db.delete("a");
          at.clock.advance(2000);
          await db.cleanup(); // "b" expires: its marker takes a position
          const all = await collect(db, { expiries: true });
          top = Math.max(...all.map((c) => Number(c.seq)));
        }
        {
          await using db = await at.open();
          const after = await collect(db, { since: saved, expiries: true });
          assert.deepEqual(brief(after), [
            "put default/c",
            "delete default/a",
            "expire default/b",
          ]);
          assertGrowing(after, saved);
          // Without expiries, the expiry is not a change.
          assert.deepEqual(brief(await collect(db, { since: saved })), [
            "put default/c",
            "delete default/a",
          ]);
          // Everything that held the top position goes: purge and compaction.
          await db.delete("c");
          at.clock.advance(8 * DAY);
          await db.compact();
          await db.put("z", 1); // (its tombstone, if any, is gone too)
          await db.delete("z");
          at.clock.advance(8 * DAY);
          await db.compact();
        }
        {
          await using db = await at.open();
          await db.put("n", 1);
          const [change] = await collect(db);
          assert.equal(change!.key, "n");
          assert(Number(change!.seq) > top, `${change!.seq} > ${top}`);
        }
      } finally {
        await at.drop();
      }
    },
  );

  t(
    "a since older than purged delete markers is a FeedGapError (a RangeError)",
    async () => {
      const at = await place(name);
      try {
        await using db = await at.open();
        await db.put("a", 1);
        const [first] = await collect(db);
        await db.put("b", 1);
        await db.delete("b");
        at.clock.advance(8 * DAY);
        await db.compact(); // the tombstone of "b" goes
        const err = await assert.rejects(
          collect(db, { since: first!.seq }),
          FeedGapError,
        );
        assert(err === undefined);
        try {
          await collect(db, { since: first!.seq });
        } catch (e) {
          assert(e instanceof RangeError);
          assert.match((e as Error).message, /resync/);
        }
        // From the start it reads the current state.
        assert.deepEqual(brief(await collect(db)), ["put default/a"]);
        // From a position after the purge it resumes.
        await db.put("c", 1);
        const all = await collect(db);
        assert.deepEqual(brief(all), ["put default/a", "put default/c"]);
        assert.deepEqual(await collect(db, { since: all[1]!.seq }), []);
        // A position this database never reached.
        await assert.rejects(
          collect(db, { since: String(Number(all[1]!.seq) + 1000) }),
          FeedGapError,
        );
      } finally {
        await at.drop();
      }
    },
  );

  t("live: waits for new commits, ends on abort and on close", async () => {
    const at = await place(name);
    try {
      const db = await at.open();
      await db.put("a", 1);
      const stop = new AbortController();
      const seen: string[] = [];
      let waiting: { n: number; resolve: () => void } | undefined;
      const seenCount = (n: number) => {
        if (seen.length >= n) return Promise.resolve();
        const { promise, resolve } = Promise.withResolvers<void>();
        waiting = { n, resolve };
        return promise;
      };
      const reading = (async () => {
        for await (const c of db.changes({ signal: stop.signal })) {
          seen.push(`${c.type} ${c.key}`);
          if (waiting !== undefined && seen.length >= waiting.n) {
            waiting.resolve();
          }
        }
      })();
      await seenCount(1); // caught up, now waiting
      await db.put("b", 1);
      await seenCount(2);
      await db.delete("a");
      await seenCount(3);
      assert.deepEqual(seen, ["put a", "put b", "delete a"]);
      stop.abort();
      await reading; // ended, no error
      // A second live reader ends when the database closes.
      const reader = (async () => {
        const out: string[] = [];
        for await (const c of db.changes({ since: "1" })) out.push(c.key);
        return out;
      })();
      await new Promise((r) => setTimeout(r, 10));
      await db.close();
      assert.deepEqual(await reader, ["b", "a"]);
    } finally {
      await at.drop();
    }
  });

  t(
    "limit ends a live read; bad options are refused before anything",
    async () => {
      const at = await place(name);
      try {
        await using db = await at.open();
        await db.put("a", 1);
        const reader = (async () => {
          const out: string[] = [];
          for await (const c of db.changes({ limit: 2 })) out.push(c.key);
          return out;
        })();
        await db.put("b", 1);
        await db.put("c", 1);
        assert.deepEqual(await reader, ["a", "b"]);
        assert.throws(() => db.changes({ limit: 0 }), RangeError);
        assert.throws(() => db.changes({ limit: 1.5 }), RangeError);
        assert.throws(() => db.changes({ since: "x" }), RangeError);
        assert.throws(() => db.changes({ since: "-1" }), RangeError);
        assert.throws(
          () => db.changes({ since: 3 as unknown as string }),
          TypeError,
        );
        assert.throws(
          () => db.changes({ live: "no" as unknown as boolean }),
          TypeError,
        );
        assert.throws(
          () => db.changes({ sinse: "1" } as unknown as { since: string }),
          TypeError,
        );
        assert.throws(
          () => db.changes({ collections: [""] }),
          TypeError,
        );
      } finally {
        await at.drop();
      }
    },
  );

  t(
    "a restore's changes take new positions after every earlier one",
    async () => {
      const at = await place(name);
      const dir = await Deno.makeTempDir({ prefix: "tether-feed-bk-" });
      try {
        await using db = await at.open();
        await db.put("a", 1);
        await db.put("b", 2);
        await db.backup(`${dir}/full.tbk`);
        await db.put("c", 3);
        await db.delete("a");
        const before = await collect(db);
        const top = before.at(-1)!.seq;
        await db.restore(`${dir}/full.tbk`);
        const after = await collect(db, { since: top });
        assertGrowing(after, top);
        assert.deepEqual(brief(after).sort(), [
          "delete default/c",
          "put default/a",
          "put default/b",
        ]);
        for (const c of after) {
          if (c.type === "put") assert.equal(c.doc, c.key === "a" ? 1 : 2);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
        await at.drop();
      }
    },
  );

  t(
    "an expired put is hidden; its expiry shows only with expiries: true",
    async () => {
      const at = await place(name);
      try {
        await using db = await at.open();
        await db.put("t", { x: 1 }, { ttl: 1000 });
        await db.put("k", 1);
        at.clock.advance(1000);
        // Expired, not swept yet: hidden like from every read.
        assert.deepEqual(brief(await collect(db, { expiries: true })), [
          "put default/k",
        ]);
        await db.cleanup();
        assert.deepEqual(brief(await collect(db)), ["put default/k"]);
        const withExpiries = await collect(db, { expiries: true });
        assert.deepEqual(brief(withExpiries), [
          "put default/k",
          "expire default/t",
        ]);
        assert.equal(withExpiries[1]!.version, 1);
        // Written again: the expiry is superseded.
        await db.put("t", { x: 2 });
        assert.deepEqual(brief(await collect(db, { expiries: true })), [
          "put default/k",
          "put default/t",
        ]);
      } finally {
        await at.drop();
      }
    },
  );
}

/** A memory storage whose commits can be made to fail. */
class Failing implements Storage {
  readonly below = new MemoryStorage();
  readonly capabilities = this.below.capabilities;
  /** The next commit that writes this many sets throws / is taken back. */
  fail: "throw" | "takeBack" | undefined;
  get = this.below.get.bind(this.below);
  getMany = this.below.getMany.bind(this.below);
  scan = this.below.scan.bind(this.below);
  close = this.below.close.bind(this.below);
  async commit(commit: StorageCommit): Promise<StorageCommitResult> {
    const mode = this.fail;
    this.fail = undefined;
    if (mode === "throw") throw new Error("disk gone");
    if (mode !== "takeBack") return this.below.commit(commit);
    // Applied, then taken back instead of made durable.
    const keys = [
      ...(commit.sets ?? []).map((s) => s.key),
      ...commit.deletes ?? [],
    ];
    const before = await this.below.getMany(keys);
    const result = await this.below.commit(commit);
    if (!result.ok) return result;
    const { promise, reject } = Promise.withResolvers<void>();
    setTimeout(async () => {
      await this.below.commit({
        sets: before.flatMap((e, i) =>
          e === null ? [] : [{ key: keys[i]!, value: e.value }]
        ),
        deletes: before.flatMap((e, i) => e === null ? [keys[i]!] : []),
      });
      reject(new Error("fsync failed"));
    }, 20);
    return { ok: true, versionstamp: result.versionstamp, durable: promise };
  }
}

Deno.test("changes: a put whose commit failed or was taken back is never in the feed", async () => {
  const storage = new Failing();
  await using db = await open({ storage });
  await db.put("a", 1);
  const seen: string[] = [];
  const stop = new AbortController();
  const reading = (async () => {
    for await (const c of db.changes({ signal: stop.signal })) {
      seen.push(`${c.type} ${c.key} ${JSON.stringify(c.doc)}`);
      if (c.key === "c") stop.abort();
    }
  })();
  storage.fail = "throw";
  await assert.rejects(db.put("lost", 1), /disk gone/);
  storage.fail = "takeBack";
  await assert.rejects(db.put("a", 2), /fsync failed/);
  await db.put("c", 1);
  await reading;
  assert.deepEqual(seen, ["put a 1", "put c 1"]);
  assert.deepEqual(brief(await collect(db)), [
    "put default/a",
    "put default/c",
  ]);
  assert.equal((await collect(db))[0]!.doc, 1);
});

Deno.test("changes: records written before the feed are position 0, read first in key order", async () => {
  const memory = new MemoryStorage();
  const storage = keepOpen(memory);
  const record = (n: number) =>
    encodeRecord({
      value: { n },
      tags: undefined,
      expiresAt: undefined,
      createdAt: 1,
      updatedAt: 1,
      version: 1,
      seq: n,
      dates: undefined,
    });
  await memory.commit({
    sets: [
      { key: encodeKey(["d", "default", "old1"]), value: record(1) },
      { key: encodeKey(["d", "default", "old2"]), value: record(2) },
      {
        key: encodeKey(["t", "default", "gone"]),
        value: new TextEncoder().encode("5"),
      },
    ],
  });
  const clock = new FakeClock();
  await using db = await open({ storage, clock });
  await db.put("new", 1);
  const all = await collect(db);
  assert.deepEqual(brief(all), [
    "put default/old1",
    "put default/old2",
    "put default/new",
  ]);
  assert.match(all[0]!.seq, /^0\./);
  assert.deepEqual(brief(await collect(db, { since: all[0]!.seq })), [
    "put default/old2",
    "put default/new",
  ]);
  assert.deepEqual(brief(await collect(db, { since: all[1]!.seq })), [
    "put default/new",
  ]);
  // Written again, a legacy record takes a position like any other.
  await db.put("old1", 2);
  assert.deepEqual(brief(await collect(db, { since: all[2]!.seq })), [
    "put default/old1",
  ]);
  // Old tombstones still count for incremental backups' purge (no crash).
  clock.advance(8 * DAY);
  await db.compact();
});

Deno.test("changes (kv): a second process's commits reach a live feed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-feed-" });
  const kv = `${dir}/kv.sqlite`;
  try {
    await using db = await open({ kv });
    await db.put("mine", 1);
    const stop = new AbortController();
    const seen: string[] = [];
    const first = Promise.withResolvers<void>();
    const reading = (async () => {
      for await (const c of db.changes({ signal: stop.signal })) {
        seen.push(`${c.type} ${c.key}`);
        first.resolve();
        if (c.key === "theirs2") stop.abort();
      }
    })();
    await first.promise; // caught up: the rest comes from the other process
    const script = `
      import { open } from ${
      JSON.stringify(new URL("../mod.ts", import.meta.url).href)
    };
      const db = await open({ kv: ${JSON.stringify(kv)} });
      await db.put("theirs1", 1);
      await db.delete("mine");
      await db.put("theirs2", 2);
      await db.close();
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--unstable-kv", script],
      stderr: "piped",
      stdout: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    await reading;
    assert.deepEqual(seen, [
      "put mine",
      "put theirs1",
      "delete mine",
      "put theirs2",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("changes (kv): updates leave one by-position key per item", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  for (let i = 0; i < 20; i++) await db.put(`k${i % 4}`, i);
  await db.delete("k0");
  let n = 0;
  for await (const _ of kv.list({ prefix: ["tether"] })) n++;
  // 3 documents, 1 tombstone, 4 by-position keys, the counter.
  assert.equal(n, 9);
  assert.deepEqual(brief(await collect(db)), [
    "put default/k1",
    "put default/k2",
    "put default/k3",
    "delete default/k0",
  ]);
  kv.close();
});

Deno.test("changes (file): concurrent commits sharing fsyncs all reach a live reader, in position order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-feed-" });
  try {
    for (const durability of ["strict", "batched"] as const) {
      await using db = await open({
        path: `${dir}/${durability}.tdb`,
        durability,
      });
      const stop = new AbortController();
      const seen: string[] = [];
      const reading = (async () => {
        for await (const c of db.changes({ signal: stop.signal })) {
          seen.push(c.seq);
          if (seen.length === 200) stop.abort();
        }
      })();
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => db.put(`k${i}`, i)),
      );
      // Batched: the changes show after the flush, whose timer is unref'd.
      const keep = setInterval(() => {}, 5);
      await reading;
      clearInterval(keep);
      assert.equal(new Set(seen).size, 200);
      assert.deepEqual(seen, [...seen].sort((a, b) => Number(a) - Number(b)));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("changes (kv): the tombstone purge removes the by-position keys of deletions, superseded ones too", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  await using db = await open({ kv, clock });
  await db.put("a", 1);
  await db.delete("a");
  await db.put("a", 2); // its deletion's by-position key is now stale
  await db.put("b", 1);
  await db.delete("b");
  clock.advance(8 * DAY);
  await db.compact();
  const keys: string[] = [];
  for await (const e of kv.list({ prefix: ["tether"] })) {
    keys.push(JSON.stringify(decodeKey(e.key[1] as Uint8Array)));
  }
  assert.deepEqual(keys.sort(), [
    '["d","default","a"]',
    '["k","feed"]',
    '["k","feedgap"]',
    '["k","tombstones"]',
    `["q",3]`,
  ]);
  assert.deepEqual(brief(await collect(db)), ["put default/a"]);
  kv.close();
});
