/**
 * `follow`: the database's changes as NDJSON as they happen, from a saved
 * position, like `tail -f`.
 *
 * @module
 */

import { FeedGapError } from "../../mod.ts";
import { flag, list, option, whole } from "./args.ts";
import type { Command } from "./command.ts";
import type { Context } from "./context.ts";
import { CliError, ExitCode, usage } from "./exit.ts";
import { READ, withDatabase } from "./open.ts";
import { Buffered } from "./output.ts";

/** `follow`. */
export const follow: Command = {
  synopsis:
    "follow [--since SEQ | --position-file FILE] [--collections a,b] [--expiries] [--once] [--limit N]",
  summary: "print changes as NDJSON as they happen (like tail -f)",
  help: `Prints each change of the database as one line of JSON, as it happens,
until interrupted (Ctrl-C): {"seq", "type": "put"|"delete"|"expire",
"collection", "key", "version", "doc"}. It starts after a saved position:
--since SEQ, or the one in --position-file (which it keeps up to date, so
that the next run resumes where this one stopped); else from the start of
the change feed, which keeps each document's latest change.

Options:
  --since SEQ            start after this position (a "seq" printed before)
  --position-file FILE   read the position from FILE (when it exists) and
                         write the last one printed to it
  --collections a,b      only these collections
  --expiries             also the documents that expire
  --once                 print the changes so far and stop, without waiting
  --limit N              stop after N changes
  --json                 (the output is always JSON lines)`,
  options: {
    since: "value",
    "position-file": "value",
    collections: "value",
    expiries: "flag",
    once: "flag",
    limit: "value",
    json: "flag",
  },
  arity: [0, 0],
  run,
};

async function readPosition(file: string): Promise<string | undefined> {
  try {
    const text = (await Deno.readTextFile(file)).trim();
    return text === "" ? undefined : text;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function writePosition(file: string, seq: string): Promise<void> {
  const temp = `${file}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(temp, `${seq}\n`);
  await Deno.rename(temp, file);
}

async function run(ctx: Context): Promise<number> {
  const positionFile = option(ctx.parsed, "position-file");
  const sinceGiven = option(ctx.parsed, "since");
  if (positionFile === "") throw usage("--position-file needs a path");
  const limit = whole(ctx.parsed, "limit");
  const collections = list(option(ctx.parsed, "collections"));
  const since = sinceGiven ??
    (positionFile === undefined ? undefined : await readPosition(positionFile));
  const controller = new AbortController();
  const stop = () => controller.abort();
  ctx.signal?.addEventListener("abort", stop);
  const signals: Deno.Signal[] = [];
  if (ctx.signal === undefined) {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      try {
        Deno.addSignalListener(signal, stop);
        signals.push(signal);
      } catch {
        // Not on this platform.
      }
    }
  }
  let last: string | undefined;
  let saved: string | undefined = since;
  const save = async () => {
    if (positionFile !== undefined && last !== undefined && last !== saved) {
      saved = last;
      await writePosition(positionFile, last);
    }
  };
  try {
    return await withDatabase(ctx, READ, async (db) => {
      if (collections !== undefined) {
        for (const c of collections) db.collection(c); // checks the name
      }
      const out = new Buffered(ctx.out);
      const live = !flag(ctx.parsed, "once");
      // A file database opened read-only sees another process's commits
      // once it loads them: refresh() does, and the live feed then tells
      // them. (Elsewhere refresh() does nothing.)
      let failure: unknown;
      const timer = setInterval(() => {
        out.flush().then(save).catch(() => {});
        if (live && failure === undefined) {
          db.refresh().catch((e) => {
            failure = e;
            controller.abort();
          });
        }
      }, 250);
      try {
        let n = 0;
        if (limit === 0) return ExitCode.Ok;
        for await (
          const change of db.changes({
            ...(since === undefined ? {} : { since }),
            ...(limit === undefined ? {} : { limit }),
            ...(collections === undefined ? {} : { collections }),
            signal: controller.signal,
            live,
            expiries: flag(ctx.parsed, "expiries"),
          })
        ) {
          await out.write(`${JSON.stringify(change)}\n`);
          last = change.seq;
          if (live) await out.flush(); // as it happens
          if (limit !== undefined && ++n >= limit) break;
          if (controller.signal.aborted) break;
        }
      } catch (e) {
        if (controller.signal.aborted) {
          // Stopped (Ctrl-C, or a failed refresh, thrown below).
        } else if (e instanceof FeedGapError) {
          throw new CliError(
            ExitCode.Failed,
            `${e.message}; start again from the beginning: without --since, or with the position file removed`,
          );
        } else if (e instanceof TypeError || e instanceof RangeError) {
          throw usage(e.message);
        } else throw e;
      } finally {
        clearInterval(timer);
        await out.flush();
        await save();
      }
      if (failure !== undefined) throw failure;
      return ExitCode.Ok;
    });
  } finally {
    ctx.signal?.removeEventListener("abort", stop);
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
}
