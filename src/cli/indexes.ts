/**
 * `indexes`: list, create and drop secondary indexes.
 *
 * @module
 */

import { flag, list } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { asUsageAsync, ExitCode, usage } from "./exit.ts";
import { collectionOf, READ, withDatabase, WRITE } from "./open.ts";
import { layout } from "./output.ts";

/** `indexes`. */
export const indexes: Command = {
  synopsis:
    "indexes [list [collection] | create <collection> <fields> [--unique] [--sparse] | drop <collection> <name|fields>] [--json]",
  summary: "list, create and drop secondary indexes",
  help: `indexes [list] [collection]
    lists the indexes of every collection, or of <collection>
indexes create <collection> <field[,field...]> [--unique] [--sparse]
    creates an index (compound with several fields, dotted paths allowed);
    its name is MongoDB's: fields and 1 joined with _, e.g. city_1_age_1
indexes drop <collection> <name|field[,field...]>
    drops an index by name or by its fields (exit 1 when there is none)

Options:
  --unique   create: reject two documents with the same values (exit 1 when
             stored documents already collide)
  --sparse   create: leave out documents missing every field
  --json     list: [{ "collection", "name", "fields", "unique", "sparse",
             "multikey" }]; create: { "collection", "name" }; drop:
             { "collection", "name", "dropped" }`,
  options: { unique: "flag", sparse: "flag", json: "flag" },
  arity: [0, 3],
  run,
};

async function run(ctx: Context): Promise<number> {
  const [first, ...rest] = ctx.parsed.positionals;
  if (first === "create") return await create(ctx, rest);
  if (first === "drop") return await drop(ctx, rest);
  const names = first === "list" ? rest : first === undefined ? [] : [
    first,
    ...rest,
  ];
  if (names.length > 1) throw usage("indexes list takes one collection");
  if (flag(ctx.parsed, "unique") || flag(ctx.parsed, "sparse")) {
    throw usage("--unique and --sparse are options of 'indexes create'");
  }
  return await withDatabase(ctx, READ, async (db) => {
    const collections = names.length === 1
      ? [collectionOf(db, names[0]!).name]
      : await db.collections();
    const rows = [];
    for (const c of collections) {
      for (const i of await db.collection(c).indexes()) {
        rows.push({ collection: c, ...i });
      }
    }
    if (wantsJson(ctx)) {
      await ctx.out.json(rows);
    } else if (rows.length === 0) {
      await ctx.out.write("no indexes\n");
    } else {
      await ctx.out.write(layout(
        ["collection", "name", "fields", "options"],
        rows.map((r) => [
          r.collection,
          r.name,
          r.fields.join(", "),
          [
            ...(r.unique ? ["unique"] : []),
            ...(r.sparse ? ["sparse"] : []),
            ...(r.multikey ? ["multikey"] : []),
          ].join(", ") || "-",
        ]),
        [false, false, false, false],
      ));
    }
    return ExitCode.Ok;
  });
}

function fieldsOf(text: string | undefined): string[] {
  const fields = list(text);
  if (fields === undefined || fields.length === 0) {
    throw usage("give the index's fields, e.g. city,age");
  }
  return fields;
}

async function create(ctx: Context, args: string[]): Promise<number> {
  if (args.length !== 2) {
    throw usage("indexes create <collection> <field[,field...]>");
  }
  const [name, fieldText] = args as [string, string];
  const fields = fieldsOf(fieldText);
  return await withDatabase(ctx, WRITE, async (db) => {
    const collection = collectionOf(db, name);
    const index = await asUsageAsync(() =>
      collection.createIndex(fields, {
        unique: flag(ctx.parsed, "unique"),
        sparse: flag(ctx.parsed, "sparse"),
      })
    );
    if (wantsJson(ctx)) {
      await ctx.out.json({ collection: name, name: index });
    } else {
      await ctx.out.write(`created index '${index}' on '${name}'\n`);
    }
    return ExitCode.Ok;
  });
}

async function drop(ctx: Context, args: string[]): Promise<number> {
  if (args.length !== 2) {
    throw usage("indexes drop <collection> <name|field[,field...]>");
  }
  const [name, which] = args as [string, string];
  return await withDatabase(ctx, WRITE, async (db) => {
    const collection = collectionOf(db, name);
    const existing = (await collection.indexes()).map((i) => i.name);
    const index = existing.includes(which) ? which : fieldsOf(which);
    const dropped = await asUsageAsync(() => collection.dropIndex(index));
    const indexName = typeof index === "string"
      ? index
      : index.map((f) => `${f}_1`).join("_");
    if (wantsJson(ctx)) {
      await ctx.out.json({ collection: name, name: indexName, dropped });
    } else if (dropped) {
      await ctx.out.write(`dropped index '${indexName}' of '${name}'\n`);
    } else {
      await ctx.err.write(`tether: no index '${which}' on '${name}'\n`);
    }
    return dropped ? ExitCode.Ok : ExitCode.Failed;
  });
}
