/**
 * `put`: store a document (or any JSON value) under a key.
 *
 * @module
 */

import { jsonValue, list, option, whole } from "./args.ts";
import type { Command } from "./command.ts";
import { type Context, wantsJson } from "./context.ts";
import { asUsageAsync, ExitCode, usage } from "./exit.ts";
import { collectionOf, CREATE, withDatabase } from "./open.ts";

/** Largest value read from stdin. */
const MAX_STDIN = 64 * 1024 * 1024;

/** `put`. */
export const put: Command = {
  synopsis:
    "put <collection> <key> [json|-] [--ttl MS] [--tags a,b] [--encrypt] [--json]",
  summary: "store a JSON value under a key (creates the database)",
  help: `Stores a JSON value (a document, or any JSON) under <key> in
<collection>, replacing what was there. The value is the third argument,
or stdin when it is '-' or left out. An object with an "_id" must have
<key> as its "_id". Creates the database if missing (encrypted only with
--encrypt).

Options:
  --ttl MS      the document expires after MS milliseconds
  --tags a,b    tags
  --encrypt     create the database encrypted (passphrase from the
                environment, else asked twice on a terminal)
  --json        one line: { "collection", "key", "version", "created" }`,
  options: { ttl: "value", tags: "value", json: "flag" },
  arity: [2, 3],
  run,
};

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.length > MAX_STDIN) {
      throw usage(`the value on stdin is over ${MAX_STDIN} bytes`);
    }
  }
  return text;
}

async function run(ctx: Context): Promise<number> {
  const [name, key, given] = ctx.parsed.positionals as [
    string,
    string,
    string?,
  ];
  const ttl = whole(ctx.parsed, "ttl");
  const tags = list(option(ctx.parsed, "tags"));
  const text = given === undefined || given === "-"
    ? await readAll(ctx.stdin())
    : given;
  const value = jsonValue(text, "the value");
  return await withDatabase(ctx, CREATE, async (db) => {
    const collection = collectionOf(db, name);
    const before = await asUsageAsync(() => collection.getEntry(key));
    await asUsageAsync(() =>
      collection.put(key, value, {
        ...(ttl === undefined ? {} : { ttl }),
        ...(tags === undefined ? {} : { tags }),
      })
    );
    const after = await collection.getEntry(key);
    const version = after?.version ?? (before?.version ?? 0) + 1;
    if (wantsJson(ctx)) {
      await ctx.out.json({
        collection: name,
        key,
        version,
        created: before === null,
      });
    } else {
      await ctx.out.write(
        `${
          before === null ? "created" : "replaced"
        } '${key}' in '${name}' (version ${version})\n`,
      );
    }
    return ExitCode.Ok;
  });
}
