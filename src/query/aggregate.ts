/**
 * Aggregation pipelines: compiled once (an unknown stage or operator is a
 * `TypeError` before anything is read), then run as a chain of push-based
 * stages over the collection's documents. `$match`, `$project`,
 * `$addFields`/`$set`, `$unset`, `$unwind`, `$skip` and `$limit` stream;
 * `$group`, `$bucket`, `$sortByCount` and `$sort` hold their state until the
 * input ends (see `aggregate_group.ts` for `$group`'s memory bound).
 *
 * @module
 */

import {
  compileAddFields,
  compileProject,
  compileUnset,
  type Doc,
  isDoc,
  stageError,
} from "./aggregate_project.ts";
import {
  compileBucket,
  compileGroup,
  compileSortByCount,
  DEFAULT_MAX_GROUPS,
  groupKey,
  type Sink,
} from "./aggregate_group.ts";
import { compareValues } from "./compare.ts";
import { compileFilter, type Filter } from "./compile.ts";
import { compileExpression } from "./expression.ts";
import { compileSort, type SortSpec } from "./sort.ts";
import { describe, isPlainObject } from "./types.ts";
import { setOwn } from "../value_codec.ts";

/** One pipeline stage, e.g. `{ $group: { _id: "$device", n: { $sum: 1 } } }`. */
export type PipelineStage = { readonly [stage: string]: unknown };

/** An aggregation pipeline: stages run in order. */
export type Pipeline = readonly PipelineStage[];

/** Options of `aggregate`. */
export interface AggregateOptions {
  /** The most groups one `$group`/`$sortByCount` may hold (default 1,000,000). */
  readonly maxGroups?: number;
}

/** What the leading stages ask of `find` (filter, sort, skip, limit). */
export interface Pushdown {
  /** The leading `$match`'s filter. */
  filter: Filter;
  /** A `$sort` right after it. */
  sort: SortSpec | undefined;
  /** Leading `$skip`s. */
  skip: number;
  /** Leading `$limit`s. */
  limit: number;
}

type Factory = (next: Sink) => Sink;

/** A compiled pipeline. */
export interface CompiledPipeline {
  /** What `find` does first. */
  readonly pushdown: Pushdown;
  /** The remaining stages. */
  readonly stages: readonly Factory[];
}

function count(stage: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new RangeError(
      `Cannot compile pipeline stage '${stage}': expects a whole number of at least ${min}, got ${
        typeof v === "number" ? v : describe(v)
      }`,
    );
  }
  return v;
}

function map(f: (d: Doc) => Doc): Factory {
  return (next) => ({ push: (d) => next.push(f(d)), end: () => next.end() });
}

function compileUnwind(spec: unknown): Factory {
  const o = typeof spec === "string" ? { path: spec } : spec;
  if (!isPlainObject(o)) {
    throw stageError(
      "$unwind",
      `expects a field path or an object, got ${describe(spec)}`,
    );
  }
  for (const k of Object.keys(o)) {
    if (
      !["path", "includeArrayIndex", "preserveNullAndEmptyArrays"].includes(k)
    ) {
      throw stageError("$unwind", `unknown field '${k}'`);
    }
  }
  const path = o.path;
  if (typeof path !== "string" || !path.startsWith("$") || path.length < 2) {
    throw stageError(
      "$unwind",
      `path must be a field path such as "$sizes", got ${describe(path)}`,
    );
  }
  const segs = path.slice(1).split(".");
  if (segs.some((s) => s === "" || s.startsWith("$"))) {
    throw stageError("$unwind", `the path '${path}' is malformed`);
  }
  const index = o.includeArrayIndex;
  if (
    index !== undefined &&
    (typeof index !== "string" || index === "" || index.startsWith("$"))
  ) {
    throw stageError(
      "$unwind",
      `includeArrayIndex must be a field name, got ${describe(index)}`,
    );
  }
  const preserve = o.preserveNullAndEmptyArrays ?? false;
  if (typeof preserve !== "boolean") {
    throw stageError("$unwind", "preserveNullAndEmptyArrays must be a boolean");
  }
  const read = compileExpression(path, "$unwind.path");
  const set = (d: Doc, v: unknown, i: number | null): Doc => {
    let out: Doc = { ...d };
    if (segs.length === 1) {
      if (v === undefined) delete out[segs[0]!];
      else setOwn(out, segs[0]!, v);
    } else {
      out = compileSet(out, segs, 0, v);
    }
    if (index !== undefined) setOwn(out, index, i);
    return out;
  };
  return (next) => ({
    push(d) {
      const v = read(d);
      if (Array.isArray(v)) {
        if (v.length === 0) {
          return preserve ? next.push(set(d, undefined, null)) : true;
        }
        for (let i = 0; i < v.length; i++) {
          if (!next.push(set(d, v[i], i))) return false;
        }
        return true;
      }
      if (v === null || v === undefined) {
        if (!preserve) return true;
        return next.push(index === undefined ? d : { ...d, [index]: null });
      }
      return next.push(set(d, v, null));
    },
    end: () => next.end(),
  });
}

function compileSet(d: Doc, segs: string[], i: number, v: unknown): Doc {
  const out: Doc = { ...d };
  const seg = segs[i]!;
  if (i === segs.length - 1) {
    if (v === undefined) delete out[seg];
    else setOwn(out, seg, v);
  } else {
    const sub = Object.hasOwn(out, seg) ? out[seg] : undefined;
    setOwn(out, seg, compileSet(isDoc(sub) ? sub : {}, segs, i + 1, v));
  }
  return out;
}

function compileStage(
  name: string,
  arg: unknown,
  options: { maxGroups: number },
): Factory {
  switch (name) {
    case "$match": {
      if (!isPlainObject(arg)) {
        throw stageError(
          "$match",
          `expects a filter object, got ${describe(arg)}`,
        );
      }
      const p = compileFilter(arg);
      return (next) => ({
        push: (d) => p(d) ? next.push(d) : true,
        end: () => next.end(),
      });
    }
    case "$project":
      return map(compileProject(arg));
    case "$addFields":
    case "$set":
      return map(compileAddFields(arg, name));
    case "$unset":
      return map(compileUnset(arg));
    case "$group":
      return compileGroup(arg, options.maxGroups);
    case "$bucket":
      return compileBucket(arg);
    case "$sortByCount":
      return compileSortByCount(arg, options.maxGroups);
    case "$unwind":
      return compileUnwind(arg);
    case "$sort": {
      if (!isPlainObject(arg) || Object.keys(arg).length === 0) {
        throw stageError(
          "$sort",
          `expects a non-empty sort object, got ${describe(arg)}`,
        );
      }
      const cmp = compileSort(arg as SortSpec);
      return (next) => {
        const rows: Doc[] = [];
        return {
          push: (d) => (rows.push(d), true),
          end() {
            rows.sort(cmp);
            for (const r of rows) if (!next.push(r)) break;
            next.end();
          },
        };
      };
    }
    case "$limit": {
      const n = count("$limit", arg, 1);
      return (next) => {
        let left = n;
        return {
          push: (d) => --left > 0 ? next.push(d) : (next.push(d), false),
          end: () => next.end(),
        };
      };
    }
    case "$skip": {
      const n = count("$skip", arg, 0);
      return (next) => {
        let left = n;
        return {
          push: (d) => left > 0 ? (left--, true) : next.push(d),
          end: () => next.end(),
        };
      };
    }
    case "$count": {
      if (
        typeof arg !== "string" || arg === "" || arg.startsWith("$") ||
        arg.includes(".")
      ) {
        throw stageError(
          "$count",
          `expects a field name, got ${describe(arg)}`,
        );
      }
      return (next) => {
        let n = 0;
        return {
          push: () => (n++, true),
          end() {
            if (n > 0) next.push({ [arg]: n });
            next.end();
          },
        };
      };
    }
  }
  throw stageError(
    name,
    `unknown stage (supported: $match $project $addFields $set $unset $group $bucket $sortByCount $unwind $sort $limit $skip $count)`,
  );
}

/**
 * Compiles a pipeline: validates every stage and takes a leading `$match`
 * (and a `$sort`, `$skip`s and `$limit`s right after it) for `find`, which
 * plans them against the indexes.
 *
 * @param pipeline The stages.
 * @param options `maxGroups`.
 * @returns The compiled pipeline.
 * @throws {TypeError} On an unknown stage or operator, or a malformed stage.
 * @throws {RangeError} On a bad `$limit`/`$skip` or `maxGroups`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compilePipeline } from "./aggregate.ts";
 * const p = compilePipeline([{ $match: { t: { $gt: 1 } } }, { $limit: 5 }]);
 * assert.deepEqual(p.pushdown.filter, { t: { $gt: 1 } });
 * assert.equal(p.pushdown.limit, 5);
 * ```
 */
export function compilePipeline(
  pipeline: Pipeline,
  options: AggregateOptions = {},
): CompiledPipeline {
  if (!Array.isArray(pipeline)) {
    throw new TypeError(
      `Cannot compile pipeline: expects an array of stages, got ${
        describe(pipeline)
      }`,
    );
  }
  if (!isPlainObject(options)) {
    throw new TypeError(
      `Cannot compile pipeline: options must be an object, got ${
        describe(options)
      }`,
    );
  }
  for (const k of Object.keys(options)) {
    if (k !== "maxGroups") {
      throw new TypeError(`Cannot compile pipeline: unknown option '${k}'`);
    }
  }
  const maxGroups = options.maxGroups ?? DEFAULT_MAX_GROUPS;
  if (
    typeof maxGroups !== "number" || !Number.isInteger(maxGroups) ||
    maxGroups < 1
  ) {
    throw new RangeError(
      `Cannot compile pipeline: maxGroups must be a whole number of at least 1, got ${
        describe(maxGroups)
      }`,
    );
  }
  // An index loop: a hole (`[, { $match: {} }]`) is read as `undefined`
  // and refused like any other non-stage (`map` would leave it out).
  const parsed: [string, unknown][] = [];
  for (let i = 0; i < pipeline.length; i++) {
    const s: unknown = pipeline[i];
    const keys = isPlainObject(s) ? Object.keys(s) : [];
    if (!isPlainObject(s) || keys.length !== 1) {
      throw new TypeError(
        `Cannot compile pipeline: stage ${i} must be an object with exactly one field, got ${
          describe(s)
        }`,
      );
    }
    parsed.push([keys[0]!, (s as Record<string, unknown>)[keys[0]!]]);
  }
  const stages = parsed.map(([name, arg]) =>
    compileStage(name, arg, { maxGroups })
  );
  const pushdown: Pushdown = {
    filter: {},
    sort: undefined,
    skip: 0,
    limit: Infinity,
  };
  let i = 0;
  if (parsed[0]?.[0] === "$match") {
    pushdown.filter = parsed[0][1] as Filter;
    i = 1;
    if (parsed[1]?.[0] === "$sort") {
      pushdown.sort = parsed[1][1] as SortSpec;
      i = 2;
    }
  }
  for (; i < parsed.length; i++) {
    const [name, arg] = parsed[i]!;
    if (name === "$skip" && pushdown.limit === Infinity) {
      pushdown.skip += arg as number;
    } else if (name === "$limit") {
      pushdown.limit = Math.min(pushdown.limit, arg as number);
    } else break;
  }
  return { pushdown, stages: stages.slice(i) };
}

/**
 * The result of `aggregate()`: an async iterable of the output documents.
 * Each iteration runs the pipeline anew.
 *
 * @typeParam R The output documents' type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.putBatch([{ d: "a", t: 1 }, { d: "a", t: 3 }, { d: "b", t: 5 }]);
 * const rows = await db.aggregate([
 *   { $group: { _id: "$d", avg: { $avg: "$t" } } },
 *   { $sort: { _id: 1 } },
 * ]).toArray();
 * assert.deepEqual(rows, [{ _id: "a", avg: 2 }, { _id: "b", avg: 5 }]);
 * ```
 */
export class AggregationCursor<R = Record<string, unknown>>
  implements AsyncIterable<R> {
  readonly #source: () => AsyncIterable<readonly unknown[]>;
  readonly #stages: readonly Factory[];

  /**
   * Internal: `Collection.aggregate` builds it from a compiled pipeline.
   *
   * @param source The input documents, in batches (run anew for each
   *   iteration).
   * @param stages The compiled stages.
   */
  constructor(
    source: () => AsyncIterable<readonly unknown[]>,
    stages: readonly Factory[],
  ) {
    this.#source = source;
    this.#stages = stages;
  }

  /**
   * Runs the pipeline.
   *
   * @returns The output documents, as they are produced.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<R> {
    let out: Doc[] = [];
    let head: Sink = { push: (d) => (out.push(d), true), end: () => {} };
    for (let i = this.#stages.length - 1; i >= 0; i--) {
      head = this.#stages[i]!(head);
    }
    feed: for await (const docs of this.#source()) {
      for (const doc of docs) {
        const go = head.push(isDoc(doc) ? doc : {});
        if (out.length > 0) {
          const batch = out;
          out = [];
          for (const r of batch) yield r as R;
        }
        if (!go) break feed;
      }
    }
    head.end();
    for (const r of out) yield r as R;
  }

  /**
   * Runs the pipeline and collects the output.
   *
   * @returns The output documents.
   */
  async toArray(): Promise<R[]> {
    return await Array.fromAsync(this);
  }
}

/**
 * The distinct values of a field (arrays count each element), sorted in
 * MongoDB's order of types and values.
 *
 * @param docs The documents.
 * @param field The field path.
 * @returns The values.
 */
export async function distinctValues(
  docs: AsyncIterable<unknown>,
  field: string,
): Promise<unknown[]> {
  const read = compileExpression(`$${field}`, "distinct");
  const seen = new Map<string, unknown>();
  for await (const d of docs) {
    const v = read(d);
    const vs = Array.isArray(v) ? v : [v];
    for (const x of vs) {
      if (x === undefined) continue;
      const k = groupKey(x);
      if (!seen.has(k)) seen.set(k, x);
    }
  }
  return [...seen.values()].sort(compareValues);
}
