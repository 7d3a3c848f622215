/**
 * `$group` and its accumulators, `$bucket` and `$sortByCount`.
 *
 * Memory: a `$group` keeps one entry per distinct `_id` (its key and the
 * accumulators' state: a number or two for `$sum`/`$avg`/`$min`/`$max`/
 * `$first`/`$last`/`$count`, every value for `$push`/`$addToSet`), never the
 * input documents. More than `maxGroups` groups (default 1,000,000) is a
 * `RangeError` that stops the aggregation.
 *
 * @module
 */

import { type Doc, stageError } from "./aggregate_project.ts";
import { compareValues } from "./compare.ts";
import { compileExpression, type Expression } from "./expression.ts";
import { describe, isPlainObject } from "./types.ts";
import { setOwn } from "../value_codec.ts";

/** The default bound on the groups of one `$group`. */
export const DEFAULT_MAX_GROUPS = 1_000_000;

/**
 * A string that identifies a value for grouping: equal values (MongoDB's
 * equality: numbers by value, dates by time, objects field by field in
 * order) get equal keys; `null` and missing are the same group.
 *
 * @param v The value.
 * @returns Its key.
 */
export function groupKey(v: unknown): string {
  switch (typeof v) {
    case "number":
      return v === 0 ? "n0" : `n${v}`;
    case "string":
      return `s${v.length}:${v}`;
    case "boolean":
      return v ? "t" : "f";
    case "undefined":
      return "z";
    case "object":
      if (v === null) return "z";
      if (v instanceof Date) return `d${v.getTime()}`;
      if (v instanceof RegExp) return `r${groupKey(v.source)}${v.flags}`;
      if (Array.isArray(v)) return `[${v.map(groupKey).join(",")}]`;
      {
        let s = "{";
        for (const k of Object.keys(v)) {
          const x = (v as Doc)[k];
          if (x !== undefined) s += `${groupKey(k)}:${groupKey(x)},`;
        }
        return s + "}";
      }
  }
  return "?";
}

// --- Accumulators ----------------------------------------------------------------

/** One group's state of one accumulator. */
interface Acc {
  add(v: unknown): void;
  result(): unknown;
}

type AccFactory = () => Acc;

class Sum implements Acc {
  s = 0;
  add(v: unknown): void {
    if (typeof v === "number") this.s += v;
  }
  result(): unknown {
    return this.s;
  }
}
class Avg implements Acc {
  s = 0;
  n = 0;
  add(v: unknown): void {
    if (typeof v === "number") {
      this.s += v;
      this.n++;
    }
  }
  result(): unknown {
    return this.n === 0 ? null : this.s / this.n;
  }
}
class Extreme implements Acc {
  v: unknown = undefined;
  constructor(readonly sign: number) {}
  add(v: unknown): void {
    if (typeof v === "number" && typeof this.v === "number") {
      if (this.sign > 0 ? v > this.v : v < this.v) this.v = v;
      return;
    }
    if (v === undefined || v === null) return;
    if (this.v === undefined || compareValues(v, this.v) * this.sign > 0) {
      this.v = v;
    }
  }
  result(): unknown {
    return this.v ?? null;
  }
}
class First implements Acc {
  v: unknown = undefined;
  seen = false;
  add(v: unknown): void {
    if (!this.seen) {
      this.seen = true;
      this.v = v;
    }
  }
  result(): unknown {
    return this.v ?? null;
  }
}
class Last implements Acc {
  v: unknown = undefined;
  add(v: unknown): void {
    this.v = v;
  }
  result(): unknown {
    return this.v ?? null;
  }
}
class Count implements Acc {
  n = 0;
  add(): void {
    this.n++;
  }
  result(): unknown {
    return this.n;
  }
}
class Push implements Acc {
  a: unknown[] = [];
  add(v: unknown): void {
    if (v !== undefined) this.a.push(v);
  }
  result(): unknown {
    return this.a;
  }
}
class AddToSet implements Acc {
  m = new Map<string, unknown>();
  add(v: unknown): void {
    if (v === undefined) return;
    const k = groupKey(v);
    if (!this.m.has(k)) this.m.set(k, v);
  }
  result(): unknown {
    return [...this.m.values()];
  }
}

const ACCUMULATORS: { readonly [op: string]: AccFactory } = {
  $sum: () => new Sum(),
  $avg: () => new Avg(),
  $min: () => new Extreme(-1),
  $max: () => new Extreme(1),
  $first: () => new First(),
  $last: () => new Last(),
  $count: () => new Count(),
  $push: () => new Push(),
  $addToSet: () => new AddToSet(),
};

/** A compiled output field of `$group`/`$bucket`. */
interface Output {
  readonly name: string;
  readonly make: AccFactory;
  readonly expr: Expression;
}

function compileOutputs(
  stage: string,
  spec: Record<string, unknown>,
  skip: string | undefined,
): Output[] {
  const out: Output[] = [];
  for (const name of Object.keys(spec)) {
    if (name === skip) continue;
    if (name.includes(".") || name.startsWith("$") || name === "") {
      throw stageError(stage, `the field name '${name}' is not allowed`);
    }
    const acc = spec[name];
    const ops = isPlainObject(acc) ? Object.keys(acc) : [];
    if (!isPlainObject(acc) || ops.length !== 1) {
      throw stageError(
        stage,
        `'${name}' must be an accumulator object such as { $sum: 1 }, got ${
          describe(acc)
        }`,
      );
    }
    const op = ops[0]!;
    const make = ACCUMULATORS[op];
    if (make === undefined || !Object.hasOwn(ACCUMULATORS, op)) {
      throw stageError(
        stage,
        `unknown accumulator '${op}' at '${name}' (supported: ${
          Object.keys(ACCUMULATORS).join(" ")
        })`,
      );
    }
    const arg = acc[op];
    if (op === "$count") {
      if (!isPlainObject(arg) || Object.keys(arg).length !== 0) {
        throw stageError(
          stage,
          `'$count' at '${name}' takes {}, got ${describe(arg)}`,
        );
      }
      out.push({ name, make, expr: () => undefined });
    } else {
      out.push({
        name,
        make,
        expr: compileExpression(arg, `${stage}.${name}.${op}`),
      });
    }
  }
  return out;
}

/** A pipeline stage's consumer: `push` returns `false` when it needs no more. */
export interface Sink {
  push(doc: Doc): boolean;
  end(): void;
}

interface Group {
  readonly id: unknown;
  readonly accs: Acc[];
}

/**
 * Compiles the group key. A document `_id` of field expressions keys by
 * concatenating the fields' keys and builds its object only for new groups.
 */
function compileId(spec: unknown): {
  key: (doc: Doc) => string;
  value: (doc: Doc) => unknown;
} {
  if (isPlainObject(spec) && Object.keys(spec).length > 0) {
    const keys = Object.keys(spec);
    if (!keys[0]!.startsWith("$")) {
      const value = compileExpression(spec, "$group._id");
      const parts = keys.map((k) =>
        compileExpression(spec[k], `$group._id.${k}`)
      );
      if (parts.length === 2) {
        const [a, b] = parts as [Expression, Expression];
        return { key: (d) => `${groupKey(a(d))}|${groupKey(b(d))}`, value };
      }
      return {
        key: (d) => {
          let s = "";
          for (const p of parts) s += groupKey(p(d)) + "|";
          return s;
        },
        value,
      };
    }
  }
  const e = compileExpression(spec, "$group._id");
  return { key: (d) => groupKey(e(d)), value: (d) => e(d) ?? null };
}

/**
 * Compiles `$group`.
 *
 * @param spec `{ _id: expression, field: { accumulator: expression }, … }`.
 * @param maxGroups The most groups allowed.
 * @returns A factory of the stage's sink, given the next one.
 * @throws {TypeError} When `_id` is missing or an accumulator is unknown.
 */
export function compileGroup(
  spec: unknown,
  maxGroups: number,
): (next: Sink) => Sink {
  if (!isPlainObject(spec)) {
    throw stageError("$group", `expects an object, got ${describe(spec)}`);
  }
  if (!Object.hasOwn(spec, "_id")) {
    throw stageError("$group", "a group specification must have an _id");
  }
  const id = compileId(spec._id);
  const outputs = compileOutputs("$group", spec, "_id");
  const n = outputs.length;
  return (next) => {
    const groups = new Map<string, Group>();
    return {
      push(doc) {
        const key = id.key(doc);
        let g = groups.get(key);
        if (g === undefined) {
          if (groups.size >= maxGroups) {
            throw new RangeError(
              `Cannot run $group: more than ${maxGroups} groups (raise the maxGroups option, or group more coarsely)`,
            );
          }
          const accs: Acc[] = new Array(n);
          for (let i = 0; i < n; i++) accs[i] = outputs[i]!.make();
          g = { id: id.value(doc), accs };
          groups.set(key, g);
        }
        const accs = g.accs;
        for (let i = 0; i < n; i++) accs[i]!.add(outputs[i]!.expr(doc));
        return true;
      },
      end() {
        for (const g of groups.values()) {
          const out: Doc = { _id: g.id };
          for (let i = 0; i < n; i++) {
            setOwn(out, outputs[i]!.name, g.accs[i]!.result());
          }
          if (!next.push(out)) break;
        }
        groups.clear();
        next.end();
      },
    };
  };
}

/**
 * Compiles `$bucket`: documents go to the bucket `[boundaries[i],
 * boundaries[i + 1])` their `groupBy` value falls in, or to `default`.
 *
 * @param spec `{ groupBy, boundaries, default?, output? }`.
 * @returns A factory of the stage's sink.
 * @throws {TypeError} On a malformed specification.
 */
export function compileBucket(spec: unknown): (next: Sink) => Sink {
  if (!isPlainObject(spec)) {
    throw stageError("$bucket", `expects an object, got ${describe(spec)}`);
  }
  for (const k of Object.keys(spec)) {
    if (!["groupBy", "boundaries", "default", "output"].includes(k)) {
      throw stageError("$bucket", `unknown field '${k}'`);
    }
  }
  const gb = spec.groupBy;
  if (
    !(typeof gb === "string" && gb.startsWith("$")) && !isPlainObject(gb)
  ) {
    throw stageError(
      "$bucket",
      `groupBy must be a field path or an expression object, got ${
        describe(gb)
      }`,
    );
  }
  const groupBy = compileExpression(gb, "$bucket.groupBy");
  const bounds = spec.boundaries;
  if (!Array.isArray(bounds) || bounds.length < 2) {
    throw stageError(
      "$bucket",
      "boundaries must be an array of at least 2 values",
    );
  }
  for (let i = 1; i < bounds.length; i++) {
    const a = bounds[i - 1];
    const b = bounds[i];
    const sameType = typeof a === typeof b &&
      (a instanceof Date) === (b instanceof Date);
    if (!sameType || compareValues(a, b) >= 0) {
      throw stageError(
        "$bucket",
        "boundaries must be of one type and in ascending order",
      );
    }
  }
  const hasDefault = Object.hasOwn(spec, "default");
  const dflt = spec.default;
  if (
    hasDefault && compareValues(dflt, bounds[0]) >= 0 &&
    compareValues(dflt, bounds[bounds.length - 1]) < 0 &&
    typeof dflt === typeof bounds[0]
  ) {
    throw stageError(
      "$bucket",
      "default must be less than the lowest or at least the highest boundary",
    );
  }
  const outSpec = spec.output ?? { count: { $sum: 1 } };
  if (!isPlainObject(outSpec)) {
    throw stageError(
      "$bucket",
      `output must be an object, got ${describe(outSpec)}`,
    );
  }
  const outputs = compileOutputs("$bucket", outSpec, undefined);
  const last = bounds.length - 1;
  return (next) => {
    const buckets: (Acc[] | undefined)[] = new Array(bounds.length);
    const accsOf = (i: number): Acc[] =>
      buckets[i] ??= outputs.map((o) => o.make());
    return {
      push(doc) {
        const v = groupBy(doc);
        let i = -1;
        const typed = typeof v === typeof bounds[0] &&
          (v instanceof Date) === (bounds[0] instanceof Date);
        if (
          typed && compareValues(v, bounds[0]) >= 0 &&
          compareValues(v, bounds[last]) < 0
        ) {
          let lo = 0;
          let hi = last;
          while (hi - lo > 1) {
            const mid = (lo + hi) >> 1;
            if (compareValues(v, bounds[mid]) >= 0) lo = mid;
            else hi = mid;
          }
          i = lo;
        } else if (hasDefault) {
          i = last;
        } else {
          throw new RangeError(
            `Cannot run $bucket: the value ${
              describe(v)
            } is outside the boundaries and there is no default`,
          );
        }
        const accs = accsOf(i);
        for (let j = 0; j < outputs.length; j++) {
          accs[j]!.add(outputs[j]!.expr(doc));
        }
        return true;
      },
      end() {
        for (let i = 0; i <= last; i++) {
          const accs = buckets[i];
          if (accs === undefined) continue;
          const out: Doc = { _id: i === last ? dflt : bounds[i] };
          outputs.forEach((o, j) => setOwn(out, o.name, accs[j]!.result()));
          if (!next.push(out)) break;
        }
        next.end();
      },
    };
  };
}

/**
 * Compiles `$sortByCount`: `$group` by the expression with a count, sorted
 * by the count, largest first (ties by `_id`).
 *
 * @param spec A field path or an expression object.
 * @param maxGroups The most groups allowed.
 * @returns A factory of the stage's sink.
 * @throws {TypeError} When the operand is not a path or expression object.
 */
export function compileSortByCount(
  spec: unknown,
  maxGroups: number,
): (next: Sink) => Sink {
  if (
    !(typeof spec === "string" && spec.startsWith("$")) && !isPlainObject(spec)
  ) {
    throw stageError(
      "$sortByCount",
      `expects a field path or an expression object, got ${describe(spec)}`,
    );
  }
  const group = compileGroup({ _id: spec, count: { $sum: 1 } }, maxGroups);
  return (next) => {
    const rows: Doc[] = [];
    return group({
      push(doc) {
        rows.push(doc);
        return true;
      },
      end() {
        rows.sort((a, b) =>
          (b.count as number) - (a.count as number) ||
          compareValues(a._id, b._id)
        );
        for (const r of rows) if (!next.push(r)) break;
        next.end();
      },
    });
  };
}
