// Several real processes share one Deno KV file: writers
// (tests/fixtures/kv_hammer.ts) open it at once and race on the same
// documents and the same unique values, then this process opens it and checks
// that no update was lost, that the unique index held, and that every index
// entry agrees with the documents (read raw, through the storage, and through
// queries that use the index).
//
// Every assertion is on counts the writers report, never on timing.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { decodeKey, encodeKey } from "../src/key_codec.ts";
import { decodeIndexKey, encodeIndexKey } from "../src/index_key_codec.ts";
import { KvStorage } from "../src/storage/kv.ts";
import { decodeRecord, type StoredRecord } from "../src/value_codec.ts";
import {
  type Counter,
  type CounterReport,
  EMAILS,
  MAX_RETRIES,
  type User,
  type UsersReport,
} from "./fixtures/kv_hammer.ts";

const HAMMER = new URL("./fixtures/kv_hammer.ts", import.meta.url).href;

/** Writer processes per test. */
const PROCESSES = 3;
/**
 * Increments per writer: 150 (a few hundred commits refused by a version
 * check among the three), 300 under `deno task torture`.
 */
const INCREMENTS = Deno.env.get("TETHER_TORTURE") === "1" ? 300 : 150;
/** Moves per writer before each of its inserts. */
const MOVES_PER_INSERT = 5;
/** A writer that takes longer than this is killed (not an assertion). */
const WATCHDOG_MS = 60_000;

interface Finished {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Writer {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  /** Resolves when the writer printed "ready" (rejects if it exits first). */
  readonly ready: Promise<void>;
  /** Sends "go" and closes its stdin. */
  go(): Promise<void>;
  readonly finished: Promise<Finished>;
}

function startWriter(
  path: string,
  mode: "counter" | "users",
  ops: number,
  seed: number,
  name: string,
): Writer {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-kv",
      "--allow-read",
      "--allow-write",
      HAMMER,
      path,
      mode,
      String(ops),
      String(seed),
      name,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let onReady: () => void = () => {};
  const readyLine = new Promise<void>((resolve) => onReady = resolve);
  const reading = (async () => {
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      stdout += chunk;
      if (stdout.split("\n").includes("ready")) onReady();
    }
  })();
  const stderr = new Response(child.stderr).text();
  const finished = Promise.all([child.status, stderr, reading]).then((
    [status, stderr],
  ) => ({ code: status.code, signal: status.signal, stdout, stderr }));
  const ready = Promise.race([
    readyLine,
    finished.then((f) => {
      if (!f.stdout.split("\n").includes("ready")) {
        throw new Error(
          `writer ${name} exited (code ${f.code}) before it was ready: ${f.stderr}`,
        );
      }
    }),
  ]);
  // Handled by whoever awaits `ready`; no unhandled rejection meanwhile.
  ready.catch(() => {});
  const input = child.stdin.getWriter();
  return {
    name,
    child,
    ready,
    finished,
    go: async () => {
      await input.write(new TextEncoder().encode("go\n"));
      await input.close();
    },
  };
}

/**
 * Starts `PROCESSES` writers, lets them go together once all are ready, and
 * returns their reports (each writer's last stdout line).
 */
async function hammer<R>(
  path: string,
  mode: "counter" | "users",
  ops: number,
): Promise<R[]> {
  const writers: Writer[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    writers.push(startWriter(path, mode, ops, 1000 + i, `w${i}`));
  }
  let timedOut = false;
  const watchdog = setTimeout(() => {
    timedOut = true;
    for (const w of writers) {
      try {
        w.child.kill("SIGKILL");
      } catch { /* already exited */ }
    }
  }, WATCHDOG_MS);
  try {
    try {
      await Promise.all(writers.map((w) => w.ready));
      await Promise.all(writers.map((w) => w.go()));
    } catch (e) {
      for (const w of writers) {
        try {
          w.child.kill("SIGKILL");
        } catch { /* already exited */ }
      }
      await Promise.allSettled(writers.map((w) => w.finished));
      throw e;
    }
    const finished = await Promise.all(writers.map((w) => w.finished));
    assert.ok(!timedOut, `the writers took over ${WATCHDOG_MS} ms: killed`);
    const failed = finished.flatMap((f, i) =>
      f.code === 0 ? [] : [
        `writer w${i} failed (code ${f.code}, signal ${f.signal}):\n${f.stderr}\nstdout:\n${f.stdout}`,
      ]
    );
    assert.equal(
      failed.length,
      0,
      `${failed.length} of ${PROCESSES} writers failed:\n${failed.join("\n")}`,
    );
    return finished.map((f) => {
      const lines = f.stdout.trim().split("\n");
      return JSON.parse(lines[lines.length - 1]!) as R;
    });
  } finally {
    clearTimeout(watchdog);
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tether-kv-race-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A document's value at a dotted path, `null` when missing. */
function field(doc: unknown, path: string): unknown {
  let at: unknown = doc;
  for (const part of path.split(".")) {
    if (typeof at !== "object" || at === null) return null;
    at = (at as Record<string, unknown>)[part];
  }
  return at ?? null;
}

/** How many commits lost a race, and how many writes gave up. */
function retries(
  reports: readonly (CounterReport | UsersReport)[],
): string {
  const refused = reports.reduce((n, r) => n + r.refusedCommits, 0);
  const conflicts = reports.reduce((n, r) => n + r.conflicts, 0);
  const first = reports.find((r) => r.conflicts > 0)?.conflictMessage;
  return `${refused} commits refused by a version check (retried), ${conflicts} ConflictError after ${MAX_RETRIES} retries${
    first === undefined ? "" : ` (first: ${first})`
  }`;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Reads a collection's documents and secondary index entries straight from
 * the storage and checks that they agree: every entry belongs to a declared
 * index, points at an existing document whose field values are the entry's
 * values (and whose id ends a non-unique entry's key), and every document
 * has exactly its entries. Returns the documents by id.
 */
async function checkIndexEntries(
  storage: KvStorage,
  collection: string,
  indexes: readonly {
    name: string;
    fields: readonly string[];
    unique: boolean;
  }[],
): Promise<Map<string, StoredRecord>> {
  const docs = new Map<string, StoredRecord>();
  for await (
    const page of storage.scan({ prefix: encodeKey(["d", collection]) })
  ) {
    for (const entry of page) {
      const parts = decodeKey(entry.key);
      assert.equal(parts.length, 3, `a document key of ${collection}`);
      docs.set(
        parts[2] as string,
        decodeRecord(entry.value, `check ${collection}`),
      );
    }
  }
  const seen = new Set<string>();
  const problems: string[] = [];
  for await (
    const page of storage.scan({ prefix: encodeKey(["i", collection]) })
  ) {
    for (const entry of page) {
      seen.add(hex(entry.key));
      const parts = decodeIndexKey(entry.key);
      const shown = JSON.stringify(parts);
      const spec = indexes.find((i) => i.name === parts[2]);
      if (spec === undefined) {
        problems.push(`${shown}: an entry of an undeclared index`);
        continue;
      }
      const target = decodeKey(entry.value);
      if (target[0] !== "d" || target[1] !== collection) {
        problems.push(`${shown}: points at ${JSON.stringify(target)}`);
        continue;
      }
      const id = target[2] as string;
      const values = parts.slice(3, 3 + spec.fields.length);
      const rest = parts.slice(3 + spec.fields.length);
      if (!spec.unique && (rest.length !== 1 || rest[0] !== id)) {
        problems.push(`${shown}: the key does not end with its id '${id}'`);
      }
      if (spec.unique && rest.length !== 0) {
        problems.push(`${shown}: a unique entry with more than the values`);
      }
      const doc = docs.get(id);
      if (doc === undefined) {
        problems.push(`${shown}: points at '${id}', which does not exist`);
        continue;
      }
      const actual = spec.fields.map((f) => field(doc.value, f));
      if (JSON.stringify(actual) !== JSON.stringify(values)) {
        problems.push(
          `${shown}: points at '${id}' (version ${doc.version}), whose ${
            spec.fields.join(", ")
          } is ${JSON.stringify(actual)}`,
        );
      }
    }
  }
  for (const [id, doc] of docs) {
    for (const spec of indexes) {
      const values = spec.fields.map((f) => field(doc.value, f));
      const key = encodeIndexKey(
        (spec.unique ? values : [...values, id]) as Parameters<
          typeof encodeIndexKey
        >[0],
        encodeKey(["i", collection, spec.name]),
      );
      if (!seen.has(hex(key))) {
        problems.push(
          `document '${id}' (version ${doc.version}, ${
            JSON.stringify(doc.value)
          }) has no entry in index ${spec.name}`,
        );
      }
    }
  }
  assert.equal(
    problems.length,
    0,
    `${problems.length} problems in the index entries of '${collection}':\n${
      problems.slice(0, 20).join("\n")
    }`,
  );
  assert.equal(
    seen.size,
    docs.size * indexes.length,
    `one entry per document and index in '${collection}'`,
  );
  return docs;
}

Deno.test("Deno KV shared by processes: concurrent $inc of one document loses no update, and its index follows", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/shared.sqlite`;
    {
      await using db = await open({ kv: path });
      const c = db.collection<Counter>("c");
      await c.createIndex("n");
      await c.insert({ _id: "counter", n: 0 });
    }

    const reports = await hammer<CounterReport>(path, "counter", INCREMENTS);
    const increments = reports.reduce((n, r) => n + r.increments, 0);
    console.log(
      `  ${PROCESSES} writers x ${INCREMENTS} $inc: ${increments} applied; ${
        retries(reports)
      }`,
    );
    for (const r of reports) {
      assert.equal(r.misses, 0, `${r.name}: an update did not find the doc`);
      assert.equal(r.increments + r.conflicts, INCREMENTS, r.name);
    }
    assert.ok(increments > 0, "some increments succeeded");

    const kv = await Deno.openKv(path);
    try {
      await using db = await open({ kv });
      const c = db.collection<Counter>("c");
      const entry = await c.getEntry("counter");
      assert.ok(entry !== null, "the counter exists");
      assert.equal(
        entry.value.n,
        increments,
        `n is the number of increments the writers saw succeed (${
          reports.map((r) => `${r.name}: ${r.increments}`).join(", ")
        })`,
      );
      assert.equal(entry.version, 1 + increments, "one version per increment");
      assert.equal(await c.count(), 1);

      const storage = new KvStorage(kv);
      const indexes = await c.indexes();
      assert.deepEqual(indexes.map((i) => i.name), ["n_1"]);
      const docs = await checkIndexEntries(storage, "c", indexes);
      assert.deepEqual([...docs.keys()], ["counter"]);

      // Through the planner: the index finds the counter at its value only
      // (stale entries were ruled out above, on the raw entries).
      const plan = await c.find({ n: increments }).explain();
      assert.equal(plan.kind, "index");
      assert.equal(plan.index, "n_1");
      assert.equal(plan.returned, 1);
      assert.deepEqual(await c.find({ n: increments }).toArray(), [
        { _id: "counter", n: increments },
      ]);
      assert.deepEqual(
        await c.find({ n: { $lt: increments } }).toArray(),
        [],
        "no document below the final n",
      );
      assert.deepEqual(await c.find({ n: { $gte: 0 } }).toArray(), [
        { _id: "counter", n: increments },
      ]);
    } finally {
      kv.close();
    }
  });
});

Deno.test("Deno KV shared by processes: racing inserts and email changes keep a unique index unique, lose no document, and keep the index consistent", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/shared.sqlite`;
    {
      await using db = await open({ kv: path });
      await db.collection<User>("users").createIndex("email", {
        unique: true,
      });
    }

    const reports = await hammer<UsersReport>(path, "users", MOVES_PER_INSERT);
    const inserted = reports.flatMap((r) =>
      r.inserted.map((i) => ({ ...i, by: r.name }))
    );
    const sum = (f: (r: UsersReport) => number) =>
      reports.reduce((n, r) => n + f(r), 0);
    const moves = sum((r) => r.moves);
    console.log(
      `  ${PROCESSES} writers x ${EMAILS.length} inserts: ${inserted.length} inserted, ${
        sum((r) => r.duplicates)
      } DuplicateKeyError; ${
        PROCESSES * EMAILS.length * MOVES_PER_INSERT
      } moves: ${moves} applied, ${
        sum((r) => r.moveDuplicates)
      } DuplicateKeyError, ${sum((r) => r.moveMisses)} found nothing; ${
        retries(reports)
      }`,
    );
    assert.ok(inserted.length > 0, "some inserts succeeded");
    for (const r of reports) {
      assert.equal(
        r.inserted.length + r.duplicates +
          r.moves + r.moveMisses + r.moveDuplicates + r.conflicts,
        EMAILS.length * (1 + MOVES_PER_INSERT),
        `${r.name}: every operation is accounted for`,
      );
    }
    const ids = new Set(inserted.map((i) => i.id));
    assert.equal(ids.size, inserted.length, "no id was handed out twice");

    const kv = await Deno.openKv(path);
    try {
      await using db = await open({ kv });
      const users = db.collection<User>("users");
      const all = await users.all();
      const byId = new Map(all.map((u) => [u._id!, u]));

      // No document lost, none extra.
      assert.equal(
        all.length,
        inserted.length,
        "as many documents as successful inserts",
      );
      assert.deepEqual(
        [...byId.keys()].sort(),
        [...ids].sort(),
        "the documents are exactly the ones inserted",
      );
      for (const i of inserted) {
        assert.equal(
          byId.get(i.id)?.by,
          i.by,
          `${i.id} was inserted by ${i.by}`,
        );
      }
      assert.equal(await users.count(), inserted.length);

      // At most one document per email, each from the pool.
      const holders = new Map<string, string>();
      for (const u of all) {
        assert.ok(EMAILS.includes(u.email), `${u._id} has ${u.email}`);
        assert.ok(
          !holders.has(u.email),
          `${u.email} is held by both ${holders.get(u.email)} and ${u._id}`,
        );
        holders.set(u.email, u._id!);
      }

      // No lost move: every applied move is one $inc of `moves` and one
      // version, on the document it moved.
      assert.equal(
        all.reduce((n, u) => n + u.moves, 0),
        moves,
        "the moves counted in the documents are the moves the writers saw applied",
      );
      for (const u of all) {
        const entry = await users.getEntry(u._id!);
        assert.equal(entry?.version, 1 + u.moves, `${u._id}: version`);
      }

      // The raw index entries agree with the documents.
      const indexes = await users.indexes();
      assert.deepEqual(
        indexes.map((i) => [i.name, i.unique]),
        [["email_1", true]],
      );
      await checkIndexEntries(new KvStorage(kv), "users", indexes);

      // Queries through the index find what a full scan finds.
      const scanPlan = await users.find({}).explain();
      assert.equal(scanPlan.kind, "scan");
      assert.equal(scanPlan.returned, all.length);
      const exists = await users.find({ email: { $exists: true } }).toArray();
      assert.deepEqual(
        exists.map((u) => u._id).sort(),
        all.map((u) => u._id).sort(),
      );
      for (const email of EMAILS) {
        const plan = await users.find({ email }).explain();
        assert.equal(plan.kind, "index", `find({ email: ${email} }): plan`);
        assert.equal(plan.index, "email_1");
        const scanned = all.filter((u) => u.email === email);
        assert.deepEqual(
          await users.find({ email }).toArray(),
          scanned,
          `find({ email: ${email} }) through the index = the full scan`,
        );
        assert.equal(plan.returned, scanned.length);
        assert.equal(await users.count({ email }), scanned.length);
      }
    } finally {
      kv.close();
    }
  });
});
