import assert from "node:assert/strict";
import fc from "fast-check";
import { type Expiry, TtlSchedule } from "../src/engine/ttl_schedule.ts";
import { MinHeap } from "../src/engine/min_heap.ts";

const lessNumber = (a: number, b: number): boolean => a < b;

type HeapOp =
  | { kind: "push"; value: number }
  | { kind: "pop" }
  | { kind: "peek" }
  | { kind: "clear" };

Deno.test("MinHeap matches a sorted-array model", () => {
  const op: fc.Arbitrary<HeapOp> = fc.oneof(
    {
      weight: 10,
      arbitrary: fc.record({
        kind: fc.constant("push" as const),
        value: fc.integer({ min: -50, max: 50 }),
      }),
    },
    { weight: 6, arbitrary: fc.constant({ kind: "pop" as const }) },
    { weight: 2, arbitrary: fc.constant({ kind: "peek" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
  );
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -50, max: 50 }), {
        maxLength: 100,
        size: "max",
      }),
      fc.array(op, { maxLength: 300, size: "max" }),
      (initial, ops) => {
        const heap = MinHeap.from(initial, lessNumber);
        const model = initial.toSorted((a, b) => a - b);
        for (const o of ops) {
          switch (o.kind) {
            case "push": {
              heap.push(o.value);
              const i = model.findIndex((x) => x > o.value);
              model.splice(i < 0 ? model.length : i, 0, o.value);
              break;
            }
            case "pop":
              assert.equal(heap.pop(), model.shift());
              break;
            case "peek":
              assert.equal(heap.peek(), model[0]);
              break;
            case "clear":
              heap.clear();
              model.length = 0;
              break;
          }
          assert.equal(heap.size, model.length);
          assert.equal(heap.peek(), model[0]);
        }
        const drained: number[] = [];
        for (let x = heap.pop(); x !== undefined; x = heap.pop()) {
          drained.push(x);
        }
        assert.deepEqual(drained, model);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("MinHeap.from heapifies with O(n) comparisons", () => {
  let comparisons = 0;
  const counting = (a: number, b: number): boolean => {
    comparisons++;
    return a < b;
  };
  const n = 100_000;
  const items = Array.from({ length: n }, (_, i) => (i * 7919) % n);
  const heap = MinHeap.from(items, counting);
  assert.ok(comparisons <= 2 * n, `${comparisons} comparisons to heapify ${n}`);
  assert.equal(heap.size, n);
  for (let i = 0; i < 1000; i++) assert.equal(heap.pop(), i);
});

Deno.test("MinHeap rejects a non-function ordering", () => {
  assert.throws(
    () => new MinHeap(undefined as unknown as typeof lessNumber),
    TypeError,
  );
  assert.throws(
    () => MinHeap.from([1], 1 as unknown as typeof lessNumber),
    TypeError,
  );
});

type ScheduleOp =
  | { kind: "set"; key: number; expiresAt: number }
  | { kind: "delete"; key: number }
  | { kind: "pop"; now: number; limit: number | undefined }
  | { kind: "peek" }
  | { kind: "clear" };

Deno.test("TtlSchedule matches a Map model", () => {
  const key = fc.integer({ min: 0, max: 40 });
  const time = fc.integer({ min: 0, max: 100 });
  const op: fc.Arbitrary<ScheduleOp> = fc.oneof(
    {
      weight: 30,
      arbitrary: fc.record({
        kind: fc.constant("set" as const),
        key,
        expiresAt: time,
      }),
    },
    {
      weight: 8,
      arbitrary: fc.record({ kind: fc.constant("delete" as const), key }),
    },
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant("pop" as const),
        now: time,
        limit: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
      }),
    },
    { weight: 3, arbitrary: fc.constant({ kind: "peek" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400, size: "max" }), (ops) => {
      const schedule = new TtlSchedule<number>();
      const model = new Map<number, number>();
      for (const o of ops) {
        switch (o.kind) {
          case "set":
            schedule.set(o.key, o.expiresAt);
            model.set(o.key, o.expiresAt);
            break;
          case "delete":
            assert.equal(schedule.delete(o.key), model.delete(o.key));
            break;
          case "pop": {
            const got = o.limit === undefined
              ? schedule.popExpired(o.now)
              : schedule.popExpired(o.now, o.limit);
            const due = [...model].filter(([, at]) => at <= o.now);
            const limit = o.limit ?? Infinity;
            assert.equal(got.length, Math.min(limit, due.length));
            for (let i = 1; i < got.length; i++) {
              assert.ok(got[i - 1]!.expiresAt <= got[i]!.expiresAt);
            }
            const keys = new Set<number>();
            for (const e of got) {
              assert.equal(model.get(e.key), e.expiresAt);
              assert.ok(e.expiresAt <= o.now);
              keys.add(e.key);
            }
            assert.equal(keys.size, got.length);
            // The earliest ones come out: nothing left behind is earlier.
            const latest = got.at(-1)?.expiresAt ?? -Infinity;
            for (const [k, at] of due) {
              if (!keys.has(k)) assert.ok(at >= latest);
            }
            for (const k of keys) model.delete(k);
            break;
          }
          case "peek": {
            const top = schedule.peek();
            const min = Math.min(...model.values());
            if (model.size === 0) assert.equal(top, undefined);
            else {
              assert.equal(top?.expiresAt, min);
              assert.equal(model.get(top!.key), min);
            }
            break;
          }
          case "clear":
            schedule.clear();
            model.clear();
            break;
        }
        assert.equal(schedule.size, model.size);
        assert.ok(schedule.heapSize >= schedule.size);
        assert.ok(schedule.heapSize <= 2 * schedule.size + 32);
        for (let k = 0; k <= 40; k++) {
          assert.equal(schedule.get(k), model.get(k));
          assert.equal(schedule.has(k), model.has(k));
        }
        const listed = [...schedule].map((
          e,
        ): [number, number] => [e.key, e.expiresAt]);
        assert.deepEqual(
          listed.sort((a, b) => a[0] - b[0]),
          [...model].sort((a, b) => a[0] - b[0]),
        );
      }
      // Draining pops everything in expiry order.
      const drained = schedule.popExpired(Infinity);
      assert.equal(drained.length, model.size);
      assert.deepEqual(
        drained.map((e) => e.expiresAt),
        [...model.values()].sort((a, b) => a - b),
      );
      assert.equal(schedule.size, 0);
      assert.equal(schedule.peek(), undefined);
    }),
    { numRuns: 300 },
  );
});

Deno.test("TtlSchedule pops exactly the 10,000 due among 1,000,000 keys", () => {
  const schedule = new TtlSchedule<number>();
  const n = 1_000_000;
  const now = 1_700_000_000_000;
  // Every 100th key is due (expiresAt <= now); the rest expire later.
  for (let i = 0; i < n; i++) {
    const due = i % 100 === 0;
    schedule.set(i, due ? now - (i % 7_919) : now + 1 + (i % 104_729));
  }
  assert.equal(schedule.size, n);
  const popped = schedule.popExpired(now);
  assert.equal(popped.length, 10_000);
  const keys = new Set(popped.map((e: Expiry<number>) => e.key));
  assert.equal(keys.size, 10_000);
  for (const k of keys) assert.equal(k % 100, 0);
  for (let i = 1; i < popped.length; i++) {
    assert.ok(popped[i - 1]!.expiresAt <= popped[i]!.expiresAt);
  }
  assert.equal(schedule.size, n - 10_000);
  assert.equal(schedule.popExpired(now).length, 0);
  assert.equal(schedule.peek()?.expiresAt, now + 1);
});

Deno.test("MinHeap pops k of n items in O(k log n) comparisons", () => {
  let comparisons = 0;
  const counting = (a: number, b: number): boolean => {
    comparisons++;
    return a < b;
  };
  const n = 1_000_000;
  const heap = MinHeap.from(
    Array.from({ length: n }, (_, i) => (i * 7_919) % n),
    counting,
  );
  comparisons = 0;
  for (let i = 0; i < 10_000; i++) assert.equal(heap.pop(), i);
  const bound = 10_000 * 2 * Math.ceil(Math.log2(n));
  assert.ok(comparisons <= bound, `${comparisons} > ${bound}`);
});

Deno.test("TtlSchedule rebuild keeps heapSize bounded after many reschedules", () => {
  const schedule = new TtlSchedule<string>();
  const keys = 1_000;
  let maxHeap = 0;
  for (let round = 0; round < 100; round++) {
    for (let i = 0; i < keys; i++) {
      schedule.set(`k${i}`, round * 10_000 + ((i * 31) % keys));
      maxHeap = Math.max(maxHeap, schedule.heapSize);
    }
  }
  assert.equal(schedule.size, keys);
  assert.ok(maxHeap <= 2 * keys + 32, `heap reached ${maxHeap}`);
  // Only the latest schedule counts.
  assert.equal(schedule.popExpired(98 * 10_000 + keys).length, 0);
  const popped = schedule.popExpired(99 * 10_000 + 9);
  assert.deepEqual(
    popped.map((e) => e.expiresAt),
    Array.from({ length: 10 }, (_, i) => 99 * 10_000 + i),
  );
  // Cancelling most keys shrinks the heap too.
  for (let i = 0; i < keys; i++) schedule.delete(`k${i}`);
  assert.equal(schedule.size, 0);
  assert.ok(schedule.heapSize <= 32);
});

Deno.test("TtlSchedule rescheduling to the same time adds no heap entry", () => {
  const schedule = new TtlSchedule<string>();
  schedule.set("a", 5);
  schedule.set("a", 5);
  assert.equal(schedule.heapSize, 1);
  schedule.set("a", 6);
  schedule.set("a", 5);
  assert.equal(schedule.heapSize, 3);
  assert.deepEqual(schedule.popExpired(10), [{ key: "a", expiresAt: 5 }]);
  assert.equal(schedule.heapSize, 0);
});

Deno.test("TtlSchedule rejects bad times and limits", () => {
  const schedule = new TtlSchedule<string>();
  for (const bad of [NaN, Infinity, -Infinity, "5" as unknown as number]) {
    assert.throws(() => schedule.set("a", bad), RangeError);
  }
  assert.equal(schedule.size, 0);
  schedule.set("a", 1);
  assert.throws(() => schedule.popExpired(NaN), RangeError);
  for (const bad of [-1, 1.5, NaN]) {
    assert.throws(() => schedule.popExpired(10, bad), RangeError);
  }
  assert.deepEqual(schedule.popExpired(10, 0), []);
  assert.equal(schedule.popExpired(Infinity, Infinity).length, 1);
});

Deno.test("TtlSchedule peek skips cancelled and rescheduled entries", () => {
  const schedule = new TtlSchedule<number>();
  schedule.set(1, 10);
  schedule.set(2, 20);
  schedule.set(3, 30);
  schedule.delete(1);
  schedule.set(2, 40);
  assert.deepEqual(schedule.peek(), { key: 3, expiresAt: 30 });
  assert.equal(schedule.size, 2);
  schedule.clear();
  assert.equal(schedule.peek(), undefined);
  assert.equal(schedule.heapSize, 0);
});

Deno.test("TtlSchedule.countExpired counts live due keys without removing them", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.integer({ min: 0, max: 20 }),
          fc.integer({ min: 0, max: 100 }),
          fc.boolean(),
        ),
        { maxLength: 200 },
      ),
      fc.integer({ min: -1, max: 101 }),
      (ops, now) => {
        const schedule = new TtlSchedule<number>();
        const model = new Map<number, number>();
        for (const [key, at, remove] of ops) {
          if (remove) {
            schedule.delete(key);
            model.delete(key);
          } else {
            schedule.set(key, at);
            model.set(key, at);
          }
        }
        const expected = [...model.values()].filter((at) => at <= now).length;
        assert.equal(schedule.countExpired(now), expected);
        assert.equal(schedule.size, model.size);
      },
    ),
  );
});
