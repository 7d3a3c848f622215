/**
 * `import`: documents from JSON lines (bare, or our envelope), a JSON array
 * or CSV, like `mongoimport`; checked in a first pass so that a bad record
 * imports nothing.
 *
 * @module
 */

import {
  BadRecordError,
  type DocumentImportResult,
  importDocuments,
  type ImportMode,
} from "../backup/import_documents.ts";
import { MalformedInputError } from "../backup/import_formats.ts";
import { choice, flag, option } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { CliError, ExitCode, usage } from "./exit.ts";
import { inputSize } from "./files.ts";
import { CREATE, target, withDatabase } from "./open.ts";
import { plural } from "./output.ts";
import { Progress } from "./progress.ts";
import { importFromUnosql, UNOSQL_OPTIONS } from "./unosql.ts";

/** The formats `import` reads (`tether`: our envelope, as ndjson). */
export const IMPORT_FORMATS = ["ndjson", "json", "csv", "tether"] as const;

/** The modes of `import`. */
export const IMPORT_MODES: readonly ImportMode[] = [
  "insert",
  "upsert",
  "merge",
  "replace",
];

/** `import`. */
export const importCommand: Command = {
  synopsis:
    "import <file|-> [--format ndjson|json|csv] [--collection NAME] [--mode insert|upsert|merge|replace] [--skip-bad] [--json] | import --from unosql <dir|file> [--key K | --key-env NAME]",
  summary: "store documents from NDJSON, a JSON array or CSV (- for stdin)",
  help: `Stores the documents of <file> or stdin (-). Every record is checked
first, in a streaming pass: a bad one imports nothing and is named with its
line (exit 65), unless --skip-bad. The second pass writes in batches; stdin
is first copied to a temporary file ($TMPDIR) to be read twice. Creates the
database if missing (encrypted only with --encrypt).

Formats (default: from the file's extension, .csv csv, .json json, else
ndjson):
  ndjson   one JSON object per line: bare documents (mongoexport's output;
           Extended JSON {"$oid"}, {"$date"}, {"$numberLong"} understood), or
           our NDJSON envelope (what 'export' writes: recognised by its first
           line; keeps keys, times, versions, tags, TTLs and indexes)
  json     one JSON array of documents, streamed element by element
  csv      RFC 4180 with a header row; a.b names make nested fields;
           unquoted cells are typed (numbers, true, false, null; an empty
           cell leaves the field out), quoted cells are strings

Options:
  --format F          see above (tether: the same as ndjson)
  --collection NAME   where bare documents go (default: the file's name
                      without extension); with the envelope: only its lines
                      of that collection
  --id-field F        the field holding each document's key (default _id;
                      a number is used as text); none: a new key
  --mode M            insert: a key already stored or repeated is a bad
                      record; upsert (default): replace or add; merge: merge
                      the fields into the stored document (shallow) or add;
                      replace: only documents already stored, others skipped
  --drop              empty the collection(s) first
  --skip-bad          skip bad records (counted, lines listed on stderr)
  --encrypt           create the database encrypted
  --json              the summary as one line of JSON

From unosql (import --from unosql <dir|file>): a unosql database directory,
or one of its backup or collection files, plain, compressed or encrypted, in
its current or legacy format, into collections of the same names (ids,
versions, timestamps kept; every checksum and MAC verified; any damage
imports nothing and is named, exit 65). See docs/from_unosql.md.
  --key K             the key the unosql database was opened with (text)
  --key-env NAME      the same, from an environment variable
  --iterations N      the iteration count given to unosql (default its own)
  --name D            the unosql database name (files D_<collection>.db)
  --collections a,b   only these unosql collections
  --epoch 1970|2000   the device clock's epoch of its timestamps
  --skip-damaged      import what is intact; list what is not (exit 2)`,
  options: {
    format: "value",
    collection: "value",
    "id-field": "value",
    mode: "value",
    drop: "flag",
    "skip-bad": "flag",
    json: "flag",
    ...UNOSQL_OPTIONS,
  },
  arity: [1, 1],
  run,
};

/** The collection a file's name gives: `users.csv` -> `users`. */
function collectionOfName(file: string): string | undefined {
  if (file === "-") return undefined;
  const base = file.slice(
    Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\")) + 1,
  );
  const name = base.replace(/\.[^.]*$/, "");
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(name) ? name : undefined;
}

async function run(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  const from = option(ctx.parsed, "from");
  if (from !== undefined) {
    if (from !== "unosql") {
      throw usage(`--from must be 'unosql', got '${from}'`);
    }
    return await importFromUnosql(ctx, file);
  }
  for (const name of Object.keys(UNOSQL_OPTIONS)) {
    if (ctx.parsed.options.has(name)) {
      throw usage(`--${name} is an option of import --from unosql`);
    }
  }
  const given = choice(ctx.parsed, "format", IMPORT_FORMATS);
  const lower = file.toLowerCase();
  const format = given === "tether" || given === undefined
    ? (given === undefined && lower.endsWith(".csv")
      ? "csv"
      : given === undefined && lower.endsWith(".json")
      ? "json"
      : "ndjson")
    : given;
  const mode = choice(ctx.parsed, "mode", IMPORT_MODES);
  const idField = option(ctx.parsed, "id-field");
  if (idField === "") throw usage("--id-field needs a field name");
  const collection = option(ctx.parsed, "collection");
  const byName = collectionOfName(file);
  const size = file === "-" ? undefined : await inputSize(file); // before creating the database
  const where = target(ctx.parsed);
  return await withDatabase(ctx, CREATE, async (db) => {
    let done = 0;
    let total: number | undefined = size === undefined ? undefined : 2 * size;
    const progress = new Progress(
      ctx.err,
      ctx.stderrIsTerminal,
      "importing",
      () => ({ done, total }),
    );
    let result: DocumentImportResult;
    try {
      result = await importDocuments(
        db,
        file === "-" ? ctx.stdin() : file,
        {
          format,
          mode: mode ?? "upsert",
          skipBad: flag(ctx.parsed, "skip-bad"),
          drop: flag(ctx.parsed, "drop"),
          ...(collection === undefined ? {} : { collection }),
          ...(byName === undefined ? {} : { defaultCollection: byName }),
          ...(idField === undefined ? {} : { idField }),
          ...(where.kind === "file" ? { stageDir: dirOf(where.location) } : {}),
          onProgress: (n, all) => {
            done = n;
            total = all;
          },
        },
      );
    } catch (e) {
      if (e instanceof BadRecordError || e instanceof MalformedInputError) {
        throw new CliError(ExitCode.Data, e.message);
      }
      if (e instanceof TypeError && /give the collection/.test(e.message)) {
        throw usage(
          "give the collection the documents go into: --collection NAME",
        );
      }
      throw e;
    } finally {
      await progress.stop();
    }
    if (wantsJson(ctx)) {
      await ctx.out.json(result);
    } else {
      await ctx.out.write(
        `imported ${plural(result.documents, "document")}${
          result.indexes > 0
            ? ` and ${plural(result.indexes, "index definition")}`
            : ""
        }${
          result.deleted > 0
            ? `, ${plural(result.deleted, "deletion")} applied`
            : ""
        }${
          result.skipped > 0
            ? ` (${result.skipped} not stored before, skipped: --mode replace)`
            : ""
        }${
          result.expired > 0 ? ` (${result.expired} expired, skipped)` : ""
        }\n`,
      );
    }
    if (result.bad > 0) {
      await ctx.err.write(
        `tether: ${ctx.paintErr.yellow("skipped")} ${
          plural(result.bad, "bad record")
        }:\n${
          result.problems.map((p) => `  line ${p.line}: ${p.problem}\n`).join(
            "",
          )
        }${
          result.bad > result.problems.length
            ? `  (and ${result.bad - result.problems.length} more)\n`
            : ""
        }`,
      );
    }
    return ExitCode.Ok;
  });
}

function dirOf(path: string): string {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return slash < 0 ? "." : path.slice(0, slash) || "/";
}
