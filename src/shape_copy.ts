/**
 * Copies of flat documents by functions compiled for their shape, about 3x
 * faster than a spread followed by a walk for nested objects. Each shape
 * has two copiers, which differ only in how V8 allocates their copies:
 *
 * - the **short-lived** one (`get`, an iteration, the first results of a
 *   `toArray()`) builds the copy with a constructor whose prototype is
 *   `Object.prototype`: a plain object, but made without an allocation
 *   site, so V8 never tenures it and a copy that is dropped soon dies
 *   young, cheaply (tenured copies made a small indexed find 2x slower);
 * - the **kept** one (the rest of a long `toArray()`) is an object literal
 *   naming the fields in order (`{ "name": a0, "age": a1 }`): an
 *   allocation site V8 learns from, so that when most copies live on it
 *   allocates them straight in the old generation instead of copying each
 *   through the young one (long scavenges that held the event loop).
 *
 * One shape is current (the last one learned); a document whose own keys, in
 * order, are the shape's and whose fields hold no object takes its copier,
 * anything else the caller's general copy. After enough documents of another
 * shape in a row, their shape is learned (compiled once, kept in a small
 * cache). Where the host forbids code generation, nothing is compiled.
 *
 * @module
 */

type Copier = (v: Record<string, unknown>) => Record<string, unknown> | null;

/** A shape's two copiers (see the module documentation). */
interface Copiers {
  /** Copies that are dropped soon: never tenured. */
  readonly young: Copier;
  /** Copies that are kept (a long `toArray()`): V8 may tenure them. */
  readonly kept: Copier;
}

/** Most shapes compiled and kept. */
const MAX_SHAPES = 64;
/** Most fields of a shape compiled. */
const MAX_FIELDS = 32;
/** Documents of another shape in a row before it is learned. */
const RELEARN = 16;

const cache = new Map<string, Copiers>();
let keys: readonly string[] = [];
let copier: Copiers | undefined;
let misses = 0;
let forbidden = false;

/**
 * A copy of a flat document (own fields holding no object), made by its
 * shape's compiled copier.
 *
 * @param v A stored document (a plain object with own data fields only).
 * @param kept The copy is expected to live on (the rest of a long
 *   `toArray()`): V8 may then allocate it in the old generation.
 * @returns The copy, or `null` when the caller must copy it otherwise
 *   (another shape, a nested object, no compiled copier).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shapeCopy } from "./shape_copy.ts";
 * const docs = Array.from({ length: 40 }, (_, i) => ({ a: i, b: "x" }));
 * for (const d of docs) shapeCopy(d); // learns the shape
 * const copy = shapeCopy(docs[0]!);
 * assert.deepEqual(copy ?? { ...docs[0] }, { a: 0, b: "x" });
 * assert.equal(shapeCopy({ a: { nested: 1 }, b: "x" }), null);
 * ```
 */
export function shapeCopy(
  v: Record<string, unknown>,
  kept = false,
): Record<string, unknown> | null {
  const c = copier;
  if (c !== undefined) {
    const ks = keys;
    const n = ks.length;
    let i = 0;
    let same = true;
    for (const k in v) {
      if (i >= n || ks[i] !== k) {
        same = false;
        break;
      }
      i++;
    }
    if (same && i === n) {
      misses = 0;
      return kept ? c.kept(v) : c.young(v);
    }
  }
  if (forbidden || ++misses < RELEARN) return null;
  misses = 0;
  learn(v);
  return null;
}

function learn(v: Record<string, unknown>): void {
  const own = Object.keys(v);
  if (own.length === 0 || own.length > MAX_FIELDS) return;
  for (const k of own) if (k === "__proto__") return;
  // JSON of the list: unambiguous (a join would give ["a", ""] and ["a\0"]
  // the same id, and a document of one shape the other's copier).
  const id = JSON.stringify(own);
  let c = cache.get(id);
  if (c === undefined) {
    c = compile(own);
    if (c === undefined) return;
    if (cache.size >= MAX_SHAPES) cache.delete(cache.keys().next().value!);
    cache.set(id, c);
  }
  keys = own;
  copier = c;
}

function compile(own: readonly string[]): Copiers | undefined {
  const reads = own.map((k, i) => `const a${i} = v[${JSON.stringify(k)}];`);
  const nested = own.map((_, i) =>
    `(typeof a${i} === "object" && a${i} !== null)`
  );
  const literal = `{ ${
    own.map((k, i) => `${JSON.stringify(k)}: a${i}`).join(", ")
  } }`;
  const args = own.map((_, i) => `a${i}`).join(", ");
  // A key that Object.prototype also has (where a setter could catch the
  // constructor's assignment) takes the literal for both.
  const plain = own.every((k) => !(k in Object.prototype));
  const make = plain
    ? `function Copy(${args}) {\n    ${
      own.map((k, i) => `this[${JSON.stringify(k)}] = a${i};`).join("\n    ")
    }\n  }\n  Copy.prototype = Object.prototype;\n  `
    : "";
  const body = (build: string) =>
    `"use strict";\n${make}return function copyShape(v) {\n  ${
      reads.join("\n  ")
    }\n  if (${nested.join(" || ")}) return null;\n  return ${build};\n};`;
  try {
    return {
      young: new Function(body(plain ? `new Copy(${args})` : literal))(),
      kept: new Function(body(literal))(),
    };
  } catch (e) {
    if (e instanceof EvalError) forbidden = true;
    return undefined;
  }
}
