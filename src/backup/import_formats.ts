/**
 * Streaming readers of the formats `tether import` takes, each yielding one
 * record at a time with the line it starts on, so memory stays bounded by
 * the largest record, never by the input:
 *
 * - `ndjson`: one JSON value per line (what `mongoexport` writes, and our
 *   own NDJSON envelope); blank lines are skipped.
 * - `json`: one JSON array of values (`mongoexport --jsonArray`), split
 *   into its elements as it streams.
 * - `csv`: RFC 4180, a header row naming the fields (dotted names make
 *   nested objects: `address.city`), typed columns.
 *
 * MongoDB Extended JSON scalars in JSON input are turned into values:
 * `{"$oid": "..."}` into the hex string, `{"$date": ...}` into a `Date`,
 * `{"$binary": {"base64": "...", "subType": "..."}}` into a `Uint8Array`
 * (the subtype is not kept),
 * `{"$numberInt"|"$numberLong"|"$numberDouble"|"$numberDecimal": "..."}`
 * into a number.
 *
 * @module
 */

import { base64ToBytes } from "../bytes.ts";

/** The input's structure is broken past recovery; nothing is imported. */
export class MalformedInputError extends TypeError {}

/** A format of bare documents. */
export type DocumentFormat = "ndjson" | "json" | "csv";

/** One record of the input, or why it is not one. */
export interface RawRecord {
  /** The line (from 1) the record starts on. */
  readonly line: number;
  /** The record's text (NDJSON only: the whole line). */
  readonly text?: string;
  /** The parsed value, when it parsed. */
  readonly value?: unknown;
  /** What is wrong with it, when it did not parse. */
  readonly error?: string;
}

/**
 * Turns MongoDB Extended JSON scalars into values (a `JSON.parse` reviver).
 *
 * @param _key The property.
 * @param value Its parsed value.
 * @returns The value, converted when it is an Extended JSON scalar.
 */
export function extendedJson(_key: string, value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return value;
  }
  const keys = Object.keys(value);
  if (keys.length !== 1 || !keys[0]!.startsWith("$")) return value;
  const inner = (value as Record<string, unknown>)[keys[0]!];
  switch (keys[0]) {
    case "$oid":
      return typeof inner === "string" ? inner : value;
    case "$binary": {
      const text = typeof inner === "object" && inner !== null
        ? (inner as Record<string, unknown>).base64
        : undefined;
      if (typeof text !== "string") return value;
      try {
        return base64ToBytes(text);
      } catch {
        return value;
      }
    }
    case "$date": {
      const ms = typeof inner === "string"
        ? Date.parse(inner)
        : typeof inner === "number"
        ? inner
        : typeof inner === "object" && inner !== null &&
            typeof (inner as Record<string, unknown>).$numberLong === "string"
        ? Number((inner as Record<string, unknown>).$numberLong)
        : NaN;
      return Number.isFinite(ms) ? new Date(ms) : value;
    }
    case "$numberInt":
    case "$numberLong":
    case "$numberDouble":
    case "$numberDecimal": {
      const n = typeof inner === "string" ? Number(inner) : NaN;
      return Number.isFinite(n) ? n : value;
    }
    default:
      return value;
  }
}

/**
 * The lines of a byte stream, with their numbers (from 1), a trailing `\r`
 * removed.
 *
 * @param source The bytes.
 * @returns The lines.
 */
export async function* numberedLines(
  source: ReadableStream<Uint8Array>,
): AsyncGenerator<{ line: number; text: string }> {
  let rest = "";
  let n = 0;
  for await (const text of source.pipeThrough(new TextDecoderStream())) {
    rest += text;
    let start = 0;
    let at: number;
    while ((at = rest.indexOf("\n", start)) >= 0) {
      const line = rest.slice(start, at);
      yield { line: ++n, text: line.endsWith("\r") ? line.slice(0, -1) : line };
      start = at + 1;
    }
    rest = rest.slice(start);
  }
  if (rest.length > 0) yield { line: ++n, text: rest };
}

/**
 * The records of an input in a format.
 *
 * @param source The bytes.
 * @param format Its format.
 * @returns The records, lazily.
 * @throws {TypeError} When the input's structure is broken past recovery
 *   (a JSON array not closed, a CSV quote not closed), naming the line.
 */
export function records(
  source: ReadableStream<Uint8Array>,
  format: DocumentFormat,
): AsyncGenerator<RawRecord> {
  switch (format) {
    case "ndjson":
      return ndjsonRecords(source);
    case "json":
      return jsonArrayRecords(source);
    case "csv":
      return csvRecords(source);
  }
}

function parseJson(text: string): { value?: unknown; error?: string } {
  try {
    return { value: JSON.parse(text, extendedJson) };
  } catch (e) {
    return { error: `it is not JSON (${(e as Error).message})` };
  }
}

async function* ndjsonRecords(
  source: ReadableStream<Uint8Array>,
): AsyncGenerator<RawRecord> {
  for await (const { line, text } of numberedLines(source)) {
    if (text.trim().length === 0) continue;
    yield { line, text, ...parseJson(text) };
  }
}

/**
 * The elements of a JSON array, split by tracking strings and nesting, each
 * parsed on its own.
 */
async function* jsonArrayRecords(
  source: ReadableStream<Uint8Array>,
): AsyncGenerator<RawRecord> {
  let line = 1;
  /** Before `[`, in the array between elements, after `]`. */
  let state: "start" | "between" | "element" | "end" = "start";
  let depth = 0;
  let inString = false;
  let escaped = false;
  let element = "";
  let elementLine = 1;
  let expectElement = true;
  const broken = (what: string) =>
    new MalformedInputError(`line ${line}: the JSON array ${what}`);
  for await (const chunk of source.pipeThrough(new TextDecoderStream())) {
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (state === "element") {
        if (c === "\n") line++;
        if (inString) {
          if (escaped) escaped = false;
          else if (c === "\\") escaped = true;
          else if (c === '"') inString = false;
          continue;
        }
        if (c === '"') inString = true;
        else if (c === "{" || c === "[") depth++;
        else if (c === "}" || c === "]") {
          if (depth === 0) {
            // The array's own ']' ends a scalar element.
            element += chunk.slice(from, i);
            yield { line: elementLine, ...parseJson(element) };
            element = "";
            state = "end";
            continue;
          }
          depth--;
        } else if (c === "," && depth === 0) {
          element += chunk.slice(from, i);
          yield { line: elementLine, ...parseJson(element) };
          element = "";
          state = "between";
          expectElement = true;
        }
        continue;
      }
      if (c === "\n") {
        line++;
        continue;
      }
      if (c === " " || c === "\t" || c === "\r" || c === "\ufeff") continue;
      if (state === "start") {
        if (c !== "[") {
          throw broken(
            "is missing: the input must be one JSON array (or use --format ndjson)",
          );
        }
        state = "between";
        expectElement = true;
        continue;
      }
      if (state === "end") throw broken("is followed by more text");
      // Between elements.
      if (c === "]") {
        state = "end";
        continue;
      }
      if (c === ",") {
        if (expectElement) throw broken("has an empty element");
        expectElement = true;
        continue;
      }
      if (!expectElement) throw broken("is missing a comma");
      state = "element";
      expectElement = false;
      elementLine = line;
      depth = 0;
      inString = false;
      escaped = false;
      from = i;
      i--; // read this character as part of the element
    }
    if (state === "element") element += chunk.slice(from);
  }
  const last = state as string;
  if (last === "element" || last === "between") {
    throw broken("is not closed (the input ends inside it)");
  }
  if (last === "start") throw broken("is missing: the input is empty");
}

const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * The typed value of an unquoted CSV field: a number, `true`, `false`,
 * `null`, or the text; an empty field is `undefined` (the field is left
 * out). A quoted field is always a string.
 *
 * @param text The field.
 * @param quoted Whether it was quoted.
 * @returns Its value.
 */
export function csvValue(text: string, quoted: boolean): unknown {
  if (quoted) return text;
  if (text === "") return undefined;
  if (text === "true") return true;
  if (text === "false") return false;
  if (text === "null") return null;
  if (NUMBER.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return text;
}

/** What ends an unquoted stretch of a CSV field. */
const SPECIAL = /[",\r\n]/g;

interface CsvRow {
  readonly line: number;
  readonly fields: readonly { text: string; quoted: boolean }[];
}

/** RFC 4180 rows: quoted fields may hold commas, quotes ("") and newlines. */
async function* csvRows(
  source: ReadableStream<Uint8Array>,
): AsyncGenerator<CsvRow> {
  let line = 1;
  let rowLine = 1;
  let fields: { text: string; quoted: boolean }[] = [];
  let field = "";
  let quoted = false;
  /** In a quoted field; just after its closing quote. */
  let inQuotes = false;
  let afterQuote = false;
  let fieldStarted = false;
  let pendingCr = false;
  const endField = () => {
    fields.push({ text: field, quoted });
    field = "";
    quoted = false;
    afterQuote = false;
    fieldStarted = false;
  };
  for await (const chunk of source.pipeThrough(new TextDecoderStream())) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (inQuotes) {
        if (c === '"') {
          inQuotes = false;
          afterQuote = true;
          continue;
        }
        // Up to the next quote (or the chunk's end) at once.
        const end = chunk.indexOf('"', i);
        const text = chunk.slice(i, end < 0 ? chunk.length : end);
        for (
          let at = text.indexOf("\n");
          at >= 0;
          at = text.indexOf("\n", at + 1)
        ) {
          line++;
        }
        field += text;
        i += text.length - 1;
        continue;
      }
      if (pendingCr && c !== "\n") {
        pendingCr = false;
        field += "\r";
      }
      if (c === '"') {
        if (afterQuote) { // "" inside a quoted field: one quote
          field += '"';
          inQuotes = true;
          afterQuote = false;
          continue;
        }
        if (!fieldStarted) {
          quoted = true;
          inQuotes = true;
          fieldStarted = true;
          continue;
        }
        field += c; // a quote inside an unquoted field: kept as is
        continue;
      }
      if (c === ",") {
        endField();
        continue;
      }
      if (c === "\r") {
        pendingCr = true;
        continue;
      }
      if (c === "\n") {
        pendingCr = false;
        const blank = fields.length === 0 && !fieldStarted && field === "";
        if (!blank) {
          endField();
          yield { line: rowLine, fields };
        }
        fields = [];
        line++;
        rowLine = line;
        continue;
      }
      if (afterQuote) {
        throw new MalformedInputError(
          `line ${line}: a quoted CSV field is followed by text before the next comma`,
        );
      }
      fieldStarted = true;
      // Up to the next special character (or the chunk's end) at once.
      SPECIAL.lastIndex = i;
      const end = SPECIAL.exec(chunk)?.index ?? chunk.length;
      field += chunk.slice(i, end);
      i = end - 1;
    }
  }
  if (inQuotes) {
    throw new MalformedInputError(
      `line ${rowLine}: a quoted CSV field is not closed (the input ends inside it)`,
    );
  }
  if (fields.length > 0 || fieldStarted || field !== "") {
    endField();
    yield { line: rowLine, fields };
  }
}

/**
 * Sets `value` at a dotted path of `doc`, making the objects on the way.
 *
 * @returns False when the path runs into a value that is not an object.
 */
function setPath(
  doc: Record<string, unknown>,
  path: readonly string[],
  value: unknown,
): boolean {
  let at = doc;
  for (const part of path.slice(0, -1)) {
    const next = at[part];
    if (next === undefined) at = at[part] = {};
    else if (
      typeof next === "object" && next !== null && !Array.isArray(next)
    ) {
      at = next as Record<string, unknown>;
    } else return false;
  }
  at[path[path.length - 1]!] = value;
  return true;
}

async function* csvRecords(
  source: ReadableStream<Uint8Array>,
): AsyncGenerator<RawRecord> {
  let header: string[][] | undefined;
  for await (const row of csvRows(source)) {
    if (header === undefined) {
      const names = row.fields.map((f) => f.text.trim());
      const bad = names.find((n) =>
        n === "" || n.split(".").some((p) => p === "")
      );
      if (bad !== undefined) {
        throw new MalformedInputError(
          `line ${row.line}: the CSV header has an empty field name`,
        );
      }
      if (new Set(names).size !== names.length) {
        throw new MalformedInputError(
          `line ${row.line}: the CSV header names a field twice`,
        );
      }
      header = names.map((n) => n.split("."));
      continue;
    }
    if (row.fields.length !== header.length) {
      yield {
        line: row.line,
        error:
          `it has ${row.fields.length} fields, the header ${header.length}`,
      };
      continue;
    }
    const doc: Record<string, unknown> = {};
    let error: string | undefined;
    row.fields.forEach((f, i) => {
      const value = csvValue(f.text, f.quoted);
      if (value === undefined) return;
      if (!setPath(doc, header![i]!, value)) {
        error = `field '${
          header![i]!.join(".")
        }' is inside a field that is not an object`;
      }
    });
    yield error === undefined
      ? { line: row.line, value: doc }
      : { line: row.line, error };
  }
}
