/**
 * The reshaping stages of a pipeline: `$project`, `$addFields`/`$set` and
 * `$unset`, compiled once into functions from a document to a new document.
 * Input documents are never changed: the output shares unchanged parts and
 * copies every object on a path it writes.
 *
 * @module
 */

import { compileExpression, type Expression, ownField } from "./expression.ts";
import { describe, isPlainObject } from "./types.ts";
import { setOwn } from "../value_codec.ts";

/** A document in a pipeline. */
export type Doc = Record<string, unknown>;

/** Whether a value is a document a path can enter. */
export function isDoc(v: unknown): v is Doc {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Date) && !(v instanceof RegExp);
}

/**
 * The error for a malformed stage.
 *
 * @param stage The stage, e.g. `"$group"`.
 * @param problem What is wrong.
 * @returns A `TypeError` naming the stage.
 */
export function stageError(stage: string, problem: string): TypeError {
  return new TypeError(`Cannot compile pipeline stage '${stage}': ${problem}`);
}

function checkName(stage: string, path: string): string[] {
  const segs = path.split(".");
  if (segs.some((s) => s === "")) {
    throw stageError(stage, `the field path '${path}' has an empty segment`);
  }
  if (segs.some((s) => s.startsWith("$"))) {
    throw stageError(stage, `the field name '${path}' must not start with '$'`);
  }
  return segs;
}

// --- $project -------------------------------------------------------------------

type ProjNode = Map<string, "in" | "out" | Expression | ProjNode>;

function isOperator(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  const k = Object.keys(v)[0];
  return k !== undefined && k.startsWith("$");
}

/** Builds the projection tree; reports whether it includes and excludes. */
function projTree(
  stage: string,
  spec: Record<string, unknown>,
  root: ProjNode,
  prefix: string,
  seen: { inc: boolean; exc: boolean; excId: boolean },
): void {
  for (const key of Object.keys(spec)) {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    const segs = checkName(stage, key);
    let node = root;
    for (let i = 0; i < segs.length - 1; i++) {
      const seg = segs[i]!;
      let sub = node.get(seg);
      if (sub === undefined) node.set(seg, sub = new Map());
      if (!(sub instanceof Map)) {
        throw stageError(stage, `the path '${path}' collides with another`);
      }
      node = sub;
    }
    const last = segs[segs.length - 1]!;
    const v = spec[key];
    let leaf: "in" | "out" | Expression | ProjNode;
    if (v === true || v === 1 || (typeof v === "number" && v !== 0)) {
      leaf = "in";
      seen.inc = true;
    } else if (v === false || v === 0) {
      leaf = "out";
      if (path === "_id") seen.excId = true;
      else seen.exc = true;
    } else if (isPlainObject(v) && !isOperator(v)) {
      if (Object.keys(v).length === 0) {
        throw stageError(stage, `'${path}' is an empty object`);
      }
      const sub: ProjNode = node.get(last) instanceof Map
        ? node.get(last) as ProjNode
        : new Map();
      projTree(stage, v, sub, path, seen);
      leaf = sub;
    } else {
      leaf = compileExpression(v, `${stage}.${path}`);
      seen.inc = true;
    }
    if (node.has(last) && !(leaf instanceof Map)) {
      throw stageError(stage, `the path '${path}' collides with another`);
    }
    node.set(last, leaf);
  }
}

function includeFrom(src: unknown, node: ProjNode, root: unknown): Doc {
  const out: Doc = {};
  const doc = isDoc(src) ? src : undefined;
  for (const [k, spec] of node) {
    if (spec === "out") continue;
    if (spec === "in") {
      if (doc !== undefined) {
        const v = ownField(doc, k);
        if (v !== undefined) setOwn(out, k, v);
      }
    } else if (spec instanceof Map) {
      const v = doc === undefined ? undefined : ownField(doc, k);
      if (isDoc(v)) setOwn(out, k, includeFrom(v, spec, root));
      else if (Array.isArray(v)) setOwn(out, k, includeArray(v, spec, root));
      else if (hasComputed(spec)) {
        setOwn(out, k, includeFrom(undefined, spec, root));
      }
    } else {
      const v = spec(root);
      if (v !== undefined) setOwn(out, k, v);
    }
  }
  return out;
}

function includeArray(
  arr: unknown[],
  node: ProjNode,
  root: unknown,
): unknown[] {
  const out: unknown[] = [];
  for (const e of arr) {
    if (isDoc(e)) out.push(includeFrom(e, node, root));
    else if (Array.isArray(e)) out.push(includeArray(e, node, root));
    else if (hasComputed(node)) out.push(includeFrom(undefined, node, root));
  }
  return out;
}

function hasComputed(node: ProjNode): boolean {
  for (const v of node.values()) {
    if (typeof v === "function") return true;
    if (v instanceof Map && hasComputed(v)) return true;
  }
  return false;
}

function excludeFrom(src: Doc, node: ProjNode): Doc {
  const out: Doc = { ...src };
  for (const [k, spec] of node) {
    if (!Object.hasOwn(out, k)) continue;
    if (spec === "out") delete out[k];
    else if (spec instanceof Map) {
      const v = out[k];
      if (isDoc(v)) setOwn(out, k, excludeFrom(v, spec));
      else if (Array.isArray(v)) setOwn(out, k, excludeArray(v, spec));
    }
  }
  return out;
}

function excludeArray(arr: unknown[], node: ProjNode): unknown[] {
  return arr.map((e) =>
    isDoc(e)
      ? excludeFrom(e, node)
      : Array.isArray(e)
      ? excludeArray(e, node)
      : e
  );
}

/**
 * Compiles a `$project` stage.
 *
 * @param spec The projection: `1`/`true` includes, `0`/`false` excludes,
 *   anything else is an expression for a new field.
 * @param stage The stage name (for errors).
 * @returns The projection function.
 * @throws {TypeError} On a mix of inclusion and exclusion (other than
 *   `_id: 0`), an empty projection, or a malformed expression.
 */
export function compileProject(
  spec: unknown,
  stage = "$project",
): (doc: Doc) => Doc {
  if (!isPlainObject(spec)) {
    throw stageError(stage, `expects an object, got ${describe(spec)}`);
  }
  if (Object.keys(spec).length === 0) {
    throw stageError(stage, "the projection is empty");
  }
  const tree: ProjNode = new Map();
  const seen = { inc: false, exc: false, excId: false };
  projTree(stage, spec, tree, "", seen);
  if (seen.inc && seen.exc) {
    throw stageError(
      stage,
      "cannot mix inclusion (or computed fields) and exclusion, except _id: 0",
    );
  }
  if (!seen.inc) return (doc) => excludeFrom(doc, tree);
  if (!tree.has("_id")) {
    // _id is included unless excluded: first, as in MongoDB.
    const withId: ProjNode = new Map([["_id", "in"]]);
    for (const [k, v] of tree) withId.set(k, v);
    return (doc) => includeFrom(doc, withId, doc);
  }
  return (doc) => includeFrom(doc, tree, doc);
}

/**
 * Compiles `$unset`: a field path or a list of them.
 *
 * @param spec The path(s).
 * @returns The function removing them.
 * @throws {TypeError} If a path is not a non-empty string.
 */
export function compileUnset(spec: unknown): (doc: Doc) => Doc {
  const paths = Array.isArray(spec) ? spec : [spec];
  if (paths.length === 0) {
    throw stageError("$unset", "the list of fields is empty");
  }
  const proj: Record<string, 0> = {};
  for (const p of paths) {
    if (typeof p !== "string") {
      throw stageError("$unset", `expects field paths, got ${describe(p)}`);
    }
    setOwn(proj, p, 0);
  }
  return compileProject(proj, "$unset");
}

// --- $addFields / $set ------------------------------------------------------------

/** Flattens nested field specs (`{a: {b: 1}}` sets `a.b`, merging into `a`). */
function flatten(
  spec: Record<string, unknown>,
  prefix: string,
  out: [string, unknown][],
): void {
  for (const k of Object.keys(spec)) {
    const path = prefix === "" ? k : `${prefix}.${k}`;
    const v = spec[k];
    if (isPlainObject(v) && !isOperator(v) && Object.keys(v).length > 0) {
      flatten(v, path, out);
    } else {
      out.push([path, v]);
    }
  }
}

/** Sets `segs[i..]` to `v` in a copy of `target`; arrays set every element. */
function setIn(
  target: unknown,
  segs: readonly string[],
  i: number,
  v: unknown,
): unknown {
  if (Array.isArray(target)) {
    return target.map((e) => setIn(e, segs, i, v));
  }
  const out: Doc = isDoc(target) ? { ...target } : {};
  const seg = segs[i]!;
  if (i === segs.length - 1) {
    if (v === undefined) delete out[seg];
    else setOwn(out, seg, v);
  } else {
    setOwn(out, seg, setIn(ownField(out, seg), segs, i + 1, v));
  }
  return out;
}

/**
 * Compiles `$addFields` (alias `$set`): each field gets the value of its
 * expression, evaluated on the input document; a missing value (or
 * `$$REMOVE`) removes the field.
 *
 * @param spec Field paths mapped to expressions.
 * @param stage The stage name (for errors).
 * @returns The function adding the fields.
 * @throws {TypeError} On a malformed path or expression.
 */
export function compileAddFields(
  spec: unknown,
  stage = "$addFields",
): (doc: Doc) => Doc {
  if (!isPlainObject(spec)) {
    throw stageError(stage, `expects an object, got ${describe(spec)}`);
  }
  const pairs: [string, unknown][] = [];
  flatten(spec, "", pairs);
  const fields = pairs.map(([path, v]) => ({
    segs: checkName(stage, path),
    expr: compileExpression(v, `${stage}.${path}`),
  }));
  return (doc) => {
    const values = fields.map((f) => f.expr(doc));
    let out: Doc = doc;
    for (let i = 0; i < fields.length; i++) {
      const { segs } = fields[i]!;
      const v = values[i];
      if (segs.length === 1) {
        if (out === doc) out = { ...doc };
        if (v === undefined) delete out[segs[0]!];
        else setOwn(out, segs[0]!, v);
      } else {
        out = setIn(out, segs, 0, v) as Doc;
      }
    }
    return out;
  };
}
