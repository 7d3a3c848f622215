/**
 * The text layer of unosql's files: UTF-8 and JSON checked byte by byte (so
 * a failure names its offset), the byte offset of every record, integers
 * beyond 2^53 kept exact, and each record turned into a `@tether/db`
 * document with its key, version and timestamp.
 *
 * @module
 */

import { Damage } from "./unosql_format.ts";

/** A parsed file: one array (a collection file) or arrays by name (a backup). */
export type Parsed =
  | { readonly kind: "array"; readonly records: Located[] }
  | { readonly kind: "object"; readonly collections: Map<string, Located[]> };

/** A record with the byte offset of its first character in the text. */
export interface Located {
  readonly value: unknown;
  readonly textOffset: number;
}

const MAX_DEPTH = 512;

/** An integer beyond 2^53 as it was written, until converted. */
class BigText {
  constructor(readonly text: string) {}
}

/** Offset of the first invalid UTF-8 sequence, or -1. */
function invalidUtf8At(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number, min: number;
    if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** Checks the structure of JSON bytes and finds where its records start. */
class Scanner {
  #b: Uint8Array;
  #at = 0;
  /** Record starts of a top-level array. */
  readonly top: number[] = [];
  /** Record starts of each array in a top-level object, by member name. */
  readonly members = new Map<string, number[] | undefined>();
  #decoder = new TextDecoder();

  constructor(bytes: Uint8Array) {
    this.#b = bytes;
  }

  #fail(expected: string): never {
    const c = this.#b[this.#at];
    const found = c === undefined
      ? "the end of the text"
      : c >= 0x20 && c < 0x7f
      ? `'${String.fromCharCode(c)}'`
      : `byte 0x${c.toString(16).padStart(2, "0")}`;
    throw new Damage(
      "json",
      `is not valid JSON at byte ${this.#at} of its text: expected ${expected}, found ${found}`,
      { textOffset: this.#at },
    );
  }

  #ws(): void {
    const b = this.#b;
    while (true) {
      const c = b[this.#at];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.#at++;
      else return;
    }
  }

  scan(): "array" | "object" | "other" {
    this.#ws();
    const first = this.#b[this.#at];
    const kind = first === 0x5b ? "array" : first === 0x7b ? "object" : "other";
    this.#value(0);
    this.#ws();
    if (this.#at !== this.#b.length) this.#fail("the end of the text");
    return kind;
  }

  #value(depth: number, member?: string): void {
    if (depth > MAX_DEPTH) {
      throw new Damage(
        "json",
        `nests deeper than ${MAX_DEPTH} levels at byte ${this.#at} of its text`,
        { textOffset: this.#at },
      );
    }
    const c = this.#b[this.#at];
    if (c === 0x7b) this.#object(depth);
    else if (c === 0x5b) {
      let starts: number[] | undefined;
      if (depth === 0) starts = this.top;
      else if (depth === 1 && member !== undefined) {
        starts = [];
        this.members.set(member, starts);
      }
      this.#array(depth, starts);
    } else if (c === 0x22) this.#string();
    else if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) {
      this.#number();
    } else if (c === 0x74) this.#literal("true");
    else if (c === 0x66) this.#literal("false");
    else if (c === 0x6e) this.#literal("null");
    else this.#fail("a value");
  }

  #literal(word: string): void {
    for (let i = 0; i < word.length; i++) {
      if (this.#b[this.#at] !== word.charCodeAt(i)) this.#fail(`'${word}'`);
      this.#at++;
    }
  }

  #digits(): void {
    const start = this.#at;
    while (true) {
      const c = this.#b[this.#at];
      if (c !== undefined && c >= 0x30 && c <= 0x39) this.#at++;
      else break;
    }
    if (this.#at === start) this.#fail("a digit");
  }

  #number(): void {
    if (this.#b[this.#at] === 0x2d) this.#at++;
    if (this.#b[this.#at] === 0x30) this.#at++;
    else this.#digits();
    if (this.#b[this.#at] === 0x2e) {
      this.#at++;
      this.#digits();
    }
    const e = this.#b[this.#at];
    if (e === 0x65 || e === 0x45) {
      this.#at++;
      const s = this.#b[this.#at];
      if (s === 0x2b || s === 0x2d) this.#at++;
      this.#digits();
    }
  }

  #string(): void {
    const b = this.#b;
    this.#at++;
    while (true) {
      const c = b[this.#at];
      if (c === undefined) this.#fail("'\"' closing the string");
      if (c === 0x22) {
        this.#at++;
        return;
      }
      if (c < 0x20) this.#fail("a character (control bytes must be escaped)");
      if (c === 0x5c) {
        this.#at++;
        const e = b[this.#at];
        if (e === 0x75) {
          for (let k = 0; k < 4; k++) {
            this.#at++;
            const h = b[this.#at];
            if (
              h === undefined ||
              !((h >= 0x30 && h <= 0x39) || (h >= 0x41 && h <= 0x46) ||
                (h >= 0x61 && h <= 0x66))
            ) this.#fail("a hex digit of a \\u escape");
          }
        } else if (
          e === undefined || !'"\\/bfnrt'.includes(String.fromCharCode(e))
        ) this.#fail("an escape character");
      }
      this.#at++;
    }
  }

  #array(depth: number, starts: number[] | undefined): void {
    this.#at++;
    this.#ws();
    if (this.#b[this.#at] === 0x5d) {
      this.#at++;
      return;
    }
    while (true) {
      this.#ws();
      starts?.push(this.#at);
      this.#value(depth + 1);
      this.#ws();
      const c = this.#b[this.#at];
      if (c === 0x2c) this.#at++;
      else if (c === 0x5d) {
        this.#at++;
        return;
      } else this.#fail("',' or ']'");
    }
  }

  #object(depth: number): void {
    this.#at++;
    this.#ws();
    if (this.#b[this.#at] === 0x7d) {
      this.#at++;
      return;
    }
    while (true) {
      this.#ws();
      if (this.#b[this.#at] !== 0x22) this.#fail("'\"' starting a name");
      const start = this.#at;
      this.#string();
      const name = depth === 0
        ? JSON.parse(this.#decoder.decode(this.#b.subarray(start, this.#at)))
        : undefined;
      if (name !== undefined && this.members.has(name)) {
        throw new Damage(
          "shape",
          `names collection '${name}' twice (again at byte ${start} of its text)`,
          { textOffset: start },
        );
      }
      if (name !== undefined) this.members.set(name, undefined);
      this.#ws();
      if (this.#b[this.#at] !== 0x3a) this.#fail("':'");
      this.#at++;
      this.#ws();
      this.#value(depth + 1, name);
      this.#ws();
      const c = this.#b[this.#at];
      if (c === 0x2c) this.#at++;
      else if (c === 0x7d) {
        this.#at++;
        return;
      } else this.#fail("',' or '}'");
    }
  }
}

/**
 * Checks and parses the JSON of a collection file (an array) or a backup
 * (an object of arrays). Integers beyond 2^53 are kept as written, to be
 * converted by {@linkcode toDocument}.
 *
 * @param bytes The UTF-8 text.
 * @returns The records with their offsets.
 * @throws {Damage} `utf8`, `json` or `shape`.
 */
export function parseText(bytes: Uint8Array): Parsed {
  const bad = invalidUtf8At(bytes);
  if (bad >= 0) {
    throw new Damage(
      "utf8",
      `is not valid UTF-8 at byte ${bad} of its text`,
      { textOffset: bad },
    );
  }
  const scanner = new Scanner(bytes);
  const kind = scanner.scan();
  const text = new TextDecoder().decode(bytes);
  const value: unknown = JSON.parse(
    text,
    function (_key, v: unknown, context?: { source?: string }) {
      if (
        typeof v === "number" && !Number.isSafeInteger(v) &&
        context?.source !== undefined && /^-?\d+$/.test(context.source)
      ) return new BigText(context.source);
      return v;
    } as (this: unknown, key: string, value: unknown) => unknown,
  );
  if (kind === "array") {
    const records = (value as unknown[]).map((v, i) => ({
      value: v,
      textOffset: scanner.top[i]!,
    }));
    return { kind, records };
  }
  if (kind === "object") {
    const collections = new Map<string, Located[]>();
    for (const [name, starts] of scanner.members) {
      const list = (value as Record<string, unknown>)[name];
      if (starts === undefined || !Array.isArray(list)) {
        throw new Damage(
          "shape",
          `maps collection '${name}' to ${
            describe(list)
          }, not an array of records`,
        );
      }
      collections.set(
        name,
        list.map((v, i) => ({ value: v, textOffset: starts[i]! })),
      );
    }
    return { kind, collections };
  }
  throw new Damage(
    "shape",
    `holds ${
      describe(value)
    }, not an array of records or an object of collections`,
    { textOffset: 0 },
  );
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof BigText) return "a number";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/** How integers beyond 2^53 are stored. */
export type BigIntegers = "string" | "number";

/** A record as a `@tether/db` document with its metadata. */
export interface Converted {
  /** The key: the record's `id` as a string. */
  readonly key: string;
  /** The document: the record's other fields, `_id` set to the key. */
  readonly doc: Record<string, unknown>;
  /** The record's `version`. */
  readonly version: number;
  /** The record's `timestamp` in epoch milliseconds. */
  readonly at: number;
  /** JSON paths (in the record) of integers beyond 2^53. */
  readonly bigIntegers: string[];
}

/**
 * Checks one record and converts it.
 *
 * @param located The record and its offset.
 * @param index Its position in the array.
 * @param bigIntegers How to store integers beyond 2^53.
 * @param epochMs Added to `timestamp * 1000` (the device's epoch).
 * @returns The document and metadata.
 * @throws {Damage} `record` when `id`, `version` or `timestamp` is missing
 *   or has the wrong type, or the record is not an object.
 */
export function toDocument(
  located: Located,
  index: number,
  bigIntegers: BigIntegers,
  epochMs: number,
): Converted {
  const { value, textOffset } = located;
  const fail = (what: string): never => {
    throw new Damage("record", `record ${index} ${what}`, {
      textOffset,
      record: index,
    });
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`is ${describe(value)}, not an object`);
  }
  const { id, timestamp, version, ...fields } = value as Record<
    string,
    unknown
  >;
  let key: string;
  if (typeof id === "number" && Number.isInteger(id)) key = String(id);
  else if (id instanceof BigText) key = id.text;
  else if (typeof id === "string" && id.length > 0) key = id;
  else {
    key = fail(
      id === undefined
        ? "has no id"
        : `has the id ${
          JSON.stringify(plain(id))
        }, not an integer or a non-empty string`,
    );
  }
  if (
    !(typeof version === "number" && Number.isSafeInteger(version) &&
      version >= 1)
  ) {
    fail(
      version === undefined
        ? "has no version"
        : `has the version ${
          JSON.stringify(plain(version))
        }, not an integer from 1`,
    );
  }
  if (!(typeof timestamp === "number" && Number.isFinite(timestamp))) {
    fail(
      timestamp === undefined
        ? "has no timestamp"
        : `has the timestamp ${JSON.stringify(plain(timestamp))}, not a number`,
    );
  }
  if ("_id" in fields && fields._id !== key) {
    fail(
      `has an _id field (${
        JSON.stringify(plain(fields._id))
      }) that differs from its id '${key}' (@tether/db keeps the key in _id)`,
    );
  }
  const paths: string[] = [];
  const doc = convert({ _id: key, ...fields }, "", paths, bigIntegers);
  return {
    key,
    doc: doc as Record<string, unknown>,
    version: version as number,
    at: Math.round((timestamp as number) * 1000) + epochMs,
    bigIntegers: paths,
  };
}

function plain(v: unknown): unknown {
  return v instanceof BigText ? v.text : v;
}

function convert(
  v: unknown,
  path: string,
  paths: string[],
  mode: BigIntegers,
): unknown {
  if (v instanceof BigText) {
    paths.push(path);
    return mode === "string" ? v.text : Number(v.text);
  }
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) {
    return v.map((item, i) => convert(item, `${path}[${i}]`, paths, mode));
  }
  const out: Record<string, unknown> = {};
  for (const [k, item] of Object.entries(v)) {
    // defineProperty: a "__proto__" field stays a field.
    Object.defineProperty(out, k, {
      value: convert(item, path === "" ? k : `${path}.${k}`, paths, mode),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
