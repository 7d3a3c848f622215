// Import and export like mongoimport/mongoexport: the format readers (CSV
// per RFC 4180 with typed columns, a JSON array streamed across chunk
// boundaries, JSON lines with Extended JSON), the four modes, a bad record
// (named by line, nothing imported, or skipped with --skip-bad), and round
// trips through the CLI in-process.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { main } from "../cli.ts";
import {
  BadRecordError,
  importDocuments,
} from "../src/backup/import_documents.ts";
import {
  MalformedInputError,
  type RawRecord,
  records,
} from "../src/backup/import_formats.ts";
import { csvField } from "../src/backup/export_documents.ts";
import { spillLimit } from "../src/backup/ndjson.ts";

/** A stream delivering `text` `size` bytes at a time. */
function chunked(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

async function all(
  text: string,
  format: "ndjson" | "json" | "csv",
  size = 1,
): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of records(chunked(text, size), format)) out.push(r);
  return out;
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

async function run(
  args: readonly string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await main(args, {
    stdout: out.stream,
    stderr: err.stream,
    env: () => undefined,
    ...(stdin === undefined ? {} : { stdin: new Blob([stdin]).stream() }),
  });
  return { code, out: out.text(), err: err.text() };
}

Deno.test("import formats: CSV per RFC 4180, typed columns, nested fields, read a byte at a time", async () => {
  const csv = "name,age,ok,none,empty,address.city,note\r\n" +
    '"Ann",30,true,null,,Oslo,"a, b"\r\n' +
    '"Bob ""B""",-2.5e3,false,,"",Rome,"two\nlines"\n' +
    "\n" +
    '"42",007,TRUE,x,,,\n' +
    "short,row\n";
  const rows = await all(csv, "csv");
  assert.deepEqual(rows, [
    {
      line: 2,
      value: {
        name: "Ann",
        age: 30,
        ok: true,
        none: null,
        address: { city: "Oslo" },
        note: "a, b",
      },
    },
    {
      line: 3,
      value: {
        name: 'Bob "B"',
        age: -2500,
        ok: false,
        empty: "",
        address: { city: "Rome" },
        note: "two\nlines",
      },
    },
    // Quoted: a string; 007 is not a JSON number; TRUE is not true.
    { line: 6, value: { name: "42", age: "007", ok: "TRUE", none: "x" } },
    { line: 7, error: "it has 2 fields, the header 7" },
  ]);
  await assert.rejects(
    all('a,b\n"open,1\n', "csv"),
    MalformedInputError,
    "line 2: a quoted CSV field is not closed",
  );
  // What export writes, import reads back the same.
  const values = ["x,y", 'say "hi"', "", "12", "true", 1.5, false, null];
  const line = values.map(csvField).join(",");
  assert.equal(line, '"x,y","say ""hi""","","12","true",1.5,false,null');
  const header = values.map((_, i) => `f${i}`).join(",");
  const [back] = await all(`${header}\n${line}\n`, "csv", 3);
  assert.deepEqual(
    Object.values(back!.value as Record<string, unknown>),
    values,
  );
});

Deno.test("import formats: a JSON array streamed element by element, Extended JSON, and broken arrays", async () => {
  const text = '[\n {"_id": {"$oid": "5f1"}, "s": "a]b,\\"c"},\n' +
    ' {"at": {"$date": "2020-01-02T03:04:05Z"}, "n": {"$numberLong": "12"}},\n' +
    ' 7, [1, 2],\n {"bad": tru}\n]\n';
  for (const size of [1, 7, 1000]) {
    const got = await all(text, "json", size);
    assert.deepEqual(got.slice(0, 4), [
      { line: 2, value: { _id: "5f1", s: 'a]b,"c' } },
      { line: 3, value: { at: new Date("2020-01-02T03:04:05Z"), n: 12 } },
      { line: 4, value: 7 },
      { line: 4, value: [1, 2] },
    ]);
    assert.equal(got[4]!.line, 5);
    assert.match(got[4]!.error!, /^it is not JSON/);
    assert.equal(got.length, 5);
  }
  assert.deepEqual(await all("[]", "json"), []);
  for (
    const [broken, message] of [
      ['{"a":1}', "line 1: the JSON array is missing"],
      ['[{"a":1}', "line 1: the JSON array is not closed"],
      ['[{"a":1}]\n[', "line 2: the JSON array is followed by more text"],
      ['[{"a":1},,{"b":2}]', "the JSON array has an empty element"],
    ]
  ) {
    await assert.rejects(all(broken!, "json"), MalformedInputError, message);
  }
});

Deno.test("importDocuments: insert, upsert, merge and replace; a bad record imports nothing, --skip-bad skips it", async () => {
  await using db = await open();
  const users = db.collection("users");
  await users.put("ann", { _id: "ann", name: "Ann", age: 30 });
  const input = (lines: unknown[]) =>
    new Blob([lines.map((l) => JSON.stringify(l)).join("\n")]).stream();

  // insert: a stored key is a bad record; nothing is imported.
  const taken = await importDocuments(
    db,
    input([{ _id: "bob", age: 20 }, { _id: "ann", age: 1 }]),
    { collection: "users", mode: "insert" },
  ).catch((e) => e);
  assert(taken instanceof BadRecordError);
  assert.match(taken.message, /line 2: 'ann' already exists in 'users'/);
  assert.equal(await users.count(), 1);
  // A key twice in the input too.
  await assert.rejects(
    importDocuments(
      db,
      input([{ _id: "bob" }, { _id: "bob" }]),
      { collection: "users", mode: "insert" },
    ),
    BadRecordError,
    "line 2: the key 'bob' is also on line 1",
  );
  // A bad line (not JSON, not an object, a bad id) anywhere: nothing.
  const bad = new Blob([
    '{"_id":"bob"}\n{"_id":"cy"\n[1]\n{"_id":true}\n{"_id":5,"n":5}\n',
  ]).stream();
  const refused = await importDocuments(db, bad, { collection: "users" })
    .catch((e) => e);
  assert(refused instanceof BadRecordError);
  assert.equal(refused.count, 3);
  assert.deepEqual(refused.problems.map((p) => p.line), [2, 3, 4]);
  assert.match(refused.message, /^Cannot import: line 2: it is not JSON/);
  assert.equal(await users.count(), 1);
  // --skip-bad: the good ones go in; a number id becomes the key.
  const skipped = await importDocuments(
    db,
    new Blob(['{"_id":"bob"}\n{"_id":"cy"\n{"_id":5,"n":5}\n']).stream(),
    { collection: "users", skipBad: true },
  );
  assert.equal(skipped.documents, 2);
  assert.equal(skipped.bad, 1);
  assert.deepEqual(skipped.problems.map((p) => p.line), [2]);
  assert.deepEqual(await users.get("5"), { _id: "5", n: 5 });

  // merge: fields into the stored document; upsert: replace.
  await importDocuments(db, input([{ _id: "ann", city: "Oslo" }]), {
    collection: "users",
    mode: "merge",
  });
  assert.deepEqual(await users.get("ann"), {
    _id: "ann",
    name: "Ann",
    age: 30,
    city: "Oslo",
  });
  await importDocuments(db, input([{ _id: "ann", age: 31 }]), {
    collection: "users",
    mode: "upsert",
  });
  assert.deepEqual(await users.get("ann"), { _id: "ann", age: 31 });
  // replace: only keys already stored; the others are skipped.
  const replaced = await importDocuments(
    db,
    input([{ _id: "ann", age: 32 }, { _id: "zed", age: 1 }]),
    { collection: "users", mode: "replace" },
  );
  assert.equal(replaced.documents, 1);
  assert.equal(replaced.skipped, 1);
  assert.equal(await users.get("zed"), null);
  // merge and replace need a key.
  await assert.rejects(
    importDocuments(db, input([{ age: 1 }]), {
      collection: "users",
      mode: "merge",
    }),
    BadRecordError,
    "line 1: it has no '_id'",
  );
  // --id-field: the key from another field; documents without one get a
  // new key.
  const emails = await importDocuments(
    db,
    input([{ email: "a@x", n: 1 }, { n: 2 }]),
    { collection: "people", idField: "email" },
  );
  assert.equal(emails.documents, 2);
  assert.deepEqual(await db.collection("people").get("a@x"), {
    email: "a@x",
    n: 1,
  });
  assert.equal(await db.collection("people").count(), 2);
});

Deno.test("cli import/export: CSV, JSON and NDJSON round trips, --drop, a bad line (65) and --skip-bad", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-import-" });
  try {
    const db = ["--db", `${dir}/app.tdb`];
    const docs = [
      {
        _id: "ann",
        name: "Ann, A.",
        age: 30,
        admin: true,
        address: { city: "Oslo" },
      },
      { _id: "bob", name: 'Bob "B"\nJr', age: 20.5, admin: false, none: null },
    ];
    {
      await using created = await open({ path: `${dir}/app.tdb` });
      await created.collection("users").insertMany(docs);
      await created.collection("users").put("cy", {
        _id: "cy",
        at: new Date(5),
      });
    }
    // Bare formats need one collection; the file's extension picks the
    // format.
    for (const file of ["users.csv", "users.json", "users.ndjson"]) {
      const exported = await run([
        "export",
        `${dir}/${file}`,
        ...(file.endsWith(".ndjson") ? ["--format", "ndjson"] : []),
        ...db,
      ]);
      assert.equal(exported.code, 0, exported.err);
      assert.match(
        exported.out,
        /^exported 3 documents of 'users' as (csv|json|ndjson) to /,
      );
      const copy = ["--db", `${dir}/copy-${file}.tdb`];
      // The collection is the file's name.
      const imported = await run([
        "import",
        `${dir}/${file}`,
        "--json",
        ...copy,
      ]);
      assert.equal(imported.code, 0, imported.err);
      assert.equal(JSON.parse(imported.out).documents, 3);
      await using back = await open({ path: `${dir}/copy-${file}.tdb` });
      const users = back.collection("users");
      assert.deepEqual(await users.get("ann"), docs[0]);
      assert.deepEqual(await users.get("bob"), docs[1]);
      // A date: back as a date in JSON, as ISO text in CSV.
      assert.deepEqual(
        await users.get("cy"),
        file.endsWith(".csv")
          ? { _id: "cy", at: "1970-01-01T00:00:00.005Z" }
          : { _id: "cy", at: new Date(5) },
      );
    }
    const text = await Deno.readTextFile(`${dir}/users.csv`);
    assert.equal(
      text.split("\n")[0],
      "_id,name,age,admin,address.city,none,at",
    );
    // A bad line in stdin: exit 65, named by its line, nothing imported.
    const input = '{"_id":"a"}\n{"_id":"b"}\n{oops}\n';
    const bad = await run(
      ["import", "-", "--collection", "users", "--drop", ...db],
      input,
    );
    assert.equal(bad.code, 65, bad.err);
    assert.match(bad.err, /^tether: Cannot import: line 3: it is not JSON/);
    {
      await using check = await open({
        path: `${dir}/app.tdb`,
        readOnly: true,
      });
      assert.equal(await check.collection("users").count(), 3);
    }
    // --skip-bad with --drop: the collection holds the two good ones.
    const skipped = await run(
      ["import", "-", "--collection", "users", "--drop", "--skip-bad", ...db],
      input,
    );
    assert.equal(skipped.code, 0, skipped.err);
    assert.equal(skipped.out, "imported 2 documents\n");
    assert.match(
      skipped.err,
      /skipped 1 bad record:\n {2}line 3: it is not JSON/,
    );
    // --mode insert on a stored key: 65; bare documents without a
    // collection from stdin: 64.
    const dup = await run(
      ["import", "-", "--collection", "users", "--mode", "insert", ...db],
      '{"_id":"a"}\n',
    );
    assert.equal(dup.code, 65);
    assert.match(dup.err, /'a' already exists in 'users'/);
    assert.equal((await run(["import", "-", ...db], '{"a":1}\n')).code, 64);
    assert.equal(
      (await run(["import", "-", "--mode", "upsert-ish", ...db], "")).code,
      64,
    );
    {
      await using check = await open({
        path: `${dir}/app.tdb`,
        readOnly: true,
      });
      assert.deepEqual(
        (await check.collection("users").find({}).toArray()).map((d) =>
          (d as { _id: string })._id
        ),
        ["a", "b"],
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli import --from unosql: a plain and an encrypted database directory unosql wrote; a wrong key (77), a missing source (66)", async () => {
  const fixtures =
    new URL("../../shared/fixtures/unosql/current/", import.meta.url)
      .pathname;
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-unosql-" });
  try {
    const plain = await run([
      "import",
      "--from",
      "unosql",
      `${fixtures}plain`,
      "--db",
      `${dir}/plain.tdb`,
    ]);
    assert.equal(plain.code, 0, plain.err);
    assert.equal(
      plain.out,
      "imported 87 documents from unosql 'greenhouse' (current format, database): app_config 5, readings 59, users 23\n",
    );
    const out = sink();
    const err = sink();
    const key = "tether-fixture-public-key-32byte";
    const code = await main([
      "import",
      "--from",
      "unosql",
      `${fixtures}encrypted`,
      "--key-env",
      "UNOSQL_KEY",
      "--json",
      "--db",
      `${dir}/encrypted.tdb`,
    ], {
      stdout: out.stream,
      stderr: err.stream,
      env: (n) => n === "UNOSQL_KEY" ? key : undefined,
    });
    assert.equal(code, 0, err.text());
    const report = JSON.parse(out.text());
    assert.deepEqual(report.collections, {
      app_config: 5,
      readings: 59,
      users: 23,
    });
    assert(report.files.every((f: { encrypted: boolean }) => f.encrypted));
    {
      await using a = await open({ path: `${dir}/plain.tdb`, readOnly: true });
      await using b = await open({
        path: `${dir}/encrypted.tdb`,
        readOnly: true,
      });
      assert.deepEqual(
        await b.collection("users").find({}).toArray(),
        await a.collection("users").find({}).toArray(),
      );
    }
    const wrong = await run([
      "import",
      "--from",
      "unosql",
      `${fixtures}encrypted`,
      "--key",
      "x".repeat(32),
      "--db",
      `${dir}/wrong.tdb`,
    ]);
    assert.equal(wrong.code, 77, wrong.err);
    const missing = await run([
      "import",
      "--from",
      "unosql",
      `${dir}/nothing`,
      "--db",
      `${dir}/none.tdb`,
    ]);
    assert.equal(missing.code, 66, missing.err);
    assert.equal(
      (await run(["import", "x.ndjson", "--key", "k", "--db", `${dir}/k.tdb`]))
        .code,
      64,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli import: stdin larger than the heap streams into Deno KV (TETHER_TORTURE=1: 40 MB through a 32 MB heap; else 2 MB)", async () => {
  const torture = Deno.env.get("TETHER_TORTURE") === "1";
  const documents = torture ? 40_000 : 2_000;
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-big-" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--v8-flags=--max-old-space-size=32",
        "--unstable-kv",
        "-A",
        new URL("../cli.ts", import.meta.url).href,
        "import",
        "-",
        "--collection",
        "c",
        "--json",
        "--kv",
        `${dir}/big.sqlite`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Generated as it is written: never whole in this process either.
    const payload = "x".repeat(1000);
    const encoder = new TextEncoder();
    const writer = child.stdin.getWriter();
    for (let i = 0; i < documents; i += 100) {
      let chunk = "";
      for (let j = i; j < i + 100; j++) {
        chunk += `{"_id":"k${j}","n":${j},"payload":"${payload}"}\n`;
      }
      await writer.write(encoder.encode(chunk));
    }
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const report = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(report.documents, documents);
    const kv = await Deno.openKv(`${dir}/big.sqlite`);
    try {
      await using db = await open({ kv });
      assert.equal(await db.collection("c").count(), documents);
      assert.deepEqual(await db.collection("c").get(`k${documents - 1}`), {
        _id: `k${documents - 1}`,
        n: documents - 1,
        payload,
      });
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("db.import of a stream past its in-memory limit (16 Mi characters; 64 Ki here) spills to a temporary file: all stored, and a bad last line still stores nothing", async () => {
  const limit = spillLimit.chars;
  spillLimit.chars = 64 * 1024;
  try {
    const line = (i: number) =>
      `{"col":"c","id":"k${i}","v":{"p":"${
        "x".repeat(1000)
      }"},"c":1,"u":1,"n":1}\n`;
    const count = 170; // about 170 KB
    const stream = (bad: boolean) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          const encoder = new TextEncoder();
          for (let i = 0; i < count; i++) {
            controller.enqueue(encoder.encode(line(i)));
          }
          if (bad) controller.enqueue(encoder.encode("{oops}\n"));
          controller.close();
        },
      });
    await using db = await open();
    await assert.rejects(
      db.import(stream(true)),
      TypeError,
      `Cannot import line ${count + 1}`,
    );
    assert.equal(await db.collection("c").count(), 0);
    assert.equal((await db.import(stream(false))).documents, count);
    assert.equal(await db.collection("c").count(), count);
  } finally {
    spillLimit.chars = limit;
  }
});

Deno.test("importDocuments with our envelope: insert refuses a stored key, merge keeps TTL and tags, replace skips new keys, --collection filters", async () => {
  await using source = await open();
  await source.collection("a").put("x", { n: 1, keep: true }, {
    ttl: 3_600_000,
    tags: ["t"],
  });
  await source.collection("a").put("y", { n: 2 });
  await source.collection("b").put("z", { n: 3 });
  await source.collection("a").createIndex("n");
  let text = "";
  await source.export(
    new WritableStream({
      write: (c) => void (text += new TextDecoder().decode(c)),
    }),
  );
  const input = () => new Blob([text]).stream();
  await using db = await open();
  await db.collection("a").put("x", { old: true, n: 0 });
  const refused = await importDocuments(db, input(), { mode: "insert" })
    .catch((e) => e);
  assert(refused instanceof BadRecordError);
  assert.match(refused.message, /'x' already exists in 'a'/);
  assert.equal(await db.collection("b").count(), 0);
  // replace: only x (stored) is written; y and z are skipped.
  const replaced = await importDocuments(db, input(), { mode: "replace" });
  assert.equal(replaced.format, "envelope");
  assert.deepEqual([replaced.documents, replaced.skipped], [1, 2]);
  assert.deepEqual(await db.collection("a").get("x"), { n: 1, keep: true });
  // merge into a changed x: its fields win, the stored others stay; the
  // TTL and tags come along; only collection a.
  await db.collection("a").put("x", { old: true, n: 0 });
  const merged = await importDocuments(db, input(), {
    mode: "merge",
    collection: "a",
  });
  assert.equal(merged.documents, 2);
  assert.equal(merged.indexes, 1);
  const x = await db.collection("a").getEntry("x");
  assert.deepEqual(x?.value, { old: true, n: 1, keep: true });
  assert.deepEqual(x?.tags, ["t"]);
  assert.equal(typeof x?.expiresAt, "number");
  assert.equal(await db.collection("b").count(), 0);
  assert.deepEqual(
    (await db.collection("a").indexes()).map((i) => i.name),
    ["n_1"],
  );
});
