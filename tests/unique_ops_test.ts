/**
 * Unique indexes (single values and arrays: a multikey unique index, where
 * two documents may not share an element) against a model under every
 * kind of write and time:
 * `putBatch` with and without TTLs, `insertMany`, `update` of several
 * documents at once, deletes, and the clock passing expiries (an expired
 * document's value is free at once). Each write is accepted exactly when
 * the model says every live value stays unique (and, for `insertMany`, no
 * id is live already), and then leaves the model's documents; a refused
 * write changes nothing. Memory, file and Deno KV, with an injected clock.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, DuplicateKeyError, open } from "../mod.ts";
import { FakeClock } from "./conformance/database_suite.ts";

const IDS = ["a", "b", "c", "d"];
const VALUES = ["v", "w", "x"];
/** A value, or an array of values (each one an entry of the index). */
const EMAIL = fc.oneof(
  fc.constantFrom(...VALUES),
  fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 2 }),
);
const GROUPS = [0, 1];

interface Doc {
  email: string | string[];
  g: number;
}

/** What the model keeps per id: the document and when it expires. */
interface Held {
  doc: Doc;
  expiresAt: number | undefined;
}

type Op =
  | {
    kind: "put";
    items: [string, string | string[], number][];
    ttl: number | undefined;
  }
  | { kind: "insert"; items: [string, string | string[], number][] }
  | { kind: "update"; g: number; email: string | string[] }
  | { kind: "delete"; id: string }
  | { kind: "time"; ms: number };

const item = fc.tuple(
  fc.constantFrom(...IDS),
  EMAIL,
  fc.constantFrom(...GROUPS),
);
const items = fc.uniqueArray(item, {
  minLength: 1,
  maxLength: 3,
  selector: ([id]) => id,
});
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      items,
      ttl: fc.option(fc.constantFrom(10, 30), { nil: undefined }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("insert" as const), items }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("update" as const),
      g: fc.constantFrom(...GROUPS),
      email: EMAIL,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      id: fc.constantFrom(...IDS),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("time" as const),
      ms: fc.constantFrom(5, 10, 20),
    }),
  },
);

function live(model: Map<string, Held>, now: number): Map<string, Doc> {
  const out = new Map<string, Doc>();
  for (const [id, h] of model) {
    if (h.expiresAt === undefined || now < h.expiresAt) out.set(id, h.doc);
  }
  return out;
}

/** The distinct values a document holds. */
const valuesOf = (d: Doc): string[] =>
  typeof d.email === "string" ? [d.email] : [...new Set(d.email)];
function unique(docs: Map<string, Doc>): boolean {
  const seen = new Set<string>();
  for (const d of docs.values()) {
    for (const v of valuesOf(d)) {
      if (seen.has(v)) return false;
      seen.add(v);
    }
  }
  return true;
}

/**
 * Applies `o` to the model at time `now`: whether the database must accept
 * it (a refused write leaves the model as it was).
 */
function apply(model: Map<string, Held>, o: Op, now: number): boolean {
  const next = new Map(
    [...live(model, now)].map(([id, doc]) => [id, {
      doc,
      expiresAt: model.get(id)!.expiresAt,
    }]),
  );
  switch (o.kind) {
    case "time":
    case "delete":
      if (o.kind === "delete") model.delete(o.id);
      return true;
    case "insert":
      if (o.items.some(([id]) => next.has(id))) return false;
    // falls through
    case "put":
      for (const [id, email, g] of o.items) {
        const ttl = o.kind === "put" ? o.ttl : undefined;
        next.set(id, {
          doc: { email, g },
          expiresAt: ttl === undefined ? undefined : now + ttl,
        });
      }
      break;
    case "update":
      for (const [id, h] of next) {
        if (h.doc.g === o.g) {
          next.set(id, { ...h, doc: { ...h.doc, email: o.email } });
        }
      }
      break;
  }
  if (!unique(live(next, now))) return false;
  model.clear();
  for (const [id, h] of next) model.set(id, h);
  return true;
}

async function run(
  ops: Op[],
  openDb: (clock: FakeClock) => Promise<Database>,
): Promise<void> {
  const clock = new FakeClock();
  const db = await openDb(clock);
  try {
    const c = db.collection<Doc>("u");
    await c.createIndex("email", { unique: true });
    const model = new Map<string, Held>();
    for (const o of ops) {
      const now = clock.now();
      const ok = apply(model, o, now);
      let write: Promise<unknown> | undefined;
      switch (o.kind) {
        case "time":
          clock.advance(o.ms);
          break;
        case "delete":
          write = c.delete(o.id);
          break;
        case "put":
          write = c.putBatch(
            new Map(o.items.map(([id, email, g]) => [id, { email, g }])),
            o.ttl === undefined ? undefined : { ttl: o.ttl },
          );
          break;
        case "insert":
          write = c.insertMany(
            o.items.map(([id, email, g]) => ({ _id: id, email, g })),
          );
          break;
        case "update":
          write = c.update({ g: o.g }, { $set: { email: o.email } });
          break;
      }
      if (write !== undefined) {
        if (ok) await write;
        else await assert.rejects(write, DuplicateKeyError);
      }
      const expected = live(model, clock.now());
      for (const id of IDS) {
        const doc = await c.get(id);
        const want = expected.get(id);
        assert.deepEqual(
          doc === null ? undefined : { email: doc.email, g: doc.g },
          want,
          `${id} after ${JSON.stringify(o)}`,
        );
      }
      for (const email of VALUES) {
        const found = (await c.find({ email }).toArray()).length;
        const want = [...expected.values()].filter((d) =>
          valuesOf(d).includes(email)
        )
          .length;
        assert.equal(found, want, `holders of ${email} after ${o.kind}`);
      }
    }
    assert.deepEqual((await db.verify()).problems, []);
  } finally {
    await db.close();
  }
}

const RUNS = Deno.env.get("TETHER_TORTURE") === "1" ? 300 : 50;
const ops = fc.array(op, { minLength: 1, maxLength: 14 });

Deno.test("unique index with TTLs, inserts, multi-document updates and deletes (memory): as the model (property)", async () => {
  await fc.assert(
    fc.asyncProperty(ops, (o) => run(o, (clock) => open({ clock }))),
    { numRuns: RUNS },
  );
});

Deno.test("unique index with TTLs, inserts, multi-document updates and deletes (file): as the model (property)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-unique-ops-" });
  let n = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        ops,
        (o) => run(o, (clock) => open({ path: `${dir}/db${n++}.tdb`, clock })),
      ),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unique index with TTLs, inserts, multi-document updates and deletes (Deno KV): as the model (property)", async () => {
  await fc.assert(
    fc.asyncProperty(ops, async (o) => {
      const kv = await Deno.openKv(":memory:");
      try {
        await run(o, (clock) => open({ kv, clock }));
      } finally {
        kv.close();
      }
    }),
    { numRuns: Math.ceil(RUNS / 2) },
  );
});
