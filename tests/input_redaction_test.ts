// Issue 13, item 11: on an encrypted database, error messages name
// collections, keys, indexes and fields, never a stored value. Each path
// that formats a value is driven with a distinctive secret and the message
// is searched for it.

import assert from "node:assert/strict";
import { type Database, DuplicateKeyError, open } from "../mod.ts";

const SECRET = "s3cr3t-Pa55-Zebra-9981";
const SECRET_NUMBER = 4_815_162_342;

type Storage = "memory" | "kv";

async function encrypted(storage: Storage): Promise<Database> {
  const encryption = { key: crypto.getRandomValues(new Uint8Array(32)) };
  return storage === "kv"
    ? await open({ kv: ":memory:", encryption })
    : await open({ encryption });
}

/** Runs `fn`, which must fail, and returns the error. */
async function failure(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new assert.AssertionError({ message: "it did not fail" });
}

/** The message names what it should and shows no secret. */
function assertRedacted(e: Error, ...names: string[]): void {
  assert.ok(!e.message.includes(SECRET), `value shown: ${e.message}`);
  assert.ok(!e.message.includes("Zebra"), `value shown: ${e.message}`);
  assert.ok(
    !e.message.includes(String(SECRET_NUMBER)),
    `value shown: ${e.message}`,
  );
  for (const name of names) {
    assert.ok(e.message.includes(name), `'${name}' missing: ${e.message}`);
  }
}

for (const storage of ["memory", "kv"] as const) {
  Deno.test(`redaction [${storage}]: DuplicateKeyError names collection, index and key, never the value`, async () => {
    await using db = await encrypted(storage);
    const users = db.collection("users", {
      indexes: [{ fields: "email", unique: true }, {
        fields: ["team", "pin"],
        unique: true,
      }],
    });
    await users.insert({
      _id: "u1",
      email: SECRET,
      team: "a",
      pin: SECRET_NUMBER,
    });
    // insert
    let e = await failure(() => users.insert({ _id: "u2", email: SECRET }));
    assert.ok(e instanceof DuplicateKeyError);
    assertRedacted(e, "users", "email_1", "'u1'");
    // insertMany: two new documents colliding with each other
    e = await failure(() =>
      users.insertMany([{ _id: "a", email: "x@y" }, { _id: "b", email: "x@y" }])
    );
    assert.ok(e instanceof DuplicateKeyError);
    assert.ok(!e.message.includes("x@y"), e.message);
    // a compound index
    e = await failure(() =>
      users.insert({ _id: "u3", team: "a", pin: SECRET_NUMBER })
    );
    assert.ok(e instanceof DuplicateKeyError);
    assertRedacted(e, "team_1_pin_1");
    // put and update onto a taken value
    e = await failure(() => users.put("u4", { _id: "u4", email: SECRET }));
    assert.ok(e instanceof DuplicateKeyError);
    assertRedacted(e, "email_1");
    await users.insert({ _id: "u5", email: "other" });
    e = await failure(() => users.update({ _id: "u5" }, { email: SECRET }));
    assert.ok(e instanceof DuplicateKeyError);
    assertRedacted(e, "email_1", "'u1'");
    e = await failure(() => users.replace("u5", { email: SECRET }));
    assert.ok(e instanceof DuplicateKeyError);
    assertRedacted(e, "email_1");
    // createIndex over stored duplicates
    const c = db.collection("c");
    await c.insertMany([{ _id: "p", v: SECRET }, { _id: "q", v: SECRET }]);
    e = await failure(() => c.createIndex("v", { unique: true }));
    assert.ok(e instanceof DuplicateKeyError);
    assertRedacted(e, "v_1", "'c'");
  });

  Deno.test(`redaction [${storage}]: update operators meeting a field of the wrong type name the field, never its value`, async () => {
    await using db = await encrypted(storage);
    const c = db.collection("c");
    await c.insert({ _id: "d", s: SECRET, n: SECRET_NUMBER });
    const cases: [string, Record<string, unknown>, string][] = [
      ["$inc", { $inc: { s: 1 } }, "$inc needs a number field, got a string"],
      [
        "$push",
        { $push: { s: 1 } },
        "$push needs an array field, got a string",
      ],
      [
        "$addToSet",
        { $addToSet: { n: 1 } },
        "needs an array field, got a number",
      ],
      [
        "$pull",
        { $pull: { s: 1 } },
        "$pull needs an array field, got a string",
      ],
      [
        "$set into a scalar",
        { $set: { "s.x": 1 } },
        "cannot create field 'x' in a string",
      ],
      [
        "$inc into a scalar",
        { $inc: { "n.x": 1 } },
        "cannot create field 'x' in a number",
      ],
      [
        "$rename into a scalar",
        { $rename: { n: "s.x" } },
        "cannot create field 'x' in a string",
      ],
    ];
    for (const [name, update, expected] of cases) {
      const e = await failure(() => c.update({ _id: "d" }, update));
      assert.ok(e instanceof TypeError, name);
      assertRedacted(e, expected);
    }
    // A stored value that is not a document, met by update.
    await db.put("plain", SECRET);
    for (const update of [{ $set: { a: 1 } }, { a: 1 }]) {
      const e = await failure(() => db.update({}, update));
      assert.ok(e instanceof TypeError);
      assertRedacted(e, "the document is a string, not an object");
    }
    assert.deepEqual(await c.get("d"), {
      _id: "d",
      s: SECRET,
      n: SECRET_NUMBER,
    });
  });
}

Deno.test("redaction: a plain database still shows the value (the messages differ only when encrypted)", async () => {
  await using db = await open();
  const users = db.collection("users", {
    indexes: [{ fields: "email", unique: true }],
  });
  await users.insert({ _id: "u1", email: SECRET, n: SECRET_NUMBER });
  const dup = await failure(() => users.insert({ email: SECRET }));
  assert.ok(dup.message.includes(SECRET), dup.message);
  const inc = await failure(() => users.update({}, { $inc: { email: 1 } }));
  assert.ok(inc.message.includes(SECRET), inc.message);
});
