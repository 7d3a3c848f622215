// tether follow: the durable change feed as NDJSON, from a saved position,
// live like tail -f. In-process (main), with an AbortSignal for Ctrl-C.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { main } from "../cli.ts";

function sink(): { stream: WritableStream<Uint8Array>; text: () => string } {
  let text = "";
  const decoder = new TextDecoder();
  return {
    stream: new WritableStream({
      write: (chunk) => void (text += decoder.decode(chunk, { stream: true })),
    }),
    text: () => text,
  };
}

interface Change {
  seq: string;
  type: string;
  collection: string;
  key: string;
  version: number;
  doc?: unknown;
}

const parse = (text: string): Change[] =>
  text.trimEnd().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));

async function follow(
  args: readonly string[],
  signal?: AbortSignal,
): Promise<{ code: number; out: () => string; err: () => string }> {
  const out = sink();
  const err = sink();
  const code = await main(["follow", ...args], {
    stdout: out.stream,
    stderr: err.stream,
    env: () => undefined,
    ...(signal === undefined ? {} : { signal }),
  });
  return { code, out: out.text, err: err.text };
}

Deno.test("cli follow: the changes so far as NDJSON, resumed from a position file; --collections; --limit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-follow-" });
  try {
    const path = `${dir}/app.tdb`;
    const position = `${dir}/app.pos`;
    {
      await using db = await open({ path });
      await db.collection("users").put("ann", { age: 30 });
      await db.collection("users").put("ann", { age: 31 });
      await db.collection("logs").put("l1", { m: "x" });
      await db.collection("users").delete("ann");
    }
    const db = ["--db", path];
    const first = await follow(["--once", "--position-file", position, ...db]);
    assert.equal(first.code, 0, first.err());
    // The feed keeps each document's latest change.
    const changes = parse(first.out());
    assert.deepEqual(
      changes.map((c) => [c.type, c.collection, c.key, c.version]),
      [["put", "logs", "l1", 1], ["delete", "users", "ann", 3]],
    );
    assert.deepEqual(changes[0]!.doc, { m: "x" });
    assert.equal(
      (await Deno.readTextFile(position)).trim(),
      changes[1]!.seq,
    );
    // Nothing new: nothing printed; then one more change: only it.
    assert.equal(
      (await follow(["--once", "--position-file", position, ...db])).out(),
      "",
    );
    {
      await using writer = await open({ path });
      await writer.collection("logs").put("l2", { m: "y" });
    }
    const next = parse(
      (await follow(["--once", "--position-file", position, ...db])).out(),
    );
    assert.deepEqual(next.map((c) => c.key), ["l2"]);
    // --since, --collections and --limit.
    const since = parse(
      (await follow(["--once", "--since", changes[0]!.seq, ...db])).out(),
    );
    assert.deepEqual(since.map((c) => c.key), ["ann", "l2"]);
    const logs = parse(
      (await follow(["--once", "--collections", "logs", "--limit", "1", ...db]))
        .out(),
    );
    assert.deepEqual(logs.map((c) => c.key), ["l1"]);
    // A position that is not one of this feed's: a usage error.
    const bad = await follow(["--once", "--since", "not-a-position", ...db]);
    assert.equal(bad.code, 64, bad.err());
    assert.match(bad.err(), /^tether: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli follow: live, a change written while it runs is printed, and the position is saved when it is stopped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-follow-live-" });
  try {
    const path = `${dir}/app.tdb`;
    const position = `${dir}/app.pos`;
    await using writer = await open({ path });
    await writer.collection("c").put("before", 1);
    const stop = new AbortController();
    const out = sink();
    const running = main(
      ["follow", "--position-file", position, "--db", path],
      { stdout: out.stream, env: () => undefined, signal: stop.signal },
    );
    const waitFor = async (n: number) => {
      for (let i = 0; i < 200 && parse(out.text()).length < n; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      return parse(out.text());
    };
    assert.deepEqual((await waitFor(1)).map((c) => c.key), ["before"]);
    await writer.collection("c").put("during", 2);
    const seen = await waitFor(2);
    assert.deepEqual(seen.map((c) => c.key), ["before", "during"]);
    stop.abort();
    assert.equal(await running, 0);
    assert.equal((await Deno.readTextFile(position)).trim(), seen[1]!.seq);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
