/**
 * The update compiler's path walker: copies a document along one path and
 * replaces the value at its end, creating missing parents where the
 * operator creates fields, and fanning out over the positional segments
 * `$` (the element the filter matched), `$[]` (every element) and
 * `$[<id>]` (the elements an array filter selects).
 *
 * Internal to {@linkcode compileUpdate}; see `update.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KEEP, modify, target, emptyContext } from "./update_walk.ts";
 * const t = target("$set", "a.$[].b", true, String);
 * const out = modify({ a: [{ b: 1 }, { b: 2 }] }, t, () => 0, emptyContext());
 * assert.deepEqual(out, { a: [{ b: 0 }, { b: 0 }] });
 * assert.notEqual(KEEP, undefined);
 * ```
 *
 * @module
 */

import { setOwn } from "../value_codec.ts";
import { splitPath } from "./path.ts";

/** A document as the walker sees it. */
export type Doc = Record<string, unknown>;

/** How a stored value is named in an error. */
export type Show = (value: unknown) => string;

/** A leaf result meaning "leave the field as it is". */
export const KEEP: unique symbol = Symbol("keep");
/** A leaf result meaning "remove the field" (`null` in an array element). */
export const REMOVE: unique symbol = Symbol("remove");

/** Computes a field's new value, {@linkcode KEEP} or {@linkcode REMOVE}. */
export type Leaf = (current: unknown, exists: boolean) => unknown;

/** What one application of an update knows besides the document. */
export interface ApplyContext {
  /** Whether the document is being inserted by an upsert. */
  readonly insert: boolean;
  /** The time `$currentDate` writes. */
  readonly now: Date;
  /**
   * The index of the element the filter matched in the array at `prefix`
   * (for `$`), or `undefined` when the filter matched none there.
   */
  readonly position: (prefix: readonly string[]) => number | undefined;
  /** The array filters by identifier (for `$[<id>]`). */
  readonly arrayFilters: ReadonlyMap<string, (element: unknown) => boolean>;
  /**
   * Set when positional paths could reach one field twice: the concrete
   * path being walked and the fields written so far, by update path.
   */
  readonly conflicts?: Conflicts;
}

/** The state of the runtime conflict check (see {@linkcode ApplyContext}). */
export interface Conflicts {
  /** The concrete segments walked so far. */
  readonly trail: string[];
  /** The concrete fields written, each with the update path that wrote it. */
  readonly written: { readonly path: string; readonly concrete: string }[];
  /**
   * The document before the update: array filters test its elements, as
   * MongoDB applies all paths to the original document at once.
   */
  readonly original: unknown;
}

/** The value at concrete segments of a document, or `undefined`. */
function at(doc: unknown, segs: readonly string[]): unknown {
  let cur = doc;
  for (const s of segs) {
    if (Array.isArray(cur)) cur = isIndex(s) ? cur[Number(s)] : undefined;
    else if (isDocument(cur)) cur = Object.hasOwn(cur, s) ? cur[s] : undefined;
    else return undefined;
  }
  return cur;
}

/** Records a write at the trail; two update paths on one field conflict. */
function record(c: Conflicts, t: Target): void {
  const concrete = c.trail.join(".");
  for (const w of c.written) {
    if (
      w.path !== t.path &&
      (w.concrete === concrete || concrete.startsWith(`${w.concrete}.`) ||
        w.concrete.startsWith(`${concrete}.`))
    ) {
      throw applyError(
        t.path,
        `the update creates a conflict at '${concrete}' ('${w.path}' reaches it too)`,
      );
    }
  }
  c.written.push({ path: t.path, concrete });
}

/** Runs `f` with `seg` on the conflict trail (the check is on). */
function along<R>(ctx: ApplyContext, seg: string, f: () => R): R {
  const c = ctx.conflicts!;
  c.trail.push(seg);
  try {
    return f();
  } finally {
    c.trail.pop();
  }
}

/**
 * A context with no filter, no array filters, not an insert.
 *
 * @returns The context.
 */
export function emptyContext(): ApplyContext {
  return {
    insert: false,
    now: new Date(),
    position: () => undefined,
    arrayFilters: new Map(),
  };
}

/** Where an operator applies and how it walks there. */
export interface Target {
  readonly op: string;
  readonly path: string;
  readonly segs: readonly string[];
  /** Whether missing parents are created (every operator but removals). */
  readonly creates: boolean;
  /** Whether the path may go through arrays (not for `$rename`). */
  readonly arrays: boolean;
  /** Names a stored value in errors. */
  readonly show: Show;
}

/**
 * A `TypeError` raised while applying an update.
 *
 * @param path The update path.
 * @param problem What is wrong.
 * @returns The error.
 */
export function applyError(path: string, problem: string): TypeError {
  return new TypeError(`Cannot apply update at '${path}': ${problem}`);
}

/**
 * Whether a segment is an array index.
 *
 * @param segment A path segment.
 * @returns Whether it is digits without a leading zero.
 */
export function isIndex(segment: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(segment);
}

/**
 * The identifier of a `$[<id>]` segment, `""` for `$[]`, `"$"` for `$`,
 * or `undefined` for an ordinary segment.
 *
 * @param segment A path segment.
 * @returns The positional kind.
 */
export function positional(segment: string): string | undefined {
  if (segment === "$") return "$";
  const m = /^\$\[([a-z][a-zA-Z0-9]*)?\]$/.exec(segment);
  if (m === null) return undefined;
  return m[1] ?? "";
}

/**
 * An object a path can walk into (not an array, Date or RegExp).
 *
 * @param value Anything.
 * @returns Whether it is a document.
 */
export function isDocument(value: unknown): value is Doc {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date) &&
    !(value instanceof RegExp);
}

/**
 * A shallow copy keeping field order (and `__proto__` as a field).
 *
 * @param doc A document.
 * @returns The copy.
 */
export function shallowCopy(doc: Doc): Doc {
  const out: Doc = {};
  for (const k of Object.keys(doc)) setOwn(out, k, doc[k]);
  return out;
}

function modifyArray(
  container: unknown[],
  t: Target,
  i: number,
  leaf: Leaf,
  ctx: ApplyContext,
  kind: string,
): unknown {
  if (kind === "$") {
    const index = ctx.position(t.segs.slice(0, i));
    if (index === undefined) {
      throw applyError(
        t.path,
        "the positional operator '$' did not find the match needed from the query",
      );
    }
    return modifyIndex(container, index, t, i, leaf, ctx);
  }
  const test = kind === "" ? undefined : ctx.arrayFilters.get(kind);
  const c = ctx.conflicts;
  const before = test === undefined || c === undefined
    ? undefined
    : at(c.original, c.trail);
  let copy: unknown[] | undefined;
  for (let j = 0; j < container.length; j++) {
    if (test !== undefined) {
      const probe = Array.isArray(before) && j < before.length
        ? before[j]
        : container[j];
      if (!test(probe)) continue;
    }
    const el = container[j];
    const next = ctx.conflicts === undefined
      ? step(el, true, t, i, leaf, ctx)
      : along(ctx, String(j), () => step(el, true, t, i, leaf, ctx));
    if (next === KEEP) continue;
    copy ??= container.slice();
    copy[j] = next === REMOVE ? null : next;
  }
  return copy ?? KEEP;
}

function modifyIndex(
  container: unknown[],
  index: number,
  t: Target,
  i: number,
  leaf: Leaf,
  ctx: ApplyContext,
): unknown {
  const exists = index < container.length;
  const next = ctx.conflicts === undefined
    ? step(container[index], exists, t, i, leaf, ctx)
    : along(
      ctx,
      String(index),
      () => step(container[index], exists, t, i, leaf, ctx),
    );
  if (next === KEEP) return KEEP;
  const copy = container.slice();
  if (next === REMOVE) {
    copy[index] = null; // MongoDB's $unset of an element leaves a null
  } else {
    while (copy.length < index) copy.push(null);
    copy[index] = next;
  }
  return copy;
}

/** Walks `t.segs[i..]` in `container`; returns its replacement or KEEP. */
function modifyIn(
  container: unknown,
  t: Target,
  i: number,
  leaf: Leaf,
  ctx: ApplyContext,
): unknown {
  const seg = t.segs[i] as string;
  const kind = positional(seg);
  if (Array.isArray(container)) {
    if (!t.arrays) {
      throw applyError(
        t.path,
        `${t.op} cannot work on a field inside an array`,
      );
    }
    if (kind !== undefined) {
      return modifyArray(container, t, i, leaf, ctx, kind);
    }
    if (!isIndex(seg)) {
      if (!t.creates) return KEEP;
      throw applyError(
        t.path,
        `${t.op} cannot create field '${seg}' in an array`,
      );
    }
    return modifyIndex(container, Number(seg), t, i, leaf, ctx);
  }
  if (kind !== undefined) {
    throw applyError(
      t.path,
      `${t.op} cannot apply the array update '${seg}' to ${
        t.show(container)
      }, which is not an array`,
    );
  }
  if (isDocument(container)) {
    const exists = Object.hasOwn(container, seg);
    const current = exists ? container[seg] : undefined;
    const next = ctx.conflicts === undefined
      ? step(current, exists, t, i, leaf, ctx)
      : along(ctx, seg, () => step(current, exists, t, i, leaf, ctx));
    if (next === KEEP) return KEEP;
    const copy = shallowCopy(container);
    if (next === REMOVE) delete copy[seg];
    else setOwn(copy, seg, next);
    return copy;
  }
  if (!t.creates) return KEEP;
  throw applyError(
    t.path,
    `${t.op} cannot create field '${seg}' in ${t.show(container)}`,
  );
}

function step(
  current: unknown,
  exists: boolean,
  t: Target,
  i: number,
  leaf: Leaf,
  ctx: ApplyContext,
): unknown {
  if (i + 1 === t.segs.length) {
    if (ctx.conflicts !== undefined) record(ctx.conflicts, t);
    return leaf(current, exists);
  }
  if (!exists) {
    if (!t.creates) return KEEP;
    const next = t.segs[i + 1] as string;
    if (positional(next) !== undefined) {
      throw applyError(
        t.path,
        `the path '${
          t.segs.slice(0, i + 1).join(".")
        }' must exist in the document to apply the array update '${next}'`,
      );
    }
    current = {};
  }
  return modifyIn(current, t, i + 1, leaf, ctx);
}

/**
 * Applies `leaf` at the end of the target's path in a copy of `doc`.
 *
 * @param doc The document (not mutated).
 * @param t Where.
 * @param leaf What.
 * @param ctx The application's context.
 * @returns The new document, or `doc` itself when nothing changed.
 */
export function modify(
  doc: Doc,
  t: Target,
  leaf: Leaf,
  ctx: ApplyContext,
): Doc {
  const next = modifyIn(doc, t, 0, leaf, ctx);
  return next === KEEP ? doc : next as Doc;
}

/**
 * A compiled path.
 *
 * @param op The operator.
 * @param path The dotted path.
 * @param creates Whether missing parents are created.
 * @param show How stored values are named in errors.
 * @returns The target.
 */
export function target(
  op: string,
  path: string,
  creates: boolean,
  show: Show,
): Target {
  return {
    op,
    path,
    segs: splitPath(path),
    creates,
    arrays: op !== "$rename",
    show,
  };
}
