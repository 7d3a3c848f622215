/**
 * `export`: every document as our NDJSON envelope (lossless: keys,
 * metadata, TTLs, index definitions), or one collection's bare documents as
 * JSON lines, a JSON array or CSV (like `mongoexport`).
 *
 * @module
 */

import { exportDocuments } from "../backup/export_documents.ts";
import { choice, option } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { ExitCode, usage } from "./exit.ts";
import { report, toOutput } from "./files.ts";
import { collectionOf, collectionsOption, READ, withDatabase } from "./open.ts";
import { plural } from "./output.ts";

/** The formats `export` writes. */
export const EXPORT_FORMATS = ["tether", "ndjson", "json", "csv"] as const;

/** `export`. */
export const exportCommand: Command = {
  synopsis:
    "export <file|-> [--format tether|ndjson|json|csv] [--collection NAME] [--json]",
  summary: "write documents as NDJSON, a JSON array or CSV (- for stdout)",
  help: `Writes documents to <file> (written beside and renamed into place once
complete) or to stdout (-).

Formats (default: from the file's extension, .csv csv, .json json, else
tether):
  tether   our NDJSON envelope: every collection (or --collections), each
           line a document with its collection, key, value, times, version,
           tags and expiry, index definitions first; 'import' restores all
  ndjson   one collection's bare documents, one JSON object per line, as
           mongoexport writes them ({"$date": ...} for dates)
  json     the same as one JSON array
  csv      a header row of the field paths (nested fields as a.b), strings
           quoted, numbers, booleans and null bare, arrays as JSON text

Options:
  --format F          see above
  --collection NAME   ndjson, json, csv: the collection (needed when there
                      is more than one)
  --collections a,b   tether: only these collections
  --id-field F        ndjson, json, csv: the field carrying each key
                      (default _id)
  --json              the summary as one line of JSON (on stderr when the
                      data goes to stdout)`,
  options: {
    format: "value",
    collection: "value",
    collections: "value",
    "id-field": "value",
    json: "flag",
  },
  arity: [1, 1],
  run,
};

/**
 * The format a file's name suggests.
 *
 * @param file The path, or `-`.
 * @param fallback For other names.
 * @returns The format.
 */
export function formatOfName<F extends string>(
  file: string,
  fallback: F,
): F | "json" | "csv" {
  const lower = file.toLowerCase();
  if (lower.endsWith(".csv")) return "csv";
  if (lower.endsWith(".json")) return "json";
  return fallback;
}

async function run(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  const format = choice(ctx.parsed, "format", EXPORT_FORMATS) ??
    formatOfName(file, "tether");
  const idField = option(ctx.parsed, "id-field");
  const name = option(ctx.parsed, "collection");
  if (format === "tether" && (name !== undefined || idField !== undefined)) {
    throw usage(
      "--collection and --id-field are for --format ndjson, json or csv (tether takes --collections)",
    );
  }
  if (format !== "tether" && option(ctx.parsed, "collections") !== undefined) {
    throw usage(
      `--format ${format} writes one collection: give --collection NAME`,
    );
  }
  return await withDatabase(ctx, READ, async (db) => {
    let documents: number;
    let total = 0;
    let done = 0;
    const progress = {
      progress: () => ({ done, total }),
      unit: "items" as const,
    };
    let exported: string;
    if (format === "tether") {
      const collections = collectionsOption(db, ctx.parsed);
      for (const c of collections ?? await db.collections()) {
        const collection = db.collection(c);
        // A line per index definition, then one per document.
        total += await collection.count() +
          (await collection.indexes()).length;
      }
      const result = await toOutput(ctx, file, "exporting", (stream) => {
        // Count the lines as they pass.
        const counter = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            for (const b of chunk) if (b === 10) done++;
            controller.enqueue(chunk);
          },
        });
        const piping = counter.readable.pipeTo(stream);
        return db.export(
          counter.writable,
          collections === undefined ? {} : { collections },
        ).then(async (r) => {
          await piping;
          return r;
        }, async (e) => {
          await piping.catch(() => {});
          throw e;
        });
      }, progress);
      documents = result.documents;
      exported = "";
    } else {
      let collection = name;
      if (collection === undefined) {
        const all = await db.collections();
        if (all.length !== 1) {
          throw usage(
            `--format ${format} writes one collection: give --collection NAME (there are ${all.length})`,
          );
        }
        collection = all[0]!;
      }
      const c = collectionOf(db, collection);
      total = await c.count();
      const result = await toOutput(
        ctx,
        file,
        "exporting",
        (stream) =>
          exportDocuments(db, stream, {
            format,
            collection: c.name,
            ...(idField === undefined ? {} : { idField }),
            onDocument: () => done++,
          }),
        progress,
      );
      documents = result.documents;
      exported = `'${c.name}'`;
    }
    if (wantsJson(ctx)) {
      await report(ctx, file).json({
        documents,
        format,
        ...(file === "-" ? {} : { file }),
      });
    } else {
      await report(ctx, file).write(
        `exported ${plural(documents, "document")}${
          format === "tether" ? "" : ` of ${exported} as ${format}`
        }${file === "-" ? "" : ` to ${file}`}\n`,
      );
    }
    return ExitCode.Ok;
  });
}
