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
