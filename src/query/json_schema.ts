/**
 * `$jsonSchema`: MongoDB's subset of JSON Schema draft 4, compiled once into
 * a predicate over the whole document.
 *
 * Keywords: `bsonType` (a BSON type alias or a list of them, mapped to
 * JavaScript types as `$type` does: `"int"` is a 32-bit integer, `"double"`
 * another number, `"number"` any number, `"long"`/`"decimal"` any integer /
 * any number, `"binData"` a `Uint8Array`), `type` (JSON types: `"object"`,
 * `"array"`, `"string"`, `"number"`, `"boolean"`, `"null"`), `required`,
 * `properties`, `additionalProperties` (a boolean or a schema),
 * `patternProperties`, `enum`, `minimum`/`maximum` (+ boolean
 * `exclusiveMinimum`/`exclusiveMaximum`), `minLength`/`maxLength`,
 * `pattern`, `items` (a schema, or a list for a tuple, with
 * `additionalItems`), `minItems`/`maxItems`, `uniqueItems`,
 * `minProperties`/`maxProperties`, `allOf`/`anyOf`/`oneOf`/`not`, and the
 * annotations `title` and `description`. As in JSON Schema, a keyword that
 * constrains one kind of value ignores values of other kinds (`minimum` passes
 * a string). Any other keyword is a `TypeError` at compile time.
 *
 * @module
 */

import { valuesEqual } from "./compare.ts";
import { describe, filterError, isPlainObject } from "./types.ts";

type Test = (v: unknown) => boolean;

function isInt32(v: number): boolean {
  return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;
}

function isDocument(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Date) && !(v instanceof RegExp) &&
    !(v instanceof Uint8Array);
}

const BSON_TYPES: { readonly [alias: string]: Test } = {
  double: (v) => typeof v === "number" && !isInt32(v),
  string: (v) => typeof v === "string",
  object: isDocument,
  array: (v) => Array.isArray(v),
  binData: (v) => v instanceof Uint8Array,
  bool: (v) => typeof v === "boolean",
  date: (v) => v instanceof Date,
  null: (v) => v === null,
  regex: (v) => v instanceof RegExp,
  int: (v) => typeof v === "number" && isInt32(v),
  long: (v) => typeof v === "number" && Number.isInteger(v),
  decimal: (v) => typeof v === "number",
  number: (v) => typeof v === "number",
  objectId: () => false,
  undefined: () => false,
  timestamp: () => false,
  minKey: () => false,
  maxKey: () => false,
  javascript: () => false,
  symbol: () => false,
};

const JSON_TYPES: { readonly [alias: string]: Test } = {
  object: isDocument,
  array: (v) => Array.isArray(v),
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  null: (v) => v === null,
};

class SchemaCompiler {
  readonly #path: string;
  constructor(path: string) {
    this.#path = path;
  }

  #error(where: string, problem: string): TypeError {
    return filterError(
      this.#path,
      `'$jsonSchema'${where === "" ? "" : ` at '${where}'`} ${problem}`,
    );
  }

  #count(s: Record<string, unknown>, k: string, where: string): number {
    const n = s[k];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
      throw this.#error(where, `'${k}' needs a non-negative integer`);
    }
    return n;
  }

  #types(
    table: { readonly [a: string]: Test },
    k: string,
    v: unknown,
    where: string,
  ): Test {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) throw this.#error(where, `'${k}' needs a type`);
    const tests = list.map((a) => {
      const t = typeof a === "string" && Object.hasOwn(table, a)
        ? table[a]
        : undefined;
      if (t === undefined) {
        throw this.#error(where, `'${k}' got unknown type ${describe(a)}`);
      }
      return t;
    });
    return (x) => tests.some((t) => t(x));
  }

  compile(schema: unknown, where: string): Test {
    if (!isPlainObject(schema)) {
      throw this.#error(
        where,
        `needs a schema object, got ${describe(schema)}`,
      );
    }
    const s = schema as Record<string, unknown>;
    const tests: Test[] = [];
    const sub = (x: unknown, w: string) => this.compile(x, w);
    const at = (k: string) => where === "" ? k : `${where}.${k}`;
    for (const k of Object.keys(s)) {
      const v = s[k];
      if (Array.isArray(v)) {
        // A hole (`[, "a"]`) would be passed over by the list methods below.
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) {
            throw this.#error(where, `'${k}' has a hole at index ${i}`);
          }
        }
      }
      switch (k) {
        case "title":
        case "description":
          break;
        case "bsonType":
          tests.push(this.#types(BSON_TYPES, k, v, where));
          break;
        case "type":
          tests.push(this.#types(JSON_TYPES, k, v, where));
          break;
        case "required": {
          if (
            !Array.isArray(v) || v.length === 0 ||
            v.some((n) => typeof n !== "string")
          ) {
            throw this.#error(where, "'required' needs a list of field names");
          }
          const names = v as string[];
          tests.push((x) =>
            !isDocument(x) || names.every((n) => Object.hasOwn(x, n))
          );
          break;
        }
        case "properties":
        case "patternProperties":
          if (!isPlainObject(v)) {
            throw this.#error(where, `'${k}' needs an object`);
          }
          break;
        case "additionalProperties":
          if (typeof v !== "boolean") sub(v, at(k));
          break;
        case "enum": {
          if (!Array.isArray(v) || v.length === 0) {
            throw this.#error(where, "'enum' needs a non-empty list");
          }
          tests.push((x) => v.some((e) => valuesEqual(x, e)));
          break;
        }
        case "minimum":
        case "maximum": {
          if (typeof v !== "number") {
            throw this.#error(where, `'${k}' needs a number`);
          }
          const excl =
            s[k === "minimum" ? "exclusiveMinimum" : "exclusiveMaximum"] ===
              true;
          tests.push(
            k === "minimum"
              ? (x) => typeof x !== "number" || (excl ? x > v : x >= v)
              : (x) => typeof x !== "number" || (excl ? x < v : x <= v),
          );
          break;
        }
        case "exclusiveMinimum":
        case "exclusiveMaximum":
          if (typeof v !== "boolean") {
            throw this.#error(where, `'${k}' needs true or false`);
          }
          break;
        case "minLength":
        case "maxLength": {
          const n = this.#count(s, k, where);
          const len = (x: string) => [...x].length;
          tests.push(
            k === "minLength"
              ? (x) => typeof x !== "string" || len(x) >= n
              : (x) => typeof x !== "string" || len(x) <= n,
          );
          break;
        }
        case "pattern": {
          if (typeof v !== "string") {
            throw this.#error(where, "'pattern' needs a string");
          }
          let re: RegExp;
          try {
            re = new RegExp(v, "u");
            re.test(""); // compiled when first run: too large fails here
          } catch {
            throw this.#error(where, `'pattern' is not a valid regex`);
          }
          tests.push((x) => typeof x !== "string" || re.test(x));
          break;
        }
        case "items": {
          if (Array.isArray(v)) {
            const each = v.map((e, i) => sub(e, at(`items.${i}`)));
            const extra = s.additionalItems;
            const rest: Test = extra === undefined || extra === true
              ? () => true
              : extra === false
              ? () => false
              : sub(extra, at("additionalItems"));
            tests.push((x) =>
              !Array.isArray(x) ||
              x.every((e, i) => i < each.length ? each[i]!(e) : rest(e))
            );
          } else {
            const each = sub(v, at(k));
            tests.push((x) => !Array.isArray(x) || x.every(each));
          }
          break;
        }
        case "additionalItems":
          if (typeof v !== "boolean") sub(v, at(k));
          break;
        case "minItems":
        case "maxItems": {
          const n = this.#count(s, k, where);
          tests.push(
            k === "minItems"
              ? (x) => !Array.isArray(x) || x.length >= n
              : (x) => !Array.isArray(x) || x.length <= n,
          );
          break;
        }
        case "uniqueItems":
          if (typeof v !== "boolean") {
            throw this.#error(where, "'uniqueItems' needs true or false");
          }
          if (v) {
            tests.push((x) =>
              !Array.isArray(x) ||
              x.every((e, i) => x.findIndex((f) => valuesEqual(e, f)) === i)
            );
          }
          break;
        case "minProperties":
        case "maxProperties": {
          const n = this.#count(s, k, where);
          tests.push(
            k === "minProperties"
              ? (x) => !isDocument(x) || Object.keys(x).length >= n
              : (x) => !isDocument(x) || Object.keys(x).length <= n,
          );
          break;
        }
        case "allOf":
        case "anyOf":
        case "oneOf": {
          if (!Array.isArray(v) || v.length === 0) {
            throw this.#error(
              where,
              `'${k}' needs a non-empty list of schemas`,
            );
          }
          const subs = v.map((e, i) => sub(e, at(`${k}.${i}`)));
          tests.push(
            k === "allOf"
              ? (x) => subs.every((t) => t(x))
              : k === "anyOf"
              ? (x) => subs.some((t) => t(x))
              : (x) => subs.filter((t) => t(x)).length === 1,
          );
          break;
        }
        case "not": {
          const t = sub(v, at(k));
          tests.push((x) => !t(x));
          break;
        }
        default:
          throw this.#error(where, `has unsupported keyword '${k}'`);
      }
    }
    const objectTest = this.#objectTest(s, where);
    if (objectTest !== undefined) tests.push(objectTest);
    return (x) => tests.every((t) => t(x));
  }

  /** `properties`, `patternProperties` and `additionalProperties`. */
  #objectTest(s: Record<string, unknown>, where: string): Test | undefined {
    const at = (k: string) => where === "" ? k : `${where}.${k}`;
    const props = (s.properties ?? {}) as Record<string, unknown>;
    const patterns = (s.patternProperties ?? {}) as Record<string, unknown>;
    const extra = s.additionalProperties;
    if (
      Object.keys(props).length === 0 && Object.keys(patterns).length === 0 &&
      (extra === undefined || extra === true)
    ) return undefined;
    const named = new Map<string, Test>();
    for (const k of Object.keys(props)) {
      named.set(k, this.compile(props[k], at(k)));
    }
    const byPattern = Object.keys(patterns).map((p) => {
      let re: RegExp;
      try {
        re = new RegExp(p, "u");
        re.test(""); // compiled when first run: too large fails here
      } catch {
        throw this.#error(where, `'patternProperties' has an invalid regex`);
      }
      return { re, test: this.compile(patterns[p], at(p)) };
    });
    const rest: Test | undefined = extra === undefined || extra === true
      ? undefined
      : extra === false
      ? () => false
      : this.compile(extra, at("additionalProperties"));
    return (x) => {
      if (!isDocument(x)) return true;
      for (const k of Object.keys(x)) {
        const v = x[k];
        const t = named.get(k);
        let seen = false;
        if (t !== undefined) {
          if (!t(v)) return false;
          seen = true;
        }
        for (const p of byPattern) {
          if (p.re.test(k)) {
            if (!p.test(v)) return false;
            seen = true;
          }
        }
        if (!seen && rest !== undefined && !rest(v)) return false;
      }
      return true;
    };
  }
}

/**
 * Compiles a `$jsonSchema` operand into a test of the whole document.
 *
 * @param schema The schema.
 * @param where Where the operator appears (for error messages).
 * @returns The test.
 * @throws {TypeError} If the schema is malformed or uses an unsupported
 * keyword.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileJsonSchema } from "./json_schema.ts";
 * const t = compileJsonSchema({ required: ["name"], properties: { name: { bsonType: "string" } } }, "");
 * assert(t({ name: "x" }) && !t({ name: 1 }) && !t({}));
 * ```
 */
export function compileJsonSchema(
  schema: unknown,
  where: string,
): (doc: unknown) => boolean {
  const test = new SchemaCompiler(where).compile(schema, "");
  return (d) => isDocument(d) && test(d);
}
