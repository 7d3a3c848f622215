/**
 * `find`: documents matching a filter, as a table or JSON lines.
 *
 * @module
 */

import { jsonObject, option, whole } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { asUsage, ExitCode } from "./exit.ts";
import { collectionOf, READ, withDatabase } from "./open.ts";
import { Buffered, plural } from "./output.ts";

/** `find`. */
export const find: Command = {
  synopsis: "find <collection> [filter] [--sort JSON] [--limit N] [--json]",
  summary: "list documents matching a filter (table, or JSON lines)",
  help: `Lists the documents of <collection> matching [filter], a Mongo-style
query as JSON (default: every document), e.g. '{"age":{"$gt":25}}'.
The table has a column per top-level field (of the first 1,000 documents),
values cut to fit; --json prints each document as one line of JSON.

Options:
  --sort JSON   order, e.g. '{"age":-1,"name":1}'
  --limit N     at most N documents
  --skip N      skip the first N matches
  --json        JSON lines (one document per line) instead of a table`,
  options: { sort: "value", limit: "value", skip: "value", json: "flag" },
  arity: [1, 2],
  run,
};

/** Rows kept to choose the table's columns and widths. */
const TABLE_SAMPLE = 1000;
/** Widest column of the table. */
const CELL_WIDTH = 40;
/** Narrowest a column is squeezed to, to fit the terminal. */
const MIN_WIDTH = 6;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date);
}

function cell(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value.replace(/[\r\n\t]+/g, " ");
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object" && value !== null) {
    return JSON.stringify(value);
  }
  return String(value);
}

function fit(text: string, width: number): string {
  const chars = Array.from(text);
  if (chars.length <= width) return text;
  return chars.slice(0, Math.max(0, width - 1)).join("") + "…";
}

function length(text: string): number {
  return Array.from(text).length;
}

class Table {
  readonly #columns: string[];
  readonly #widths: number[];
  readonly #right: boolean[];

  constructor(
    sample: readonly { key: string; value: unknown }[],
    columns: number | undefined,
  ) {
    const fields = new Set<string>();
    let scalar = false;
    for (const { value } of sample) {
      if (isPlainObject(value)) {
        for (const f of Object.keys(value)) if (f !== "_id") fields.add(f);
      } else scalar = true;
    }
    this.#columns = ["_id", ...fields, ...(scalar ? ["(value)"] : [])];
    const cells = sample.map((r) => this.#cells(r));
    this.#widths = this.#columns.map((c, i) =>
      Math.min(
        CELL_WIDTH,
        Math.max(length(c), ...cells.map((row) => length(row[i]!))),
      )
    );
    this.#right = this.#columns.map((_, i) =>
      i > 0 && cells.length > 0 &&
      sample.every((r) => {
        const v = this.#raw(r, i);
        return typeof v === "number" || v === undefined;
      })
    );
    if (columns !== undefined) {
      // Squeeze the widest columns until the table fits the terminal.
      const total = () =>
        this.#widths.reduce((a, b) => a + b, 0) + 2 * (this.#widths.length - 1);
      while (total() > columns) {
        const widest = this.#widths.indexOf(Math.max(...this.#widths));
        if (this.#widths[widest]! <= MIN_WIDTH) break;
        this.#widths[widest]!--;
      }
    }
  }

  #raw(row: { key: string; value: unknown }, i: number): unknown {
    const column = this.#columns[i]!;
    if (i === 0) return row.key;
    if (column === "(value)") {
      return isPlainObject(row.value) ? undefined : row.value;
    }
    return isPlainObject(row.value) ? row.value[column] : undefined;
  }

  #cells(row: { key: string; value: unknown }): string[] {
    return this.#columns.map((_, i) => cell(this.#raw(row, i)));
  }

  /** One line; numbers are never cut (past the sample they may overflow). */
  #line(cells: readonly string[], whole: readonly boolean[] = []): string {
    return cells.map((c, i) => {
      const text = whole[i] ? c : fit(c, this.#widths[i]!);
      const pad = " ".repeat(Math.max(0, this.#widths[i]! - length(text)));
      return this.#right[i] ? pad + text : text + pad;
    }).join("  ").trimEnd() + "\n";
  }

  header(): string {
    return this.#line(this.#columns) +
      this.#widths.map((w) => "-".repeat(w)).join("  ") + "\n";
  }

  row(row: { key: string; value: unknown }): string {
    return this.#line(
      this.#cells(row),
      this.#columns.map((_, i) => typeof this.#raw(row, i) === "number"),
    );
  }
}

async function run(ctx: Context): Promise<number> {
  const [name, filterText] = ctx.parsed.positionals as [string, string?];
  const filter = filterText === undefined
    ? {}
    : jsonObject(filterText, "the filter");
  const sortText = option(ctx.parsed, "sort");
  const sort = sortText === undefined
    ? undefined
    : jsonObject(sortText, "--sort");
  const limit = whole(ctx.parsed, "limit");
  const skip = whole(ctx.parsed, "skip");
  return await withDatabase(ctx, READ, async (db) => {
    const collection = collectionOf(db, name);
    const cursor = asUsage(() =>
      collection.find(filter, {
        ...(sort === undefined ? {} : { sort: sort as { [k: string]: 1 } }),
        ...(limit === undefined ? {} : { limit }),
        ...(skip === undefined ? {} : { skip }),
      })
    );
    const out = new Buffered(ctx.out);
    if (wantsJson(ctx)) {
      for await (const doc of cursor) {
        await out.write(`${JSON.stringify(doc)}\n`);
      }
      await out.flush();
      return ExitCode.Ok;
    }
    const sample: { key: string; value: unknown }[] = [];
    let table: Table | undefined;
    let n = 0;
    for await (const { key, value } of cursor.entries()) {
      n++;
      if (table === undefined) {
        sample.push({ key, value });
        if (sample.length < TABLE_SAMPLE) continue;
        table = new Table(sample, ctx.columns);
        await out.write(ctx.paint.bold(table.header()));
        for (const row of sample) await out.write(table.row(row));
      } else {
        await out.write(table.row({ key, value }));
      }
    }
    if (table === undefined && sample.length > 0) {
      table = new Table(sample, ctx.columns);
      await out.write(ctx.paint.bold(table.header()));
      for (const row of sample) await out.write(table.row(row));
    }
    await out.write(ctx.paint.dim(`(${plural(n, "document")})`) + "\n");
    await out.flush();
    return ExitCode.Ok;
  });
}
