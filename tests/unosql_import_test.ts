// importUnosql against the real files unosql wrote (shared/fixtures/unosql):
// every set imports with the records of its expected.json; damaged copies
// give an IntegrityError naming file, offset and check, and change nothing;
// a wrong or missing key is a WrongKeyError.

import assert from "node:assert/strict";
import {
  type Database,
  importUnosql,
  IntegrityError,
  open,
  type UnosqlImportOptions,
  WrongKeyError,
} from "../mod.ts";

const FIXTURES = new URL("../../shared/fixtures/unosql/", import.meta.url)
  .pathname;

interface Expected {
  fixture_set: string;
  kind: string;
  backup_file?: string;
  encryption: null | { key_ascii: string; iterations: number };
  collections: Record<string, Record<string, unknown>[]>;
}

/** JSON.parse keeping integers beyond 2^53 as their digits. */
function parseExact(text: string): unknown {
  return JSON.parse(
    text,
    function (_k, v: unknown, ctx?: { source?: string }) {
      return typeof v === "number" && !Number.isSafeInteger(v) &&
          ctx?.source !== undefined && /^-?\d+$/.test(ctx.source)
        ? ctx.source
        : v;
    } as (this: unknown, key: string, value: unknown) => unknown,
  );
}

async function expected(set: string): Promise<Expected> {
  return parseExact(
    await Deno.readTextFile(`${FIXTURES}${set}/expected.json`),
  ) as Expected;
}

function sourceOf(set: string, e: Expected): string {
  return e.backup_file === undefined
    ? `${FIXTURES}${set}`
    : `${FIXTURES}${set}/${e.backup_file}`;
}

function keyOptions(e: Expected): UnosqlImportOptions {
  return e.encryption === null
    ? {}
    : { key: e.encryption.key_ascii, iterations: e.encryption.iterations };
}

/** Asserts that db holds exactly the records of expected.json. */
async function assertHolds(db: Database, e: Expected): Promise<void> {
  const set = e.fixture_set;
  const names = Object.entries(e.collections)
    .filter(([, records]) => records.length > 0).map(([c]) => c).sort();
  assert.deepEqual(await db.collections(), names, set);
  for (const [name, records] of Object.entries(e.collections)) {
    const c = db.collection(name);
    assert.equal(await c.count(), records.length, `${set} ${name}`);
    for (const record of records) {
      const { id, timestamp, version, ...fields } = record;
      const entry = await c.getEntry(String(id));
      assert(entry !== null, `${set} ${name} ${id}`);
      assert.deepEqual(entry.value, { _id: String(id), ...fields }, set);
      assert.equal(entry.version, version, `${set} ${name} ${id}`);
      assert.equal(entry.updatedAt, (timestamp as number) * 1000, set);
    }
  }
}

const MODES = ["plain", "compressed", "encrypted", "encrypted_compressed"];
const KINDS = ["", "backup_full/", "backup_incremental/"];

for (const version of ["current", "legacy"]) {
  Deno.test(`unosql import: every ${version} set gives its expected records`, async () => {
    // The sets run side by side (key stretching dominates; it is async).
    await Promise.all(
      KINDS.flatMap((kind) => MODES.map((mode) => `${version}/${kind}${mode}`))
        .map(async (set) => {
          const e = await expected(set);
          await using db = await open();
          const report = await importUnosql(
            db,
            sourceOf(set, e),
            keyOptions(e),
          );
          const total = Object.values(e.collections)
            .reduce((n, r) => n + r.length, 0);
          assert.equal(report.documents, total, set);
          assert.equal(
            report.kind,
            e.kind === "database" ? "database" : "backup",
          );
          assert.deepEqual(report.damaged, [], set);
          assert.equal(
            report.files.every((f) =>
              f.encrypted === set.includes("encrypted") &&
              f.compressed === set.includes("compressed")
            ),
            true,
            set,
          );
          if (version === "current" || set.includes("encrypted")) {
            assert.equal(report.format, version, set);
          }
          await assertHolds(db, e);
        }),
    );
  });
}

Deno.test("unosql import: 64-bit integers stay exact as strings, or round as numbers", async () => {
  const set = "current/plain";
  await using db = await open();
  const report = await importUnosql(db, `${FIXTURES}${set}`, {
    collections: ["app_config"],
  });
  assert.deepEqual(report.bigIntegers, [
    { collection: "app_config", key: "3", path: "value" },
  ]);
  assert.deepEqual(
    (await db.collection("app_config").get("3") as { value: unknown }).value,
    "18446744073709551557",
  );
  assert.deepEqual(await db.collections(), ["app_config"]);
  await using db2 = await open();
  await importUnosql(db2, `${FIXTURES}${set}`, {
    collections: ["app_config"],
    bigIntegers: "number",
    epoch: 2000,
  });
  const entry = await db2.collection("app_config").getEntry("3");
  assert.equal((entry?.value as { value: number }).value, 18446744073709552000);
  assert.equal(entry?.updatedAt, (1748000031 + 946684800) * 1000);
});

/** A writable copy of a fixture set. */
async function copySet(set: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "unosql-" });
  for await (const f of Deno.readDir(`${FIXTURES}${set}`)) {
    await Deno.copyFile(`${FIXTURES}${set}/${f.name}`, `${dir}/${f.name}`);
    await Deno.chmod(`${dir}/${f.name}`, 0o644);
  }
  return dir;
}

async function edit(
  path: string,
  change: (b: Uint8Array) => Uint8Array,
): Promise<void> {
  await Deno.writeFile(path, change(await Deno.readFile(path)));
}

async function sha256(b: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>),
  );
}

/** A db holding one document, to show a failed import changes nothing. */
async function seeded(): Promise<Database> {
  const db = await open();
  await db.collection("users").put("keep", { n: 1 });
  return db;
}

async function assertUnchanged(db: Database): Promise<void> {
  assert.deepEqual(await db.collections(), ["users"]);
  assert.equal(await db.collection("users").count(), 1);
}

async function rejects(
  p: Promise<unknown>,
  type: new (...a: never[]) => Error,
  ...parts: string[]
): Promise<string> {
  const e = await p.then(() => undefined, (e: unknown) => e);
  assert(e instanceof type, `expected ${type.name}, got ${e}`);
  for (const part of parts) {
    assert(e.message.includes(part), `'${part}' not in: ${e.message}`);
  }
  return e.message;
}

Deno.test("unosql import: a flipped byte in a current file fails its SHA-256 and imports nothing", async () => {
  const dir = await copySet("current/plain");
  await edit(`${dir}/greenhouse_users.db`, (b) => {
    b[700]! ^= 0x01;
    return b;
  });
  await using db = await seeded();
  await rejects(
    importUnosql(db, dir),
    IntegrityError,
    "greenhouse_users.db",
    "collection 'users'",
    "offset 0",
    "check: checksum",
    "nothing was imported",
  );
  await assertUnchanged(db);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: a truncated current backup fails its SHA-256", async () => {
  const dir = await copySet("current/backup_full/compressed");
  await edit(`${dir}/greenhouse_backup.db`, (b) => b.subarray(0, 1000));
  await using db = await seeded();
  await rejects(
    importUnosql(db, `${dir}/greenhouse_backup.db`),
    IntegrityError,
    "greenhouse_backup.db",
    "check: checksum",
    "bytes 32..1000",
  );
  await assertUnchanged(db);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: a damaged ciphertext under a valid checksum fails the envelope MAC at offset 48", async () => {
  const dir = await copySet("current/encrypted");
  await edit(`${dir}/greenhouse_readings.db`, (b) => {
    b[200]! ^= 0x80;
    return b;
  });
  const file = await Deno.readFile(`${dir}/greenhouse_readings.db`);
  file.set(await sha256(file.subarray(32)), 0);
  await Deno.writeFile(`${dir}/greenhouse_readings.db`, file);
  await using db = await seeded();
  await rejects(
    importUnosql(db, dir, { key: "tether-fixture-public-key-32byte" }),
    IntegrityError,
    "greenhouse_readings.db",
    "offset 48",
    "check: mac",
  );
  await assertUnchanged(db);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: legacy files (no checksum) report the zlib trailer or the JSON byte that is wrong", async () => {
  const dir = await copySet("legacy/compressed");
  await edit(`${dir}/greenhouse_users.db`, (b) => b.subarray(0, b.length - 7));
  await using db = await seeded();
  await rejects(
    importUnosql(db, dir),
    IntegrityError,
    "greenhouse_users.db",
    "check: zlib",
    "Adler-32",
  );
  await assertUnchanged(db);
  await Deno.remove(dir, { recursive: true });

  const plain = await copySet("legacy/plain");
  let at = -1;
  await edit(`${plain}/greenhouse_readings.db`, (b) => {
    at = b.indexOf(0x3a, 500); // a ':' becomes ';'
    b[at] = 0x3b;
    return b;
  });
  await rejects(
    importUnosql(db, plain),
    IntegrityError,
    "greenhouse_readings.db",
    `offset ${at}`,
    "check: json",
    "expected ':'",
  );
  await assertUnchanged(db);
  await Deno.remove(plain, { recursive: true });
});

Deno.test("unosql import: onDamage skip imports the intact files and lists the lost one", async () => {
  const dir = await copySet("current/compressed");
  await edit(`${dir}/greenhouse_users.db`, (b) => b.subarray(0, 600));
  await using db = await open();
  const report = await importUnosql(db, dir, { onDamage: "skip" });
  assert.deepEqual(report.collections, { app_config: 5, readings: 59 });
  assert.equal(report.damaged.length, 1);
  const [d] = report.damaged;
  assert.equal(d?.file, `${dir}/greenhouse_users.db`);
  assert.equal(d?.collection, "users");
  assert.equal(d?.check, "checksum");
  assert.equal(d?.lost, "file");
  assert.deepEqual(await db.collections(), ["app_config", "readings"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: bad records are named with their position and offset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "unosql-" });
  const text = '[{"a": 1, "id": 1, "timestamp": 5, "version": 1}, ' +
    '{"a": 2, "id": 2, "timestamp": 6}, ' +
    '{"a": 3, "id": 1, "timestamp": 7, "version": 1}]';
  await Deno.writeTextFile(`${dir}/farm_log.db`, text);
  await using db = await seeded();
  await rejects(
    importUnosql(db, dir, { name: "farm" }),
    IntegrityError,
    "farm_log.db",
    `offset ${text.indexOf('{"a": 2')}`,
    "record 1 has no version",
    "and 1 more problem",
  );
  await assertUnchanged(db);
  const report = await importUnosql(db, dir, {
    name: "farm",
    onDamage: "skip",
  });
  assert.deepEqual(
    report.damaged.map((d) => [d.record, d.offset, d.lost]),
    [[1, text.indexOf('{"a": 2'), "record"], [
      2,
      text.indexOf('{"a": 3'),
      "record",
    ]],
  );
  assert.match(report.damaged[1]!.message, /id 1 of record 0/);
  assert.deepEqual(await db.collection("log").get("1"), { _id: "1", a: 1 });
  assert.equal(await db.collection("log").count(), 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: a wrong or missing key is a WrongKeyError", async () => {
  await using db = await seeded();
  const current = `${FIXTURES}current/encrypted_compressed`;
  await rejects(
    importUnosql(db, current),
    WrongKeyError,
    "is encrypted",
  );
  await rejects(
    importUnosql(db, current, {
      key: "tether-fixture-public-key-32byte",
      iterations: 1000, // it was written with 250
    }),
    WrongKeyError,
    "key, salt or iteration count is wrong",
  );
  const legacy = `${FIXTURES}legacy/encrypted_compressed`;
  await rejects(
    importUnosql(db, legacy, { key: "not-the-key-16by", iterations: 2000 }),
    WrongKeyError,
    "does not open",
  );
  await rejects(
    importUnosql(
      db,
      `${FIXTURES}legacy/backup_full/encrypted_compressed/greenhouse_backup.db`,
    ),
    WrongKeyError,
    "is encrypted",
  );
  await rejects(
    importUnosql(
      db,
      `${FIXTURES}legacy/backup_full/encrypted_compressed/greenhouse_backup.db`,
      { key: "not-the-key-16by", iterations: 2000 },
    ),
    WrongKeyError,
    "MAC does not match",
  );
  await rejects(
    importUnosql(
      db,
      `${FIXTURES}legacy/backup_full/encrypted_compressed/greenhouse_backup.db`,
      { key: "tether-fixture-public-key-32byte" },
    ),
    WrongKeyError,
    "needs a 16-byte key",
  );
  await assertUnchanged(db);
});

Deno.test("unosql import: caller mistakes are TypeError/RangeError before anything changes", async () => {
  await using db = await seeded();
  const plain = `${FIXTURES}current/plain`;
  await rejects(
    importUnosql(db, plain, { nope: 1 } as UnosqlImportOptions),
    TypeError,
    "unknown option 'nope'",
  );
  await rejects(
    importUnosql(db, plain, { key: "short" }),
    RangeError,
    "5 bytes",
  );
  await rejects(
    importUnosql(db, plain, { iterations: 0 }),
    RangeError,
    "iterations",
  );
  await rejects(
    importUnosql(db, plain, { collections: ["users", "nope"] }),
    TypeError,
    "collection 'nope' is not in",
  );
  await rejects(
    importUnosql(db, `${plain}/missing`),
    Deno.errors.NotFound,
    "does not exist",
  );
  const dir = await copySet("current/backup_full/encrypted");
  await Deno.remove(`${dir}/greenhouse_salt.db`);
  await rejects(
    importUnosql(db, `${dir}/greenhouse_backup.db`, {
      key: "tether-fixture-public-key-32byte",
    }),
    TypeError,
    "no salt file",
  );
  await assertUnchanged(db);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: the report lists the files left out and why", async () => {
  await using db = await open();
  const report = await importUnosql(db, `${FIXTURES}current/plain`, {
    collections: ["users"],
  });
  assert.equal(report.name, "greenhouse");
  const reasons = Object.fromEntries(
    report.ignored.map((
      i,
    ) => [i.file.slice(i.file.lastIndexOf("/") + 1), i.reason]),
  );
  assert.deepEqual(Object.keys(reasons).sort(), [
    "expected.json",
    "greenhouse_app_config.db",
    "greenhouse_errors.log",
    "greenhouse_readings.db",
    "greenhouse_readings.idx",
    "greenhouse_users.idx",
  ]);
  assert.match(reasons["greenhouse_readings.db"]!, /options\.collections/);
  assert.match(reasons["greenhouse_users.idx"]!, /index file/);
});

Deno.test("unosql import: one collection file by its path; a backup inside a directory is left out", async () => {
  await using db = await open();
  const file = `${FIXTURES}current/plain/greenhouse_users.db`;
  await rejects(importUnosql(db, file), TypeError, "pass options.name");
  const report = await importUnosql(db, file, { name: "greenhouse" });
  assert.equal(report.kind, "collection");
  assert.deepEqual(report.collections, { users: 23 });
  const legacy = await importUnosql(
    db,
    `${FIXTURES}legacy/compressed/greenhouse_readings.db`,
    { name: "greenhouse" },
  );
  assert.deepEqual([legacy.format, legacy.collections], ["legacy", {
    readings: 59,
  }]);

  const dir = await copySet("current/plain");
  await Deno.copyFile(
    `${FIXTURES}current/backup_full/plain/greenhouse_backup.db`,
    `${dir}/greenhouse_backup.db`,
  );
  await using db2 = await open();
  const r = await importUnosql(db2, dir);
  assert.deepEqual(r.collections, { app_config: 5, readings: 59, users: 23 });
  const left = r.ignored.find((i) => i.file.endsWith("greenhouse_backup.db"));
  assert.match(left?.reason ?? "", /holds a backup/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: float timestamps (unix port) keep their milliseconds; a record @tether/db refuses is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "unosql-" });
  await Deno.writeTextFile(
    `${dir}/dev_a.db`,
    '[{"t": 1, "id": 7, "timestamp": 1748000000.123, "version": 1}]',
  );
  await using db = await open();
  await importUnosql(db, dir, { name: "dev" });
  assert.equal(
    (await db.collection("a").getEntry("7"))?.updatedAt,
    1748000000123,
  );
  const id = "x".repeat(1100);
  await Deno.writeTextFile(
    `${dir}/dev_a.db`,
    `[{"t": 1, "id": 1, "timestamp": 1, "version": 1}, {"t": 2, "id": "${id}", "timestamp": 1, "version": 1}]`,
  );
  await rejects(
    importUnosql(db, dir, { name: "dev" }),
    RangeError,
    `the record with id '${id}' of collection 'a' in '${dir}/dev_a.db'`,
  );
  assert.equal(await db.collection("a").count(), 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: one legacy envelope failing its MAC while the others open is damage at offset 16", async () => {
  // legacy/encrypted_compressed holds zlib(envelope) files; store one
  // envelope uncompressed with a flipped ciphertext byte.
  const dir = await copySet("legacy/encrypted_compressed");
  const path = `${dir}/greenhouse_users.db`;
  const inflated = new Uint8Array(
    await new Response(
      new Blob([await Deno.readFile(path)]).stream().pipeThrough(
        new DecompressionStream("deflate"),
      ),
    ).arrayBuffer(),
  );
  inflated[100]! ^= 0x04;
  await Deno.writeFile(path, inflated);
  await using db = await seeded();
  const options = { key: "pub-legacy-key16", iterations: 2000 };
  await rejects(
    importUnosql(db, dir, options),
    IntegrityError,
    "greenhouse_users.db",
    "offset 16",
    "check: mac",
  );
  await assertUnchanged(db);
  const report = await importUnosql(db, dir, { ...options, onDamage: "skip" });
  assert.deepEqual(report.collections, { app_config: 5, readings: 59 });
  assert.deepEqual(
    report.damaged.map((d) => [d.collection, d.check, d.offset]),
    [["users", "mac", 16]],
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unosql import: random flips and truncations give IntegrityError (or, in unchecked legacy text, intact JSON), never another error", async () => {
  const rounds = Deno.env.get("TETHER_TORTURE") ? 2000 : 30;
  let seed = 0x2545f491;
  const random = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const sets: [string, string, UnosqlImportOptions][] = [
    ["current/plain", "greenhouse_users.db", {}],
    ["current/compressed", "greenhouse_readings.db", {}],
    ["legacy/compressed", "greenhouse_users.db", {}],
    ["legacy/plain", "greenhouse_app_config.db", {}],
    ["current/encrypted", "greenhouse_app_config.db", {
      key: "tether-fixture-public-key-32byte",
    }],
  ];
  const dirs = await Promise.all(sets.map(([set]) => copySet(set)));
  const originals = await Promise.all(
    sets.map(([, file], i) => Deno.readFile(`${dirs[i]}/${file}`)),
  );
  for (let round = 0; round < rounds; round++) {
    const i = random(sets.length);
    const [set, file, options] = sets[i]!;
    const bytes = originals[i]!.slice();
    const damaged = random(4) === 0
      ? bytes.subarray(0, random(bytes.length))
      : (bytes[random(bytes.length)]! ^= 1 << random(8), bytes);
    await Deno.writeFile(`${dirs[i]}/${file}`, damaged);
    await using db = await open();
    const e = await importUnosql(db, dirs[i]!, {
      collections: [file.slice("greenhouse_".length, -3)],
      ...options,
    }).then(() => undefined, (e: unknown) => e);
    if (e === undefined) {
      // Only legacy plain text carries no check: a flip inside a value.
      assert.equal(set, "legacy/plain", `round ${round}: ${set} imported`);
    } else {
      assert(e instanceof IntegrityError, `round ${round} ${set}: ${e}`);
      assert.match(e.message, /check: \w+/);
    }
  }
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
});
