// The commands put, delete, count, indexes, stats and rekey, --json on every
// command, and what a passphrase in the environment does (never encrypt
// silently; a plain database still opens, with a note). Run in-process with
// main(), stdout and stderr captured.

import assert from "node:assert/strict";
import { open, WrongKeyError } from "../mod.ts";
import { main } from "../cli.ts";
import { COMMANDS } from "../src/cli/commands.ts";

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

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

/** Runs the CLI in-process; the environment is only `env`. */
async function run(
  args: readonly string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<Run> {
  const out = sink();
  const err = sink();
  const code = await main(args, {
    stdout: out.stream,
    stderr: err.stream,
    env: (name) => options.env?.[name],
    ...(options.stdin === undefined
      ? {}
      : { stdin: new Blob([options.stdin]).stream() }),
  });
  return { code, out: out.text(), err: err.text() };
}

function exits(run: Run, code: number): Run {
  assert.equal(
    run.code,
    code,
    `exit ${run.code}, expected ${code}\nstdout: ${run.out}\nstderr: ${run.err}`,
  );
  return run;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-commands-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli commands: put, get, count, indexes and delete, each with --json", async () => {
  await withDir(async (dir) => {
    const db = ["--db", `${dir}/app.tdb`];
    // put creates the database.
    const first = exits(
      await run([
        "put",
        "users",
        "ann",
        '{"_id":"ann","name":"Ann","age":30}',
        "--json",
        ...db,
      ]),
      0,
    );
    assert.deepEqual(JSON.parse(first.out), {
      collection: "users",
      key: "ann",
      version: 1,
      created: true,
    });
    const again = exits(
      await run(["put", "users", "ann", '{"name":"Ann","age":31}', ...db]),
      0,
    );
    assert.equal(again.out, "replaced 'ann' in 'users' (version 2)\n");
    // The value from stdin, with a TTL and tags.
    exits(
      await run(
        ["put", "users", "bob", "--ttl", "3600000", "--tags", "a,b", ...db],
        { stdin: '{"name":"Bob","age":20}' },
      ),
      0,
    );
    const bob = JSON.parse(
      exits(await run(["get", "users", "bob", "--json", ...db]), 0).out,
    );
    assert.deepEqual(bob.value, { name: "Bob", age: 20 });
    assert.deepEqual(bob.tags, ["a", "b"]);
    assert.equal(typeof bob.expiresAt, "number");
    assert.equal(bob.version, 1);
    // A bad value is a usage error; nothing is stored.
    exits(await run(["put", "users", "cy", "{nope", ...db]), 64);
    // get --json of an absent key: null, exit 1.
    const absent = exits(await run(["get", "users", "cy", "--json", ...db]), 1);
    assert.equal(JSON.parse(absent.out), null);

    // count
    assert.deepEqual(
      JSON.parse(exits(await run(["count", "users", "--json", ...db]), 0).out),
      { count: 2 },
    );
    assert.equal(
      exits(await run(["count", "users", '{"age":{"$gt":25}}', ...db]), 0).out,
      "1\n",
    );
    assert.deepEqual(
      JSON.parse(exits(await run(["count", "--json", ...db]), 0).out),
      { collections: { users: 2 }, total: 2 },
    );

    // indexes: create, list, drop.
    assert.deepEqual(
      JSON.parse(
        exits(
          await run([
            "indexes",
            "create",
            "users",
            "age",
            "--unique",
            "--json",
            ...db,
          ]),
          0,
        ).out,
      ),
      { collection: "users", name: "age_1" },
    );
    exits(await run(["indexes", "create", "users", "name,age", ...db]), 0);
    const listed = JSON.parse(
      exits(await run(["indexes", "list", "--json", ...db]), 0).out,
    );
    assert.deepEqual(
      listed.map((i: { name: string; unique: boolean }) => [i.name, i.unique]),
      [["age_1", true], ["name_1_age_1", false]],
    );
    assert.match(
      exits(await run(["indexes", "users", ...db]), 0).out,
      /age_1\s+age\s+unique/,
    );
    // The unique index refuses a second document of the same age (exit 1).
    const duplicate = exits(
      await run(["put", "users", "dan", '{"age":31}', ...db]),
      1,
    );
    assert.match(duplicate.err, /^tether: .*age/);
    assert.deepEqual(
      JSON.parse(
        exits(
          await run(["indexes", "drop", "users", "name,age", "--json", ...db]),
          0,
        ).out,
      ),
      { collection: "users", name: "name_1_age_1", dropped: true },
    );
    exits(await run(["indexes", "drop", "users", "name_1_age_1", ...db]), 1);

    // delete: keys (exit 1 when one is missing), then a filter.
    const deleted = exits(
      await run(["delete", "users", "ann", "zed", "--json", ...db]),
      1,
    );
    assert.deepEqual(JSON.parse(deleted.out), {
      deleted: 1,
      missing: ["zed"],
    });
    assert.deepEqual(
      JSON.parse(
        exits(
          await run(["delete", "users", "--filter", "{}", "--json", ...db]),
          0,
        ).out,
      ),
      { deleted: 1, missing: [] },
    );
    exits(await run(["delete", "users", ...db]), 64);
  });
});

Deno.test("cli commands: every command takes --json, and its output parses as JSON", async () => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    assert.equal(command.options.json, "flag", `${name} has no --json`);
  }
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    const db = ["--db", path];
    {
      await using created = await open({ path });
      await created.collection("users").insertMany([
        { _id: "ann", age: 30 },
        { _id: "bob", age: 20 },
      ]);
      await created.collection("users").createIndex("age");
    }
    const lines = (text: string) =>
      text.trimEnd().split("\n").map((line) => JSON.parse(line));
    const json = async (args: string[], code = 0) =>
      JSON.parse(exits(await run([...args, "--json", ...db]), code).out);
    assert.equal((await json(["info"])).documents, 2);
    assert.equal((await json(["stats"])).items, 2);
    assert.deepEqual(
      lines(exits(await run(["find", "users", "--json", ...db]), 0).out),
      [{ _id: "ann", age: 30 }, { _id: "bob", age: 20 }],
    );
    assert.deepEqual(await json(["verify"]), { checked: 4, problems: [] });
    assert.equal(
      (await json(["export", `${dir}/all.ndjson`])).documents,
      2,
    );
    assert.equal(
      (await json(["backup", `${dir}/all.tbk`])).documents,
      2,
    );
    const copy = ["--db", `${dir}/copy.tdb`];
    const imported = JSON.parse(
      exits(
        await run(["import", `${dir}/all.ndjson`, "--json", ...copy]),
        0,
      ).out,
    );
    assert.equal(imported.documents, 2);
    assert.equal(imported.indexes, 1);
    assert.equal(imported.format, "envelope");
    assert.deepEqual(
      JSON.parse(
        exits(
          await run(["restore", `${dir}/all.tbk`, "--json", ...copy]),
          0,
        ).out,
      ),
      { documents: 2, deleted: 0, expired: 0 },
    );
    assert.equal(typeof (await json(["compact"])).rewrote, "boolean");
    const repaired = await json(["repair", "--out", `${dir}/fixed.tdb`]);
    assert.equal(repaired.copied, 2);
    assert.deepEqual(repaired.lost, []);
  });
});

Deno.test("cli commands: a passphrase in the environment never encrypts a new database; a plain one opens with a note; --encrypt does", async () => {
  await withDir(async (dir) => {
    const env = { TETHER_PASSPHRASE: "a secret", NEW: "another secret" };
    const plain = `${dir}/plain.tdb`;
    // Created plain, despite the passphrase, with a note.
    const created = exits(
      await run(["put", "c", "k", "1", "--db", plain], { env }),
      0,
    );
    assert.match(
      created.err,
      /^tether: note: TETHER_PASSPHRASE is set, but the new database '.*plain\.tdb' is not encrypted \(give --encrypt to encrypt it\)\n$/,
    );
    {
      await using db = await open({ path: plain, readOnly: true });
      assert.equal(await db.collection("c").get("k"), 1);
    }
    // Opening it with the passphrase set works, with a note.
    const read = exits(await run(["get", "c", "k", "--db", plain], { env }), 0);
    assert.equal(read.out, "1\n");
    assert.match(
      read.err,
      /^tether: note: TETHER_PASSPHRASE is set, but '.*plain\.tdb' is not encrypted; opened without it\n$/,
    );
    // Without the passphrase: no note.
    assert.equal(
      exits(await run(["get", "c", "k", "--db", plain]), 0).err,
      "",
    );
    // --encrypt: on an existing plain database, on a reading command, and
    // without a passphrase, refused.
    exits(
      await run(["put", "c", "k", "2", "--encrypt", "--db", plain], { env }),
      64,
    );
    exits(
      await run(["get", "c", "k", "--encrypt", "--db", plain], { env }),
      64,
    );
    const secret = `${dir}/secret.tdb`;
    exits(await run(["put", "c", "k", "1", "--encrypt", "--db", secret]), 77);
    // --encrypt creates it encrypted.
    exits(
      await run(["put", "c", "k", "1", "--encrypt", "--db", secret], { env }),
      0,
    );
    await assert.rejects(open({ path: secret }), WrongKeyError);
    {
      await using db = await open({
        path: secret,
        encryption: { passphrase: env.TETHER_PASSPHRASE },
      });
      assert.equal(await db.collection("c").get("k"), 1);
    }
    // rekey: a plain database is refused (1); an encrypted one takes the
    // new passphrase.
    exits(
      await run(["rekey", "--new-passphrase-env", "NEW", "--db", plain], {
        env,
      }),
      1,
    );
    const rekeyed = exits(
      await run([
        "rekey",
        "--new-passphrase-env",
        "NEW",
        "--iterations",
        "1000",
        "--json",
        "--db",
        secret,
      ], { env }),
      0,
    );
    assert.deepEqual(JSON.parse(rekeyed.out), { reencrypted: 1 });
    exits(await run(["get", "c", "k", "--db", secret], { env }), 77);
    assert.equal(
      exits(
        await run(["get", "c", "k", "--db", secret], {
          env: { TETHER_PASSPHRASE: env.NEW },
        }),
        0,
      ).out,
      "1\n",
    );
    // No secret was printed.
    for (const r of [created, read, rekeyed]) {
      assert(!r.out.includes("secret") && !r.err.includes("a secret"));
    }
  });
});
