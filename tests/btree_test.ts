import assert from "node:assert/strict";
import fc from "fast-check";
import {
  _checkInvariants,
  BTree,
  type BTreeRange,
} from "../src/engine/btree.ts";
import { compareBytes } from "../src/bytes.ts";

const byNumber = (a: number, b: number): number => a - b;
const byString = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0;

/** A sorted array of entries: the reference model. */
class Model<K, V> {
  entries: [K, V][] = [];
  constructor(readonly compare: (a: K, b: K) => number) {}
  #find(key: K): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(this.entries[mid]![0], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  #at(key: K): number {
    const i = this.#find(key);
    const e = this.entries[i];
    return e !== undefined && this.compare(e[0], key) === 0 ? i : -1;
  }
  get(key: K): V | undefined {
    const i = this.#at(key);
    return i < 0 ? undefined : this.entries[i]![1];
  }
  has(key: K): boolean {
    return this.#at(key) >= 0;
  }
  set(key: K, value: V): boolean {
    const i = this.#at(key);
    if (i >= 0) {
      this.entries[i]![1] = value;
      return false;
    }
    this.entries.splice(this.#find(key), 0, [key, value]);
    return true;
  }
  delete(key: K): boolean {
    const i = this.#at(key);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    return true;
  }
  clear(): void {
    this.entries = [];
  }
  range(range: BTreeRange<K>): [K, V][] {
    const c = this.compare;
    const out = this.entries.filter(([k]) =>
      (range.gt === undefined || c(k, range.gt) > 0) &&
      (range.gte === undefined || c(k, range.gte) >= 0) &&
      (range.lt === undefined || c(k, range.lt) < 0) &&
      (range.lte === undefined || c(k, range.lte) <= 0)
    );
    return range.reverse ? out.reverse() : out;
  }
}

function assertSame<K, V>(tree: BTree<K, V>, model: Model<K, V>): void {
  assert.equal(tree.size, model.entries.length);
  assert.deepEqual([...tree], model.entries);
  assert.deepEqual(
    [...tree.entries({ reverse: true })],
    model.entries.toReversed(),
  );
  assert.deepEqual(tree.first(), model.entries[0]);
  assert.deepEqual(tree.last(), model.entries.at(-1));
  _checkInvariants(tree);
}

function assertRange<K, V>(
  tree: BTree<K, V>,
  model: Model<K, V>,
  range: BTreeRange<K>,
): void {
  const expected = model.range(range);
  const label = JSON.stringify(range);
  assert.deepEqual([...tree.entries(range)], expected, label);
  assert.deepEqual([...tree.keys(range)], expected.map(([k]) => k), label);
  assert.deepEqual([...tree.values(range)], expected.map(([, v]) => v), label);
}

/** Every combination of present/absent bounds and direction. */
function allRanges<K>(gt: K, gte: K, lt: K, lte: K): BTreeRange<K>[] {
  const out: BTreeRange<K>[] = [];
  for (let mask = 0; mask < 32; mask++) {
    const r: BTreeRange<K> = {};
    if (mask & 1) r.gt = gt;
    if (mask & 2) r.gte = gte;
    if (mask & 4) r.lt = lt;
    if (mask & 8) r.lte = lte;
    if (mask & 16) r.reverse = true;
    out.push(r);
  }
  return out;
}

type Op<K> =
  | { kind: "set"; key: K; value: number }
  | { kind: "swap"; key: K; value: number }
  | { kind: "delete"; key: K }
  | { kind: "get"; key: K }
  | { kind: "has"; key: K }
  | { kind: "clear" }
  | { kind: "range"; range: BTreeRange<K> };

function opsArb<K>(key: fc.Arbitrary<K>): fc.Arbitrary<Op<K>[]> {
  const range = fc.record(
    { gt: key, gte: key, lt: key, lte: key, reverse: fc.boolean() },
    { requiredKeys: [] },
  );
  const op: fc.Arbitrary<Op<K>> = fc.oneof(
    {
      weight: 40,
      arbitrary: fc.record({
        kind: fc.constant("set" as const),
        key,
        value: fc.integer(),
      }),
    },
    {
      weight: 20,
      arbitrary: fc.record({
        kind: fc.constant("swap" as const),
        key,
        value: fc.integer(),
      }),
    },
    {
      weight: 25,
      arbitrary: fc.record({ kind: fc.constant("delete" as const), key }),
    },
    {
      weight: 10,
      arbitrary: fc.record({ kind: fc.constant("get" as const), key }),
    },
    {
      weight: 10,
      arbitrary: fc.record({ kind: fc.constant("has" as const), key }),
    },
    {
      weight: 15,
      arbitrary: fc.record({ kind: fc.constant("range" as const), range }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
  );
  return fc.array(op, { maxLength: 400, size: "max" });
}

function runOps<K>(
  tree: BTree<K, number>,
  model: Model<K, number>,
  ops: Op<K>[],
  bounds: [K, K, K, K],
): void {
  for (const op of ops) {
    switch (op.kind) {
      case "set":
        assert.equal(tree.set(op.key, op.value), model.set(op.key, op.value));
        break;
      case "swap": {
        // What it overwrote, or undefined for a new key; then as set.
        const before = model.get(op.key);
        assert.equal(tree.swap(op.key, op.value), before);
        model.set(op.key, op.value);
        break;
      }
      case "delete":
        assert.equal(tree.delete(op.key), model.delete(op.key));
        break;
      case "get":
        assert.equal(tree.get(op.key), model.get(op.key));
        break;
      case "has":
        assert.equal(tree.has(op.key), model.has(op.key));
        break;
      case "clear":
        tree.clear();
        model.clear();
        break;
      case "range":
        assertRange(tree, model, op.range);
        break;
    }
    assertSame(tree, model);
  }
  for (const range of allRanges(...bounds)) assertRange(tree, model, range);
}

Deno.test("BTree matches a sorted-array model (number keys, small orders)", () => {
  const key = fc.integer({ min: 0, max: 120 });
  fc.assert(
    fc.property(
      fc.constantFrom(4, 5, 6, 64),
      opsArb(key),
      fc.tuple(key, key, key, key),
      (order, ops, bounds) => {
        runOps(
          new BTree<number, number>(byNumber, { order }),
          new Model(byNumber),
          ops,
          bounds,
        );
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("BTree matches a sorted-array model when keys are appended in runs past the largest (the rightmost-leaf path), between random sets and deletes", () => {
  const step = fc.oneof(
    fc.record({
      kind: fc.constant("run" as const),
      n: fc.integer({ min: 1, max: 150 }),
      gap: fc.integer({ min: 1, max: 3 }),
    }),
    fc.record({
      kind: fc.constantFrom("set" as const, "delete" as const),
      key: fc.integer({ min: 0, max: 400 }),
    }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom(4, 5, 6, 64),
      fc.array(step, { maxLength: 40 }),
      (order, steps) => {
        const tree = new BTree<number, number>(byNumber, { order });
        const model = new Model<number, number>(byNumber);
        let value = 0;
        for (const s of steps) {
          if (s.kind === "run") {
            let key = (tree.last()?.[0] ?? -1) + s.gap;
            for (let i = 0; i < s.n; i++, key += s.gap) {
              assert.equal(tree.set(key, ++value), model.set(key, value));
            }
          } else if (s.kind === "set") {
            assert.equal(tree.set(s.key, ++value), model.set(s.key, value));
          } else {
            assert.equal(tree.delete(s.key), model.delete(s.key));
          }
          assertSame(tree, model);
        }
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("BTree matches a sorted-array model (default order, many keys)", () => {
  const key = fc.integer({ min: 0, max: 5000 });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(key, fc.boolean()), {
        minLength: 100,
        maxLength: 3000,
        size: "max",
      }),
      fc.tuple(key, key, key, key),
      (steps, bounds) => {
        const tree = new BTree<number, number>(byNumber);
        const model = new Model<number, number>(byNumber);
        for (const [k, insert] of steps) {
          if (insert) assert.equal(tree.set(k, k * 2), model.set(k, k * 2));
          else assert.equal(tree.delete(k), model.delete(k));
        }
        assertSame(tree, model);
        for (const range of allRanges(...bounds)) {
          assertRange(tree, model, range);
        }
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("BTree matches a sorted-array model (Uint8Array keys, compareBytes)", () => {
  const key = fc.uint8Array({ maxLength: 3 }).map((b) => b.map((x) => x % 4));
  fc.assert(
    fc.property(
      fc.constantFrom(4, 5, 64),
      opsArb(key),
      fc.tuple(key, key, key, key),
      (order, ops, bounds) => {
        runOps(
          new BTree<Uint8Array, number>(compareBytes, { order }),
          new Model<Uint8Array, number>(compareBytes),
          ops,
          bounds,
        );
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("BTree constructor rejects bad arguments", () => {
  assert.throws(() => new BTree(byNumber, { order: 3 }), RangeError);
  assert.throws(() => new BTree(byNumber, { order: 4.5 }), RangeError);
  assert.throws(() => new BTree(byNumber, { order: NaN }), RangeError);
  assert.throws(
    () => new BTree(null as unknown as typeof byNumber),
    TypeError,
  );
  assert.equal(new BTree(byNumber, { order: 4 }).size, 0);
});

Deno.test("BTree orders string keys", () => {
  const tree = new BTree<string, number>(byString, { order: 4 });
  const words = [
    "pear",
    "apple",
    "fig",
    "banana",
    "kiwi",
    "cherry",
    "date",
    "grape",
  ];
  words.forEach((w, i) => tree.set(w, i));
  assert.deepEqual([...tree.keys()], words.toSorted());
  assert.deepEqual([...tree.keys({ gte: "c", lt: "g" })], [
    "cherry",
    "date",
    "fig",
  ]);
  assert.deepEqual([...tree.keys({ gt: "fig", reverse: true })], [
    "pear",
    "kiwi",
    "grape",
  ]);
  assert.equal(tree.get("kiwi"), 4);
  assert.deepEqual(tree.first(), ["apple", 1]);
  assert.deepEqual(tree.last(), ["pear", 0]);
  assert.equal(tree.get("zzz"), undefined);
});

Deno.test("BTree empty tree", () => {
  const tree = new BTree<number, number>(byNumber);
  assert.equal(tree.first(), undefined);
  assert.equal(tree.last(), undefined);
  assert.deepEqual([...tree], []);
  assert.deepEqual([...tree.keys({ gte: 1, lte: 5, reverse: true })], []);
  assert.equal(tree.delete(1), false);
  assert.equal(tree.get(1), undefined);
});

Deno.test("BTree 100k sequential inserts then deletes of all shrinks back to one leaf", () => {
  const n = 100_000;
  for (const order of [4, 64]) {
    const tree = new BTree<number, number>(byNumber, { order });
    for (let i = 0; i < n; i++) assert.equal(tree.set(i, i), true);
    assert.equal(tree.size, n);
    const grown = _checkInvariants(tree);
    assert.ok(grown.height >= 2);
    let expected = 0;
    for (const [k, v] of tree) {
      assert.equal(k, expected);
      assert.equal(v, expected);
      expected++;
    }
    assert.equal(expected, n);
    for (let i = 0; i < n; i++) assert.equal(tree.delete(i), true);
    assert.equal(tree.size, 0);
    assert.equal(tree.first(), undefined);
    assert.equal(tree.last(), undefined);
    assert.deepEqual(_checkInvariants(tree), {
      height: 0,
      leaves: 1,
      internals: 0,
    });
  }
});

/** Deterministic PRNG (mulberry32) for reproducible shuffles. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(array: T[], random: () => number): T[] {
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [array[i], array[j]] = [array[j]!, array[i]!];
  }
  return array;
}

Deno.test("BTree deletes in random order keep the tree valid and balanced", () => {
  const random = rng(42);
  for (const order of [4, 5, 7, 64]) {
    const n = 20_000;
    const tree = new BTree<number, string>(byNumber, { order });
    for (const k of shuffle(Array.from({ length: n }, (_, i) => i), random)) {
      tree.set(k, String(k));
    }
    _checkInvariants(tree);
    const order2 = shuffle(Array.from({ length: n }, (_, i) => i), random);
    const remaining = new Set(order2);
    for (let i = 0; i < order2.length; i++) {
      const k = order2[i]!;
      assert.equal(tree.delete(k), true);
      assert.equal(tree.delete(k), false);
      remaining.delete(k);
      if (i % 997 === 0) {
        const shape = _checkInvariants(tree);
        // Leaves are at least half full, so the node count tracks the size.
        assert.ok(
          shape.leaves <= Math.max(1, Math.ceil(tree.size / (order >>> 1))),
        );
        assert.deepEqual([...tree.keys()], [...remaining].sort(byNumber));
      }
    }
    assert.equal(tree.size, 0);
    assert.deepEqual(_checkInvariants(tree), {
      height: 0,
      leaves: 1,
      internals: 0,
    });
  }
});

Deno.test("BTree set overwrites without changing the size", () => {
  const tree = new BTree<number, string>(byNumber, { order: 4 });
  for (let i = 0; i < 50; i++) tree.set(i, "a");
  for (let i = 0; i < 50; i++) assert.equal(tree.set(i, "b"), false);
  assert.equal(tree.size, 50);
  assert.ok([...tree.values()].every((v) => v === "b"));
});

Deno.test("BTree combined bounds apply the stricter one", () => {
  const tree = new BTree<number, number>(byNumber, { order: 4 });
  for (let i = 0; i < 20; i++) tree.set(i, i);
  assert.deepEqual([...tree.keys({ gt: 5, gte: 3, lt: 9, lte: 7 })], [6, 7]);
  assert.deepEqual([...tree.keys({ gt: 3, gte: 5, lt: 7, lte: 9 })], [5, 6]);
  assert.deepEqual([...tree.keys({ gt: 5, gte: 5, lt: 7, lte: 7 })], [6]);
  assert.deepEqual([...tree.keys({ gt: 10, lt: 5 })], []);
  assert.deepEqual([...tree.keys({ gte: 5, lte: 5, reverse: true })], [5]);
  assert.deepEqual([...tree.keys({ gt: 5, lt: 6 })], []);
  assert.deepEqual([...tree.keys({ gte: 100 })], []);
  assert.deepEqual([...tree.keys({ lt: -1, reverse: true })], []);
});

Deno.test("BTree range seek takes O(log n) comparisons", () => {
  let comparisons = 0;
  const counting = (a: number, b: number): number => {
    comparisons++;
    return a - b;
  };
  const n = 100_000;
  const tree = new BTree<number, number>(counting, { order: 16 });
  for (let i = 0; i < n; i++) tree.set(i, i);
  const budget = 4 * 4 * Math.ceil(Math.log2(n)); // 2 seeks + slack
  for (const range of allRanges(50_000, 50_001, 50_100, 50_099)) {
    comparisons = 0;
    const it = tree.keys(range);
    it.next();
    assert.ok(
      comparisons <= budget,
      `${comparisons} comparisons for ${JSON.stringify(range)}`,
    );
  }
  comparisons = 0;
  assert.equal(tree.get(77_777), 77_777);
  assert.ok(
    comparisons <= 2 * Math.ceil(Math.log2(n)) + 8,
    `${comparisons} comparisons for get`,
  );
});

Deno.test("BTree iteration after a structural change throws; overwrite does not", () => {
  const tree = new BTree<number, number>(byNumber, { order: 4 });
  for (let i = 0; i < 10; i++) tree.set(i, i);

  const overwritten = tree.entries();
  assert.deepEqual(overwritten.next().value, [0, 0]);
  tree.set(1, 100);
  assert.deepEqual(overwritten.next().value, [1, 100]);

  const inserted = tree.keys();
  inserted.next();
  tree.set(50, 50);
  assert.throws(() => inserted.next(), TypeError);

  const deleted = tree.keys({ reverse: true });
  deleted.next();
  tree.delete(3);
  assert.throws(() => deleted.next(), TypeError);

  const cleared = tree.values();
  cleared.next();
  tree.clear();
  assert.throws(() => cleared.next(), TypeError);

  // An exhausted iterator stays done.
  const done = tree.keys();
  assert.equal(done.next().done, true);
  tree.set(1, 1);
  assert.equal(done.next().done, true);
});

Deno.test("BTree scans resume with gt after modifying the tree", () => {
  const tree = new BTree<number, number>(byNumber, { order: 5 });
  for (let i = 0; i < 1000; i++) tree.set(i, i);
  const seen: number[] = [];
  let last: number | undefined;
  for (;;) {
    const batch: number[] = [];
    for (const k of tree.keys(last === undefined ? {} : { gt: last })) {
      batch.push(k);
      if (batch.length === 64) break;
    }
    if (batch.length === 0) break;
    for (const k of batch) {
      if (k % 2 === 0) tree.delete(k);
    }
    seen.push(...batch);
    last = batch.at(-1);
  }
  assert.equal(seen.length, 1000);
  assert.equal(tree.size, 500);
  _checkInvariants(tree);
});

Deno.test("BTree iterators are iterable and support early return", () => {
  const tree = new BTree<number, number>(byNumber);
  for (let i = 0; i < 10; i++) tree.set(i, i);
  const it = tree.keys();
  assert.equal(it[Symbol.iterator](), it);
  for (const k of it) if (k === 2) break;
  assert.equal(it.next().done, true);
});

Deno.test("BTree fill hands out the same items as next, in runs of any size", () => {
  for (const order of [4, 5, 64]) {
    const tree = new BTree<number, string>(byNumber, { order });
    for (let i = 0; i < 300; i++) tree.set(i * 2, `v${i * 2}`);
    const ranges: BTreeRange<number>[] = [
      {},
      { reverse: true },
      { gt: 17, lte: 401 },
      { gt: 17, lte: 401, reverse: true },
      { gte: 598 },
      { lt: 0 },
      { gte: 100, lt: 101, reverse: true },
    ];
    for (const range of ranges) {
      const want = [...tree.values(range)];
      for (const max of [1, 2, 3, 7, 64, 1000]) {
        const it = tree.values(range);
        const got: string[] = [];
        for (;;) {
          const n = it.fill(got, max);
          assert(n <= max);
          if (n < max) break;
        }
        assert.deepEqual(got, want, `order ${order} max ${max}`);
        assert.equal(it.fill(got, max), 0);
        assert.equal(it.next().done, true);
      }
      // Mixed with next(): one walk.
      const it = tree.values(range);
      const mixed: string[] = [];
      for (;;) {
        const r = it.next();
        if (r.done) break;
        mixed.push(r.value);
        if (it.fill(mixed, 5) < 5) break;
      }
      assert.deepEqual(mixed, want);
    }
    // Entries and keys modes.
    assert.deepEqual(
      (() => {
        const out: [number, string][] = [];
        tree.entries({ lt: 6 }).fill(out, 10);
        return out;
      })(),
      [[0, "v0"], [2, "v2"], [4, "v4"]],
    );
  }
});

Deno.test("BTree fill writes where it is told: into an array made with room, from any index", () => {
  const tree = new BTree<number, number>(byNumber, { order: 4 });
  for (let i = 0; i < 30; i++) tree.set(i, i * 10);
  for (const reverse of [false, true]) {
    const want = [...tree.values({ reverse })];
    const it = tree.values({ reverse });
    const got: number[] = [];
    for (;;) {
      // A page made with room for 7, filled from 0, cut to what came.
      const page: number[] = new Array(7);
      const n = it.fill(page, 7, 0);
      page.length = n;
      got.push(...page);
      if (n < 7) break;
    }
    assert.deepEqual(got, want);
  }
  // From an index inside the array: what is before it stays.
  const out = [-1, -2, -3];
  assert.equal(tree.values({ gte: 5 }).fill(out, 2, 1), 2);
  assert.deepEqual(out, [-1, 50, 60]);
});

Deno.test("BTree iterators say when they are stale; fill then throws", () => {
  const tree = new BTree<number, number>(byNumber, { order: 4 });
  for (let i = 0; i < 50; i++) tree.set(i, i);
  const it = tree.values();
  const out: number[] = [];
  it.fill(out, 10);
  tree.set(3, 33); // an overwrite: the same keys
  assert.equal(it.stale, false);
  it.fill(out, 5);
  assert.deepEqual(out, [...Array(15).keys()].map((i) => i === 3 ? 3 : i));
  tree.delete(40);
  assert.equal(it.stale, true);
  assert.throws(() => it.fill(out, 5), TypeError);
});
