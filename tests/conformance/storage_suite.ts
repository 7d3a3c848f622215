/**
 * The storage-adapter conformance suite: byte-level contract checks that
 * every adapter must pass unchanged. Call {@linkcode storageSuite} from an
 * adapter's test file with a factory that makes a fresh, empty storage.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes, prefixEnd } from "../../src/bytes.ts";
import { ClosedError } from "../../src/errors.ts";
import type { Storage, StorageEntry } from "../../src/storage/contract.ts";
import { ReopeningStorage } from "./reopen.ts";

/** Makes a fresh, empty storage; `cleanup` removes what it left behind. */
export interface StorageFactory {
  /** Shown in test names. */
  readonly name: string;
  /** A new empty storage. */
  create(): Promise<Storage>;
  /**
   * When given, the suites run in a reopen-after-every-step variant: this
   * opens the storage last made by `create` again (after it was closed).
   */
  reopen?(): Promise<Storage>;
  /** Called after each test. */
  cleanup?(): Promise<void>;
  /**
   * Other processes may write to the storage (Deno KV): counts from an index
   * alone are not exact, so `count` reads documents.
   */
  readonly shared?: boolean;
  /**
   * Index keys hold digests of the values (an encrypted database): indexes
   * serve equality and `$in`, and ranges and sorts scan.
   */
  readonly blind?: boolean;
  /**
   * Multiplies the run counts of the property tests (default 1, at least 10
   * runs each): the codec variants repeat, over a slower stack, properties
   * the plain storages already run in full.
   */
  readonly propertyScale?: number;
  /**
   * Multiplies the item counts of the load tests whose size is not their
   * point (default 1): the codec variants seal every value, which costs the
   * same on every path, so they write fewer; {@linkcode loadSize} keeps each
   * count above the floor its test needs (several scan pages, carries in
   * the auto key's counter).
   */
  readonly loadScale?: number;
}

/**
 * The item count of a load test for a factory.
 *
 * @param factory The storage factory.
 * @param size The full count.
 * @param floor The least count that still tests the point.
 * @returns The count scaled by `factory.loadScale`, at least `floor`.
 */
export function loadSize(
  factory: StorageFactory,
  size: number,
  floor: number,
): number {
  return Math.min(
    size,
    Math.max(floor, Math.round(size * (factory.loadScale ?? 1))),
  );
}

/**
 * The run count of a property test for a factory.
 *
 * @param factory The storage factory.
 * @param runs The full count.
 * @returns The count scaled by `factory.propertyScale`.
 */
export function propertyRuns(factory: StorageFactory, runs: number): number {
  return Math.max(10, Math.round(runs * (factory.propertyScale ?? 1)));
}

/**
 * Most items a test writes in one call when filling a collection: a commit
 * of Deno KV holds at most 100 version checks, and the suites test scans
 * and indexes there, not batch sizes.
 */
export const FILL = 40;

/**
 * Writes `items` through `write` in calls of at most {@linkcode FILL}.
 *
 * @param items What to write.
 * @param write Writes one slice (`insertMany`, `putBatch`).
 */
export async function fill<I>(
  items: readonly I[],
  write: (slice: I[]) => Promise<unknown>,
): Promise<void> {
  for (let i = 0; i < items.length; i += FILL) {
    await write(items.slice(i, i + FILL));
  }
}

const b = (...bytes: number[]) => new Uint8Array(bytes);
const hex = (u: Uint8Array) => [...u].map((x) => x.toString(16)).join(",");

async function collect(
  it: AsyncIterable<readonly StorageEntry[]>,
): Promise<StorageEntry[]> {
  const out: StorageEntry[] = [];
  for await (const page of it) {
    assert.ok(page.length > 0, "pages are never empty");
    out.push(...page);
  }
  return out;
}

async function withStorage(
  factory: StorageFactory,
  fn: (s: Storage) => Promise<void>,
): Promise<void> {
  const first = await factory.create();
  const storage = factory.reopen === undefined
    ? first
    : new ReopeningStorage(first, () => factory.reopen!());
  try {
    await fn(storage);
  } finally {
    await storage.close();
    await factory.cleanup?.();
  }
}

/**
 * Registers the storage conformance tests for one adapter.
 *
 * @param factory Makes fresh storages.
 */
export function storageSuite(factory: StorageFactory): void {
  const t = (name: string, fn: (s: Storage) => Promise<void>) =>
    Deno.test(`storage conformance [${factory.name}]: ${name}`, () =>
      withStorage(factory, fn));

  t("get of a missing key is null", async (s) => {
    assert.equal(await s.get(b(1)), null);
    assert.deepEqual(await s.getMany([b(1), b(2)]), [null, null]);
  });

  t("commit sets and get reads back with a versionstamp", async (s) => {
    const r = await s.commit({ sets: [{ key: b(1), value: b(9, 9) }] });
    assert.ok(r.ok);
    const e = await s.get(b(1));
    assert.ok(e !== null);
    assert.deepEqual([...e.value], [9, 9]);
    assert.deepEqual([...e.key], [1]);
    assert.equal(e.versionstamp, r.versionstamp);
    const many = await s.getMany([b(2), b(1)]);
    assert.equal(many[0], null);
    assert.deepEqual([...many[1]!.value], [9, 9]);
  });

  t("versionstamps increase with every commit", async (s) => {
    const r1 = await s.commit({ sets: [{ key: b(1), value: b(1) }] });
    const r2 = await s.commit({ sets: [{ key: b(2), value: b(2) }] });
    const r3 = await s.commit({ sets: [{ key: b(1), value: b(3) }] });
    assert.ok(r1.ok && r2.ok && r3.ok);
    assert.ok(r1.versionstamp < r2.versionstamp);
    assert.ok(r2.versionstamp < r3.versionstamp);
    assert.equal((await s.get(b(1)))!.versionstamp, r3.versionstamp);
  });

  t("deletes remove keys; deleting a missing key is fine", async (s) => {
    await s.commit({ sets: [{ key: b(1), value: b(1) }] });
    const r = await s.commit({ deletes: [b(1), b(7)] });
    assert.ok(r.ok);
    assert.equal(await s.get(b(1)), null);
  });

  t("a failed check applies nothing", async (s) => {
    const r1 = await s.commit({ sets: [{ key: b(1), value: b(1) }] });
    assert.ok(r1.ok);
    const bad = await s.commit({
      checks: [{ key: b(1), versionstamp: null }],
      sets: [{ key: b(2), value: b(2) }],
      deletes: [b(1)],
    });
    assert.equal(bad.ok, false);
    assert.equal(await s.get(b(2)), null);
    assert.notEqual(await s.get(b(1)), null);
    const stale = await s.commit({
      checks: [{ key: b(1), versionstamp: "0".repeat(20) }],
      sets: [{ key: b(1), value: b(5) }],
    });
    assert.equal(stale.ok, false);
    assert.deepEqual([...(await s.get(b(1)))!.value], [1]);
    const good = await s.commit({
      checks: [
        { key: b(1), versionstamp: r1.versionstamp },
        { key: b(3), versionstamp: null },
      ],
      sets: [{ key: b(3), value: b(3) }],
    });
    assert.ok(good.ok);
  });

  t(
    "scan visits keys in unsigned byte order, forwards and backwards",
    async (s) => {
      const keys = [b(2), b(1, 255), b(1), b(255), b(1, 0), b(0), b(128)];
      await s.commit({ sets: keys.map((key) => ({ key, value: key })) });
      const sorted = keys.slice().sort(compareBytes).map(hex);
      const fwd = await collect(s.scan({}));
      assert.deepEqual(fwd.map((e) => hex(e.key)), sorted);
      for (const e of fwd) assert.deepEqual(e.value, e.key);
      const back = await collect(s.scan({ reverse: true }));
      assert.deepEqual(back.map((e) => hex(e.key)), sorted.slice().reverse());
    },
  );

  t("scan honours prefix, start, end and limit", async (s) => {
    const keys = [b(1), b(1, 1), b(1, 2), b(1, 2, 3), b(2), b(2, 0)];
    await s.commit({ sets: keys.map((key) => ({ key, value: b() })) });
    const get = async (o: Parameters<Storage["scan"]>[0]) =>
      (await collect(s.scan(o))).map((e) => hex(e.key));
    assert.deepEqual(await get({ prefix: b(1) }), ["1", "1,1", "1,2", "1,2,3"]);
    assert.deepEqual(await get({ prefix: b(1, 2) }), ["1,2", "1,2,3"]);
    assert.deepEqual(await get({ start: b(1, 1), end: b(2) }), [
      "1,1",
      "1,2",
      "1,2,3",
    ]);
    assert.deepEqual(await get({ prefix: b(1), start: b(1, 2) }), [
      "1,2",
      "1,2,3",
    ]);
    assert.deepEqual(await get({ prefix: b(1), end: b(1, 2) }), ["1", "1,1"]);
    assert.deepEqual(await get({ prefix: b(1), limit: 2 }), ["1", "1,1"]);
    assert.deepEqual(await get({ prefix: b(1), limit: 2, reverse: true }), [
      "1,2,3",
      "1,2",
    ]);
    assert.deepEqual(await get({ prefix: b(3) }), []);
    assert.deepEqual(await get({ limit: 0 }), []);
  });

  t("large scans page and stay ordered while writes interleave", async (s) => {
    // At least three pages of the storages' 256-entry scan batches.
    const n = loadSize(factory, 3000, 3 * 256 + 1);
    const key = (i: number) => b(7, i >> 8, i & 255);
    const sets = Array.from({ length: n }, (_, i) => ({
      key: key(i),
      value: b(1),
    }));
    // A storage with per-commit limits (Deno KV) takes them in several.
    const step = s.limits?.maxMutations ?? n;
    for (let i = 0; i < n; i += step) {
      assert.ok((await s.commit({ sets: sets.slice(i, i + step) })).ok);
    }
    const seen: StorageEntry[] = [];
    let writes = 0;
    for await (const page of s.scan({ prefix: b(7) })) {
      seen.push(...page);
      // Writes outside the scanned range must not disturb it.
      await s.commit({ sets: [{ key: b(9, writes++), value: b(0) }] });
    }
    assert.equal(seen.length, n);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(compareBytes(seen[i - 1]!.key, seen[i]!.key) < 0);
    }
    // Deleting keys ahead of a scan hides them; none is visited twice.
    const visited = new Set<string>();
    let deleted = false;
    for await (const page of s.scan({ prefix: b(7) })) {
      for (const e of page) {
        assert.ok(!visited.has(hex(e.key)), "visited twice");
        visited.add(hex(e.key));
      }
      if (!deleted) {
        deleted = true;
        await s.commit({ deletes: [key(n - 1)] });
      }
    }
    assert.ok(!visited.has(hex(key(n - 1))));
    assert.ok(visited.size >= n - 1);
  });

  t("matches a Map model under random commits (property)", async (s) => {
    const keyArb = fc.uint8Array({ minLength: 0, maxLength: 3, max: 3 });
    const op = fc.record({
      sets: fc.array(fc.tuple(keyArb, fc.uint8Array({ maxLength: 2 })), {
        maxLength: 3,
      }),
      deletes: fc.array(keyArb, { maxLength: 2 }),
      checkAbsent: fc.option(keyArb, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
        const all = await collect(s.scan({}));
        if (all.length > 0) await s.commit({ deletes: all.map((e) => e.key) });
        const model = new Map<string, { key: Uint8Array; value: Uint8Array }>();
        for (const o of ops) {
          const deletes = o.deletes.filter((d) =>
            !o.sets.some(([k]) => hex(k) === hex(d))
          );
          const checks = o.checkAbsent === undefined
            ? []
            : [{ key: o.checkAbsent, versionstamp: null }];
          const r = await s.commit({
            checks,
            sets: o.sets.map(([key, value]) => ({ key, value })),
            deletes,
          });
          const expectOk = o.checkAbsent === undefined ||
            !model.has(hex(o.checkAbsent));
          assert.equal(r.ok, expectOk);
          if (!expectOk) continue;
          for (const [key, value] of o.sets) {
            model.set(hex(key), { key, value });
          }
          for (const d of deletes) model.delete(hex(d));
        }
        const expected = [...model.values()].sort((x, y) =>
          compareBytes(x.key, y.key)
        );
        const got = await collect(s.scan({}));
        assert.deepEqual(
          got.map((e) => hex(e.key)),
          expected.map((e) => hex(e.key)),
        );
        assert.deepEqual(
          got.map((e) => hex(e.value)),
          expected.map((e) => hex(e.value)),
        );
        const probe = b(1);
        const end = prefixEnd(probe)!;
        const ranged = await collect(s.scan({ start: probe, end }));
        assert.deepEqual(
          ranged.map((e) => hex(e.key)),
          expected.filter((e) =>
            compareBytes(e.key, probe) >= 0 && compareBytes(e.key, end) < 0
          ).map((e) => hex(e.key)),
        );
      }),
      { numRuns: propertyRuns(factory, 60) },
    );
  });

  t(
    "every method rejects with ClosedError after close; close is idempotent",
    async (s) => {
      await s.close();
      await s.close();
      await assert.rejects(s.get(b(1)), ClosedError);
      await assert.rejects(s.getMany([b(1)]), ClosedError);
      await assert.rejects(
        s.commit({ sets: [{ key: b(1), value: b(1) }] }),
        ClosedError,
      );
      await assert.rejects(collect(s.scan({})), ClosedError);
    },
  );
}
