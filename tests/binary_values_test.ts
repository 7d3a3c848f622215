/**
 * Binary values outside the conformance suite: mongoexport-style JSON and
 * CSV exports, and their imports.
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { exportDocuments } from "../src/backup/export_documents.ts";
import { importDocuments } from "../src/backup/import_documents.ts";
import { extendedJson } from "../src/backup/import_formats.ts";

async function exported(
  format: "ndjson" | "json" | "csv",
  db: Awaited<ReturnType<typeof open>>,
): Promise<string> {
  let text = "";
  await exportDocuments(
    db,
    new WritableStream<Uint8Array>({
      write: (c) => void (text += new TextDecoder().decode(c)),
    }),
    { collection: "c", format },
  );
  return text;
}

Deno.test("binary values: JSON exports write Extended JSON $binary and imports read it back", async () => {
  await using db = await open();
  const doc = { _id: "a", raw: new Uint8Array([0, 1, 254, 255]), n: 1 };
  await db.collection("c").put("a", doc);
  for (const format of ["ndjson", "json"] as const) {
    const text = await exported(format, db);
    assert.match(
      text,
      /"raw":\{"\$binary":\{"base64":"AAH\+\/w==","subType":"00"\}\}/,
    );
    await using copy = await open();
    await importDocuments(copy, new Blob([text]).stream(), {
      collection: "c",
      format,
    });
    assert.deepEqual(await copy.collection("c").get("a"), doc);
  }
  // CSV: base64 text.
  assert.match(await exported("csv", db), /"AAH\+\/w=="/);
  // A malformed $binary stays as it is.
  const odd = { $binary: { base64: 5 } };
  assert.deepEqual(extendedJson("x", odd), odd);
});

Deno.test("binary values: equality compares bytes; sorting puts them where MongoDB puts BinData", async () => {
  await using db = await open();
  const c = db.collection<{ _id?: string; raw: unknown }>("q");
  await c.insertMany([
    { _id: "a", raw: new Uint8Array([1, 2]) },
    { _id: "b", raw: new Uint8Array([1, 3]) },
    { _id: "c", raw: new Uint8Array([9]) },
    { _id: "d", raw: "x" },
    { _id: "e", raw: true },
    { _id: "f", raw: [7] },
    { _id: "g", raw: { k: 1 } },
    { _id: "h", raw: new Date(0) },
  ]);
  const ids = async (filter: Record<string, unknown>, sort?: 1 | -1) =>
    (await c.find(filter, sort === undefined ? {} : { sort: { raw: sort } })
      .toArray()).map((d) => d._id);
  assert.deepEqual(await ids({ raw: new Uint8Array([1, 3]) }), ["b"]);
  assert.deepEqual(await ids({ raw: { $in: [new Uint8Array([9]), "x"] } }), [
    "c",
    "d",
  ]);
  assert.deepEqual(
    (await ids({ raw: { $ne: new Uint8Array([1, 2]) } })).length,
    7,
  );
  // BinData compares by length first, then bytes: [9] < [1, 2] < [1, 3].
  assert.deepEqual(await ids({ raw: { $gt: new Uint8Array([9]) } }), [
    "a",
    "b",
  ]);
  // MongoDB's order: (arrays by their least element: 7 is a number)
  // numbers < strings < objects < BinData < booleans < dates.
  assert.deepEqual(await ids({}, 1), ["f", "d", "g", "c", "a", "b", "e", "h"]);
});
