/**
 * Exporting one collection's documents like `mongoexport`: JSON lines of
 * bare documents, one JSON array, or CSV with a header row.
 *
 * Each document carries its key under the id field (default `_id`) when it
 * does not already; a value that is not an object is written as
 * `{ "_id": key, "value": value }`. Dates are written as
 * `{"$date": "<ISO>"}` in JSON (MongoDB Extended JSON, which the import
 * turns back into dates) and as ISO text in CSV; byte arrays as
 * `{"$binary": {"base64": "...", "subType": "00"}}` in JSON (turned back
 * into byte arrays) and as base64 text in CSV (read back as a string). Tags, TTLs, times,
 * versions and index definitions are not in these formats: our NDJSON
 * envelope (`db.export`) keeps them.
 *
 * CSV: a header row of every field path of the collection (nested objects
 * flattened as `address.city`), found by a first pass over the collection;
 * strings are always quoted, numbers, booleans and `null` never, a missing
 * field is an empty cell, so that the import's typed columns read the same
 * values back. Arrays (and objects inside them) are written as JSON text, in
 * quotes: they come back as strings.
 *
 * @module
 */

import type { Database } from "../database.ts";
import { bytesToBase64, encodeUtf8 } from "../bytes.ts";
import type { DocumentFormat } from "./import_formats.ts";

/** Options of {@linkcode exportDocuments}. */
export interface DocumentExportOptions {
  /** The format (default `"ndjson"`). */
  readonly format?: DocumentFormat;
  /** The collection to export (required). */
  readonly collection: string;
  /** The field that carries each document's key (default `"_id"`). */
  readonly idField?: string;
  /** Called after each document written. */
  readonly onDocument?: () => void;
}

const FLUSH = 64 * 1024;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date) &&
    !(value instanceof Uint8Array);
}

function documentOf(
  key: string,
  value: unknown,
  idField: string,
): Record<string, unknown> {
  if (!isPlainObject(value)) return { [idField]: key, value };
  return idField in value ? value : { [idField]: key, ...value };
}

/**
 * A JSON replacer writing dates as Extended JSON `{"$date": ...}` and byte
 * arrays as `{"$binary": {"base64": ..., "subType": "00"}}`.
 */
function withDates(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) {
    return { $binary: { base64: bytesToBase64(raw), subType: "00" } };
  }
  return raw instanceof Date ? { $date: raw.toISOString() } : value;
}

/**
 * A CSV field: strings quoted (quotes doubled), numbers, booleans and null
 * bare, `undefined` empty.
 *
 * @param value The field's value.
 * @returns Its text.
 */
export function csvField(value: unknown): string {
  if (value === undefined) return "";
  if (value === null) return "null";
  if (typeof value === "number") {
    return Number.isFinite(value) ? String(value) : "null";
  }
  if (typeof value === "boolean") return String(value);
  const text = typeof value === "string"
    ? value
    : value instanceof Date
    ? value.toISOString()
    : value instanceof Uint8Array
    ? bytesToBase64(value)
    : JSON.stringify(value);
  return `"${text.replaceAll('"', '""')}"`;
}

function paths(
  doc: Record<string, unknown>,
  prefix: string,
  into: Set<string>,
): void {
  for (const [k, v] of Object.entries(doc)) {
    const path = prefix === "" ? k : `${prefix}.${k}`;
    if (isPlainObject(v) && Object.keys(v).length > 0) paths(v, path, into);
    else into.add(path);
  }
}

function at(doc: Record<string, unknown>, path: string): unknown {
  let value: unknown = doc;
  for (const part of path.split(".")) {
    if (!isPlainObject(value)) return undefined;
    value = value[part];
  }
  return value;
}

/**
 * Writes a collection's live documents in a format to a stream (closed at
 * the end; aborted on failure).
 *
 * @param db The database.
 * @param target The stream.
 * @param options Format, collection, id field.
 * @returns How many documents were written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { exportDocuments } from "./export_documents.ts";
 * await using db = await open();
 * await db.collection("c").put("a", { n: 1, s: "x,y" });
 * let text = "";
 * const target = new WritableStream<Uint8Array>({
 *   write: (chunk) => void (text += new TextDecoder().decode(chunk)),
 * });
 * await exportDocuments(db, target, { collection: "c", format: "csv" });
 * assert.equal(text, '_id,n,s\n"a",1,"x,y"\n');
 * ```
 */
export async function exportDocuments(
  db: Database,
  target: WritableStream<Uint8Array>,
  options: DocumentExportOptions,
): Promise<{ documents: number }> {
  const format = options.format ?? "ndjson";
  if (format !== "ndjson" && format !== "json" && format !== "csv") {
    throw new TypeError("Cannot export: format must be ndjson, json or csv");
  }
  const idField = options.idField ?? "_id";
  const collection = db.collection(options.collection);
  const writer = target.getWriter();
  let documents = 0;
  let chunk = "";
  const write = async (text: string) => {
    chunk += text;
    if (chunk.length >= FLUSH) {
      await writer.write(encodeUtf8(chunk));
      chunk = "";
    }
  };
  try {
    let header: string[] | undefined;
    if (format === "csv") {
      const found = new Set<string>([idField]);
      for await (const { key, value } of collection.find({}).entries()) {
        paths(documentOf(key, value, idField), "", found);
      }
      header = [...found];
      await write(
        header.map((h) => /[",\r\n]/.test(h) ? csvField(h) : h).join(",") +
          "\n",
      );
    } else if (format === "json") {
      await write("[");
    }
    for await (const { key, value } of collection.find({}).entries()) {
      const doc = documentOf(key, value, idField);
      if (header !== undefined) {
        await write(header.map((p) => csvField(at(doc, p))).join(",") + "\n");
      } else if (format === "json") {
        await write(
          `${documents === 0 ? "\n" : ",\n"}${JSON.stringify(doc, withDates)}`,
        );
      } else {
        await write(`${JSON.stringify(doc, withDates)}\n`);
      }
      documents++;
      options.onDocument?.();
    }
    if (format === "json") await write(documents === 0 ? "]\n" : "\n]\n");
    if (chunk.length > 0) await writer.write(encodeUtf8(chunk));
    await writer.close();
  } catch (e) {
    await writer.abort(e).catch(() => {});
    throw e;
  }
  return { documents };
}
