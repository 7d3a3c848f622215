// The command-line tool (cli.ts), run as a user runs it on real database
// files in a temporary directory, checking stdout, stderr and exit codes.
// Most runs call main() in-process (fast); the ones that need a process of
// their own (the exit code a shell sees, a lock held by another process, a
// real pipe) spawn `deno run cli.ts`. Two tests check what only in-process
// runs can show: progress on a terminal, and the passphrase prompt.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { main } from "../cli.ts";
import { FileStorage } from "../src/storage/file.ts";
import { encodeKey } from "../src/key_codec.ts";

const CLI = new URL("../cli.ts", import.meta.url).href;
const decoder = new TextDecoder();

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly bytes: Uint8Array;
}

/** Every output of the runs, to check that no secret was ever printed. */
const printed: string[] = [];

/**
 * Runs the CLI with `args`; stdin is `input` or nothing (never a terminal),
 * the environment is `env` only (no TETHER_PASSPHRASE, NO_COLOR set). In
 * this process unless `subprocess`.
 */
async function cli(
  args: readonly string[],
  options: {
    env?: Record<string, string>;
    input?: Uint8Array;
    subprocess?: boolean;
  } = {},
): Promise<Run> {
  const run = options.subprocess === true
    ? await spawn(args, options)
    : await inProcess(args, options);
  printed.push(run.stdout, run.stderr);
  return run;
}

async function inProcess(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: Uint8Array },
): Promise<Run> {
  const chunks: Uint8Array[] = [];
  let stderr = "";
  const err = new TextDecoder();
  const code = await main(args, {
    stdout: new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
    stderr: new WritableStream({
      write: (c) => void (stderr += err.decode(c, { stream: true })),
    }),
    stdin: new Blob(
      options.input === undefined ? [] : [options.input as BlobPart],
    ).stream(),
    stdinIsTerminal: false,
    env: (name) => ({ NO_COLOR: "1", ...options.env })[name],
  });
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { code, stdout: decoder.decode(bytes), stderr, bytes };
}

async function spawn(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: Uint8Array },
): Promise<Run> {
  const env = Deno.env.toObject();
  delete env.TETHER_PASSPHRASE;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--unstable-kv", "-A", CLI, ...args],
    env: { ...env, NO_COLOR: "1", ...options.env },
    clearEnv: true,
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(options.input);
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
    bytes: stdout,
  };
}

/** Asserts the exit code, showing the output when it differs. */
function exits(run: Run, code: number): Run {
  assert.equal(
    run.code,
    code,
    `exit ${run.code}, expected ${code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`,
  );
  return run;
}

/** The one-line error of a failed run. */
function error(run: Run): string {
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr: ${run.stderr}`);
  assert.match(lines[0]!, /^tether: /);
  return lines[0]!;
}

const USERS = [
  { _id: "ann", name: "Ann", age: 30, city: "Oslo" },
  { _id: "bob", name: "Bob", age: 20, city: "Rome", tags: ["x", "y"] },
  { _id: "cy", name: "Cy", age: 41, city: "Oslo", bio: "b".repeat(80) },
];

/** A file database with users (indexed) and two items on the database. */
async function sample(path: string): Promise<void> {
  await using db = await open({ path });
  const users = db.collection("users");
  await users.createIndex("age");
  await users.createIndex("city");
  await users.insertMany(USERS);
  await db.put("greeting", "hello", { ttl: 3_600_000, tags: ["t"] });
  await db.put("n", 42);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli: help, and usage errors exit 64", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/app.tdb`;
    await sample(db);
    const [
      help,
      helpCommand,
      commandHelp,
      none,
      unknown,
      badOption,
      noDb,
      badJson,
      badFilter,
      badLimit,
      missing,
      arity,
    ] = await Promise.all([
      cli(["--help"], { subprocess: true }),
      cli(["help", "restore"]),
      cli(["backup", "--help"]),
      cli([]),
      cli(["frobnicate", "--db", db], { subprocess: true }),
      cli(["info", "--db", db, "--frob"]),
      cli(["info"]),
      cli(["find", "users", "{bad", "--db", db]),
      cli(["find", "users", '{"$nope":1}', "--db", db]),
      cli(["find", "users", "--limit", "x", "--db", db]),
      cli(["info", "--db", `${dir}/missing.tdb`], { subprocess: true }),
      cli(["get", "users", "--db", db]),
    ]);
    exits(help, 0);
    for (
      const command of [
        "info",
        "get",
        "find",
        "export",
        "import",
        "backup",
        "restore",
        "verify",
        "compact",
      ]
    ) {
      assert.match(help.stdout, new RegExp(`^  ${command} `, "m"));
    }
    assert.match(help.stdout, /TETHER_PASSPHRASE/);
    assert.match(help.stdout, /^ {2}77 /m);
    assert.equal(help.stderr, "");
    assert.match(exits(helpCommand, 0).stdout, /--mode replace/);
    assert.match(exits(commandHelp, 0).stdout, /--backup-passphrase-env/);
    assert.match(error(exits(none, 64)), /give a command/);
    assert.match(error(exits(unknown, 64)), /unknown command 'frobnicate'/);
    assert.match(error(exits(badOption, 64)), /unknown option '--frob'/);
    assert.match(error(exits(noDb, 64)), /--db <path> or --kv/);
    assert.match(error(exits(badJson, 64)), /not valid JSON/);
    assert.match(error(exits(badFilter, 64)), /\$nope/);
    assert.match(error(exits(badLimit, 64)), /--limit/);
    assert.match(error(exits(missing, 66)), /no such file/);
    assert.match(error(exits(arity, 64)), /missing arguments/);
    // Nothing was created by the failed open.
    await assert.rejects(Deno.stat(`${dir}/missing.tdb`), Deno.errors.NotFound);
  });
});

Deno.test("cli: info, get and find on a file database", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/app.tdb`;
    await sample(db);
    const [infoJson, infoText, present, absent, put, table, lines, sorted] =
      await Promise.all([
        cli(["info", "--db", db, "--json"]),
        cli(["info", "--db", db]),
        cli(["get", "users", "bob", "--db", db]),
        cli(["get", "users", "nobody", "--db", db], { subprocess: true }),
        cli(["--db", db, "get", "default", "greeting"]),
        cli(["find", "users", '{"city":"Oslo"}', "--db", db]),
        cli(["find", "users", '{"city":"Oslo"}', "--json", "--db", db]),
        cli([
          "find",
          "users",
          "--sort",
          '{"age":-1}',
          "--limit",
          "2",
          "--json",
          "--db",
          db,
        ]),
      ]);
    const info = JSON.parse(exits(infoJson, 0).stdout);
    assert.equal(info.storage, "file");
    assert.equal(info.encrypted, false);
    assert.equal(info.compression, false);
    assert.equal(info.documents, 5);
    assert.deepEqual(
      info.collections.map((c: { name: string; count: number }) => [
        c.name,
        c.count,
      ]),
      [["default", 2], ["users", 3]],
    );
    assert.deepEqual(
      info.collections[1].indexes.map((i: { name: string }) => i.name),
      ["age_1", "city_1"],
    );
    assert.equal(info.stats.items, 5);
    assert.equal(info.stats.ttlItems, 1);
    assert.equal(typeof info.stats.storageStats.fileBytes, "number");
    assert(info.garbageRatio >= 0 && info.garbageRatio < 1);

    assert.match(exits(infoText, 0).stdout, /^encrypted +no$/m);
    assert.match(
      infoText.stdout,
      /^users +3 +age_1 \(age\), city_1 \(city\)$/m,
    );
    assert.match(infoText.stdout, /garbage \d+%/);

    assert.deepEqual(JSON.parse(exits(present, 0).stdout), USERS[1]);
    assert.equal(exits(absent, 1).stdout, "");
    assert.match(error(absent), /no document 'nobody' in 'users'/);
    assert.equal(JSON.parse(exits(put, 0).stdout), "hello");

    // The table: a header with the fields, cut to fit, a row per document.
    const rows = exits(table, 0).stdout.trimEnd().split("\n");
    assert.match(rows[0]!, /^_id +name +age +city +bio$/);
    assert.match(rows[1]!, /^-+ +-+/);
    assert.match(rows[2]!, /^ann +Ann +30 +Oslo$/);
    assert.match(rows[3]!, /^cy +Cy +41 +Oslo +b+…$/);
    assert(rows[3]!.length < 80);
    assert.equal(rows[4], "(2 documents)");
    assert.equal(rows.length, 5);

    assert.deepEqual(
      exits(lines, 0).stdout.trimEnd().split("\n").map((l) => JSON.parse(l)),
      [USERS[0], USERS[2]],
    );
    assert.deepEqual(
      exits(sorted, 0).stdout.trimEnd().split("\n").map((l) =>
        JSON.parse(l)._id
      ),
      ["cy", "ann"],
    );
  });
});

Deno.test("cli: export piped into import, and into a file", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/app.tdb`;
    const copy = `${dir}/copy.tdb`;
    await sample(db);
    const exported = exits(
      await cli(["export", "-", "--db", db], { subprocess: true }),
      0,
    );
    assert.equal(exported.bytes.length > 0, true);
    // Two index definitions first, then the five documents.
    assert.equal(exported.stdout.trimEnd().split("\n").length, 7);
    assert.match(exported.stderr, /^exported 5 documents\n$/);
    const imported = exits(
      await cli(["import", "-", "--db", copy], {
        input: exported.bytes,
        subprocess: true,
      }),
      0,
    );
    assert.match(
      imported.stdout,
      /^imported 5 documents and 2 index definitions\n$/,
    );
    const [again, file, bad] = await Promise.all([
      cli(["export", "-", "--db", copy]),
      cli([
        "export",
        `${dir}/users.ndjson`,
        "--collections",
        "users",
        "--db",
        db,
      ]),
      cli(["import", "-", "--db", copy], {
        input: new TextEncoder().encode('{"col":"users","id":"x"}\n'),
      }),
    ]);
    // The same lines (keys, values, times, versions, tags, expiry).
    assert.equal(exits(again, 0).stdout, exported.stdout);
    assert.match(exits(file, 0).stdout, /exported 3 documents to /);
    const text = await Deno.readTextFile(`${dir}/users.ndjson`);
    assert.equal(text.trimEnd().split("\n").length, 5);
    // No temporary file is left beside it.
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.filter((n) => n.includes(".tmp-")), []);
    assert.match(error(exits(bad, 65)), /line 1/);
    {
      await using reopened = await open({ path: copy, readOnly: true });
      assert.equal(await reopened.collection("users").count(), 3);
      // The index definitions came along.
      assert.deepEqual(
        (await reopened.collection("users").indexes()).map((i) => i.name),
        ["age_1", "city_1"],
      );
      const entry = await reopened.getEntry("greeting");
      assert.deepEqual(entry?.tags, ["t"]);
      assert.equal(typeof entry?.expiresAt, "number");
    }
  });
});

Deno.test("cli: backup and restore, and a damaged backup changes nothing", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/app.tdb`;
    const backup = `${dir}/app.tbk`;
    const copy = `${dir}/copy.tdb`;
    await sample(db);
    const made = exits(await cli(["backup", backup, "--db", db]), 0);
    assert.match(made.stdout, /^backed up 5 documents \(.+\) to /);
    exits(await cli(["restore", backup, "--db", copy]), 0);
    {
      await using restored = await open({ path: copy });
      assert.deepEqual(
        await restored.collection("users").find().toArray(),
        USERS,
      );
      assert.equal(await restored.get("n"), 42);
      await restored.put("n", 43);
    }
    // A damaged backup: verified first, so the database is unchanged.
    const bytes = await Deno.readFile(backup);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await Deno.writeFile(`${dir}/bad.tbk`, bytes);
    const [damaged, intoNew, missing] = await Promise.all([
      cli(["restore", `${dir}/bad.tbk`, "--db", copy], { subprocess: true }),
      cli(["restore", `${dir}/bad.tbk`, "--db", `${dir}/new.tdb`]),
      cli(["restore", `${dir}/missing.tbk`, "--db", `${dir}/new2.tdb`]),
    ]);
    assert.match(error(exits(damaged, 65)), /Cannot restore/);
    exits(intoNew, 65);
    assert.match(error(exits(missing, 66)), /no such file/);
    {
      await using unchanged = await open({ path: copy, readOnly: true });
      assert.equal(await unchanged.get("n"), 43);
      assert.equal(await unchanged.collection("users").count(), 3);
    }
    // A failed restore into a new database leaves no database behind.
    for (const name of ["new.tdb", "new2.tdb"]) {
      await assert.rejects(Deno.stat(`${dir}/${name}`), Deno.errors.NotFound);
    }

    // An incremental backup: what changed since, deletions included.
    const since = Date.now();
    {
      await using source = await open({ path: db });
      await source.collection("users").delete("bob");
      await source.collection("users").insert({ _id: "dee", name: "Dee" });
    }
    const increment = exits(
      await cli([
        "backup",
        `${dir}/inc.tbk`,
        "--since",
        new Date(since).toISOString(),
        "--db",
        db,
      ]),
      0,
    );
    assert.match(increment.stdout, /^backed up 2 changes since /);
    const [merged, replaced] = await Promise.all([
      cli(["restore", `${dir}/inc.tbk`, "--db", copy]),
      cli(["restore", `${dir}/inc.tbk`, "--mode", "replace", "--db", db]),
    ]);
    assert.match(
      exits(merged, 0).stdout,
      /^restored 1 document, 1 deletion applied\n$/,
    );
    assert.match(error(exits(replaced, 1)), /only merges/);
    {
      await using restored = await open({ path: copy, readOnly: true });
      assert.deepEqual(
        (await restored.collection("users").find().toArray()).map((u) =>
          (u as { _id: string })._id
        ),
        ["ann", "cy", "dee"],
      );
    }
  });
});

Deno.test("cli: an encrypted database: passphrase from the environment, wrong (77), missing (77), never printed", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/secret.tdb`;
    const passphrase = "correct horse battery staple";
    const backupPassphrase = "a backup secret of its own";
    {
      await using created = await open({
        path: db,
        encryption: { passphrase, iterations: 1000 },
        compression: true,
      });
      await created.collection("users").insertMany(USERS);
    }
    const [ok, named, wrong, missing, got] = await Promise.all([
      cli(["info", "--json", "--db", db], {
        env: { TETHER_PASSPHRASE: passphrase },
      }),
      cli(["info", "--db", db, "--passphrase-env", "MY_SECRET"], {
        env: { MY_SECRET: passphrase },
      }),
      cli(["info", "--db", db], {
        env: { TETHER_PASSPHRASE: "wrong" },
        subprocess: true,
      }),
      cli(["info", "--db", db]),
      cli(["get", "users", "ann", "--db", db], {
        env: { TETHER_PASSPHRASE: passphrase },
      }),
    ]);
    const info = JSON.parse(exits(ok, 0).stdout);
    assert.equal(info.encrypted, true);
    assert.deepEqual(info.compression, { minBytes: 256 });
    assert.match(exits(named, 0).stdout, /^encrypted +yes$/m);
    assert.match(error(exits(wrong, 77)), /passphrase is wrong/);
    assert.match(error(exits(missing, 77)), /encrypted: set TETHER_PASSPHRASE/);
    assert.deepEqual(JSON.parse(exits(got, 0).stdout), USERS[0]);

    // A backup under a passphrase of its own, restored into a plain database.
    const env = {
      TETHER_PASSPHRASE: passphrase,
      BACKUP_SECRET: backupPassphrase,
    };
    exits(
      await cli([
        "backup",
        `${dir}/b.tbk`,
        "--db",
        db,
        "--backup-passphrase-env",
        "BACKUP_SECRET",
      ], { env }),
      0,
    );
    const [withoutSecret, withSecret] = await Promise.all([
      cli(["restore", `${dir}/b.tbk`, "--db", `${dir}/plain1.tdb`]),
      cli([
        "restore",
        `${dir}/b.tbk`,
        "--db",
        `${dir}/plain2.tdb`,
        "--backup-passphrase-env",
        "BACKUP_SECRET",
      ], { env: { BACKUP_SECRET: backupPassphrase } }),
    ]);
    assert.match(
      error(exits(withoutSecret, 77)),
      /--backup-passphrase-env/,
    );
    exits(withSecret, 0);
    {
      await using plain = await open({ path: `${dir}/plain2.tdb` });
      assert.equal(plain.stats().storageStats?.encrypted, undefined);
      assert.deepEqual(await plain.collection("users").get("cy"), USERS[2]);
    }
    for (const text of printed) {
      assert(!text.includes(passphrase), "the passphrase was printed");
      assert(!text.includes(backupPassphrase), "a passphrase was printed");
    }
  });
});

Deno.test("cli: verify, clean (0), with problems on Deno KV (2), and a damaged file (65)", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/app.tdb`;
    await sample(db);
    // A Deno KV database, encrypted, with one stored value changed.
    const kv = `${dir}/app.sqlite`;
    const passphrase = "kv passphrase";
    {
      await using created = await open({
        kv,
        prefix: ["apps", "one"],
        encryption: { passphrase, iterations: 1000 },
      });
      await created.collection("users").insertMany(USERS);
    }
    const kvArgs = ["--kv", kv, "--prefix", "apps,one"];
    const env = { TETHER_PASSPHRASE: passphrase };
    const info = JSON.parse(
      exits(await cli(["info", "--json", ...kvArgs], { env }), 0).stdout,
    );
    assert.equal(info.storage, "kv");
    assert.deepEqual(info.prefix, ["apps", "one"]);
    assert.equal(info.encrypted, true);
    assert.equal(info.collections[0].count, 3);
    {
      const raw = await Deno.openKv(kv);
      try {
        let changed = 0;
        for await (
          const entry of raw.list<Uint8Array>({ prefix: ["apps", "one"] })
        ) {
          const part = entry.key[2];
          if (
            part instanceof Uint8Array &&
            decoder.decode(part).includes("users") &&
            decoder.decode(part).includes("bob")
          ) {
            const value = entry.value.slice();
            value[value.length - 20]! ^= 0x01;
            await raw.set(entry.key, value);
            changed++;
          }
        }
        assert.equal(changed, 1);
      } finally {
        raw.close();
      }
    }
    const [clean, cleanJson, problems, problemsJson] = await Promise.all([
      cli(["verify", "--db", db]),
      cli(["verify", "--db", db, "--json"]),
      cli(["verify", ...kvArgs], { env, subprocess: true }),
      cli(["verify", "--json", ...kvArgs], { env }),
    ]);
    assert.match(
      exits(clean, 0).stdout,
      /^checked \d+ stored values: no problems\n$/,
    );
    assert.deepEqual(JSON.parse(exits(cleanJson, 0).stdout).problems, []);
    const report = JSON.parse(exits(problemsJson, 2).stdout);
    const text = exits(problems, 2).stdout.split("\n");
    // 3 documents, their 3 change feed by-position keys, the feed counter.
    assert.equal(report.checked, 7);
    assert.equal(text[0], "checked 7 stored values: 1 problem");
    assert.match(text[1]!, /^collection +key +problem$/);
    assert.match(text[2]!, /^users +bob +.*MAC/);
    assert.deepEqual(
      report.problems.map((p: { collection: string; key: string }) => [
        p.collection,
        p.key,
      ]),
      [["users", "bob"]],
    );

    // A file database's log is checked when it opens: a flipped byte in the
    // last record's payload is an IntegrityError.
    const bytes = await Deno.readFile(db);
    bytes[bytes.length - 8]! ^= 0xff;
    await Deno.writeFile(db, bytes);
    const [damaged, damagedJson] = await Promise.all([
      cli(["verify", "--db", db]),
      cli(["verify", "--db", db, "--json"]),
    ]);
    assert.match(error(exits(damaged, 65)), /damaged/);
    assert.match(damaged.stdout, /^cannot open: .*damaged/);
    assert.match(damaged.stdout, /^ {2}bytes \d+ to \d+: /m);
    // --json: the report on stdout all the same.
    const found = JSON.parse(exits(damagedJson, 65).stdout);
    assert.equal(found.opens, false);
    assert.match(found.error, /damaged at byte \d+/);
    assert.equal(found.damagedRanges.length, 1);
    assert.deepEqual(Object.keys(found.problems[0]).sort(), [
      "bytes",
      "collection",
      "key",
      "offset",
      "problem",
    ]);
    assert.equal(found.problems[0].offset, found.damagedRanges[0].offset);
  });
});

/**
 * Rewrites one document's stored value through the raw file storage: a
 * valid log frame holding an envelope that fails its MAC.
 */
async function flipRecord(path: string, collection: string, id: string) {
  const raw = await FileStorage.open(path);
  try {
    const key = encodeKey(["d", collection, id]);
    const value = (await raw.get(key))!.value.slice();
    value[25]! ^= 0x01;
    const result = await raw.commit({ sets: [{ key, value }] });
    assert(result.ok);
    await result.durable;
  } finally {
    await raw.close();
  }
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    await Deno.readFile(path),
  );
  return Array.from(new Uint8Array(digest)).join(",");
}

Deno.test("cli: repair of an encrypted database with a bad record (2, text and --json), verify --json on it (65), a clean repair (0)", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/app.tdb`;
    const passphrase = "repair passphrase";
    const env = { TETHER_PASSPHRASE: passphrase };
    {
      await using created = await open({
        path: db,
        encryption: { passphrase, iterations: 1000 },
      });
      const users = created.collection("users");
      await users.createIndex("age");
      await users.insertMany(USERS);
      await created.put("greeting", "hello", { ttl: 3_600_000, tags: ["t"] });
      await created.put("n", 42);
    }
    await flipRecord(db, "users", "bob");
    const before = await sha256(db);

    const [verifyJson, verifyText, text, json, noSecret] = await Promise.all([
      cli(["verify", "--json", "--db", db], { env }),
      cli(["verify", "--db", db], { env }),
      cli(["repair", "--db", db, "--out", `${dir}/new.tdb`], { env }),
      cli(["repair", "--db", db, "--out", `${dir}/new2.tdb`, "--json"], {
        env,
      }),
      cli(["repair", "--db", db, "--out", `${dir}/new3.tdb`]),
    ]);
    // verify: the database does not open, and says what is wrong on stdout.
    const verified = JSON.parse(exits(verifyJson, 65).stdout);
    assert.equal(verified.opens, false);
    assert.match(verified.error, /MAC/);
    assert.deepEqual(
      verified.problems.map((p: { collection: string; key: string }) => [
        p.collection,
        p.key,
      ]),
      [["users", "bob"]],
    );
    assert.match(error(verifyJson), /MAC/);
    assert.match(exits(verifyText, 65).stdout, /^ {2}'bob' in 'users': .*MAC/m);

    const lines = exits(text, 2).stdout.split("\n");
    assert.equal(
      lines[0],
      `repaired ${db} into ${dir}/new.tdb: copied 4 documents and 1 index definition`,
    );
    assert.equal(lines[1], "lost 1:");
    assert.match(lines[2]!, /^ {2}'bob' in 'users': .*MAC/);
    const report = JSON.parse(exits(json, 2).stdout);
    assert.equal(report.copied, 4);
    assert.equal(report.indexes, 1);
    assert.deepEqual(
      report.lost.map((l: { collection: string; key: string }) => [
        l.collection,
        l.key,
      ]),
      [["users", "bob"]],
    );
    assert.match(error(exits(noSecret, 77)), /TETHER_PASSPHRASE/);
    assert.equal(await sha256(db), before, "the original is unchanged");

    const [again, kv, noOut, infoNew, verifyNew] = await Promise.all([
      cli(["repair", "--db", db, "--out", `${dir}/new.tdb`], { env }),
      cli(["repair", "--kv", `${dir}/x.sqlite`, "--out", `${dir}/x.tdb`]),
      cli(["repair", "--db", db]),
      cli(["info", "--json", "--db", `${dir}/new.tdb`], { env }),
      cli(["verify", "--db", `${dir}/new.tdb`], { env }),
    ]);
    assert.match(error(exits(again, 64)), /already exists/);
    assert.match(error(exits(kv, 64)), /--db/);
    assert.match(error(exits(noOut, 64)), /--out/);
    const info = JSON.parse(exits(infoNew, 0).stdout);
    assert.equal(info.encrypted, true);
    assert.equal(info.documents, 4);
    exits(verifyNew, 0);
    {
      await using copy = await open({
        path: `${dir}/new.tdb`,
        encryption: { passphrase },
      });
      const users = copy.collection("users");
      assert.deepEqual(await users.get("ann"), USERS[0]);
      assert.equal(await users.get("bob"), null);
      assert.deepEqual((await users.indexes()).map((i) => i.name), ["age_1"]);
      const entry = await copy.getEntry("greeting");
      assert.deepEqual(entry?.tags, ["t"]);
      assert.ok(entry?.expiresAt !== undefined);
    }

    // A clean database: nothing lost, exit 0.
    await sample(`${dir}/clean.tdb`);
    const clean = await cli([
      "repair",
      "--db",
      `${dir}/clean.tdb`,
      "--out",
      `${dir}/clean2.tdb`,
    ]);
    assert.match(
      exits(clean, 0).stdout,
      /copied 5 documents.*\nnothing lost\n$/,
    );
    for (const t of printed) {
      assert(!t.includes(passphrase), "the passphrase was printed");
    }
  });
});

Deno.test("cli: info and verify say when open left out a torn tail, and exit 65 on a compacted file cut short", async () => {
  await withDir(async (dir) => {
    const db = `${dir}/app.tdb`;
    await sample(db);
    // The last commit cut short, as by a crash during its write.
    const bytes = await Deno.readFile(db);
    await Deno.writeFile(db, bytes.subarray(0, bytes.length - 5));
    const [info, json, verify] = await Promise.all([
      cli(["info", "--db", db]),
      cli(["info", "--json", "--db", db]),
      cli(["verify", "--db", db]),
    ]);
    assert.match(
      exits(info, 0).stdout,
      /^torn tail +\d+ B of an unfinished last commit .*left out$/m,
    );
    assert.ok(JSON.parse(exits(json, 0).stdout).tornBytes > 0);
    assert.match(exits(verify, 0).stdout, /^torn tail: \d+ B/m);

    // A compacted file cut short is damage, not a torn tail: neither info
    // nor verify exits 0, and verify --json still reports on stdout.
    const cut = `${dir}/cut.tdb`;
    {
      await using created = await open({ path: cut });
      for (let i = 0; i < 200; i++) await created.put(`k${i}`, { i });
      await created.compact();
    }
    const whole = await Deno.readFile(cut);
    await Deno.writeFile(cut, whole.subarray(0, whole.length >> 1));
    const [cutInfo, cutVerify] = await Promise.all([
      cli(["info", "--db", cut]),
      cli(["verify", "--json", "--db", cut]),
    ]);
    assert.match(error(exits(cutInfo, 65)), /damaged|cut/);
    const report = JSON.parse(exits(cutVerify, 65).stdout);
    assert.equal(report.opens, false);
    assert.ok(report.problems.length > 0);
    assert.deepEqual(
      await Deno.readFile(cut),
      whole.subarray(0, whole.length >> 1),
    );
  });
});

Deno.test("cli: compact (0), and a database locked by another writer (75)", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/app.tdb`;
    await sample(path);
    {
      await using db = await open({ path });
      for (let i = 0; i < 50; i++) await db.put("counter", i);
    }
    const compacted = exits(await cli(["compact", "--db", path]), 0);
    assert.match(compacted.stdout, /^compacted .* -> /);
    await using holder = await open({ path });
    const [locked, reading] = await Promise.all([
      cli(["compact", "--db", path, "--lock-timeout", "100"], {
        subprocess: true,
      }),
      cli(["get", "default", "counter", "--db", path]),
    ]);
    assert.match(error(exits(locked, 75)), /another writer/);
    // Reading commands do not take the lock.
    assert.equal(JSON.parse(exits(reading, 0).stdout), 49);
    assert.equal(await holder.get("counter"), 49);
  });
});

/** Collects what is written to it, as text. */
function sink(): { stream: WritableStream<Uint8Array>; text: () => string } {
  let text = "";
  const textDecoder = new TextDecoder();
  return {
    stream: new WritableStream({
      write(chunk) {
        text += textDecoder.decode(chunk, { stream: true });
      },
    }),
    text: () => text,
  };
}

Deno.test("cli in-process: progress on a terminal's stderr only", async () => {
  await withDir(async (dir) => {
    const ndjson = await Deno.readFile(
      await (async () => {
        const path = `${dir}/app.tdb`;
        await sample(path);
        const file = `${dir}/all.ndjson`;
        const out = sink();
        assert.equal(
          await main(["export", file, "--db", path], { stdout: out.stream }),
          0,
        );
        assert.match(out.text(), /^exported 5 documents to /);
        return file;
      })(),
    );
    // Stdin that takes 350 ms to deliver, so the indicator is drawn.
    const slow = () =>
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((r) => setTimeout(r, 350));
          controller.enqueue(ndjson);
          controller.close();
        },
      });
    for (const terminal of [true, false]) {
      const out = sink();
      const err = sink();
      const code = await main(
        ["import", "-", "--db", `${dir}/copy-${terminal}.tdb`],
        {
          stdin: slow(),
          stdout: out.stream,
          stderr: err.stream,
          stderrIsTerminal: terminal,
        },
      );
      assert.equal(code, 0, err.text());
      assert.equal(
        out.text(),
        "imported 5 documents and 2 index definitions\n",
      );
      if (terminal) {
        const erase = "\x1b[K";
        // A spinner while stdin is read (its size unknown).
        assert.match(err.text(), /^\r[|/\\-] importing \d+\.\d s/);
        assert(err.text().includes(` s${erase}\r`), JSON.stringify(err.text()));
        assert(err.text().endsWith(`\r${erase}`), JSON.stringify(err.text()));
      } else {
        assert.equal(err.text(), "");
      }
    }
  });
});

Deno.test("cli in-process: asks a terminal for a missing passphrase", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/secret.tdb`;
    const passphrase = "asked for, never shown";
    {
      await using db = await open({
        path,
        encryption: { passphrase, iterations: 1000 },
      });
      await db.put("k", { a: 1 });
    }
    const run = async (answers: (string | null)[]) => {
      const out = sink();
      const err = sink();
      const prompts: string[] = [];
      const code = await main(["get", "default", "k", "--db", path], {
        stdout: out.stream,
        stderr: err.stream,
        stdinIsTerminal: true,
        env: () => undefined,
        prompt: (message) => {
          prompts.push(message);
          return Promise.resolve(answers.shift() ?? null);
        },
      });
      assert(!out.text().includes(passphrase));
      assert(!err.text().includes(passphrase));
      return { code, out: out.text(), err: err.text(), prompts };
    };
    const right = await run([passphrase]);
    assert.equal(right.code, 0, right.err);
    assert.deepEqual(JSON.parse(right.out), { a: 1 });
    assert.deepEqual(right.prompts, [`Passphrase for '${path}': `]);
    const retried = await run(["wrong", passphrase]);
    assert.equal(retried.code, 0);
    assert.match(retried.err, /passphrase is wrong; try again/);
    const wrong = await run(["wrong", "wrong", "wrong"]);
    assert.equal(wrong.code, 77);
    assert.equal(wrong.prompts.length, 3);
    const none = await run([null]);
    assert.equal(none.code, 77);
    assert.match(none.err, /no passphrase given/);
  });
});
