import { open } from "../mod.ts";
import { makeDocs } from "./data.ts";
const N = 100_000;
const docs = makeDocs(N);
const db = await open({
  ttlCheckInterval: Infinity,
  cleanupInterval: Infinity,
});
let t = performance.now();
for (let i = 0; i < N; i++) await db.put("k" + i, docs[i]);
console.log("put", N / ((performance.now() - t) / 1000));
t = performance.now();
for (let i = 0; i < N; i++) await db.get("k" + i);
console.log("get", N / ((performance.now() - t) / 1000));
t = performance.now();
const r = await db.query({ age: { $gt: 30 }, city: "NY" });
console.log("query ms", performance.now() - t, r.length);
t = performance.now();
const c = await db.count({ age: { $gt: 30 }, city: "NY" });
console.log("count ms", performance.now() - t, c);
await db.close();
import loki from "lokijs";
import Datastore from "@seald-io/nedb";
import { Query } from "mingo";
{
  const l = new loki("x.db");
  const c = l.addCollection("u");
  let t = performance.now();
  for (let i = 0; i < N; i++) c.insert({ ...docs[i] });
  console.log("loki insert", N / ((performance.now() - t) / 1000));
  t = performance.now();
  const r = c.find({ age: { $gt: 30 }, city: "NY" });
  console.log("loki find ms", performance.now() - t, r.length);
  const r2 = c.find({
    tags: { $containsAny: ["red", "blue"] },
    "address.zip": { $gte: 50000 },
  });
  console.log("loki find2", r2.length);
  t = performance.now();
  const m = new Query({ age: { $gt: 30 }, city: "NY" }).find(docs).all();
  console.log("mingo ms", performance.now() - t, m.length);
  const m2 = new Query({
    tags: { $in: ["red", "blue"] },
    "address.zip": { $gte: 50000 },
  }).find(docs).all();
  console.log("mingo2", m2.length);
  const ne = new Datastore();
  t = performance.now();
  for (let i = 0; i < 20000; i++) {
    await ne.insertAsync({ ...docs[i], _id: "k" + i });
  }
  console.log("nedb insert", 20000 / ((performance.now() - t) / 1000));
  t = performance.now();
  for (let i = 0; i < 20000; i++) await ne.findOneAsync({ _id: "k" + i });
  console.log("nedb get", 20000 / ((performance.now() - t) / 1000));
  const n2 = await ne.findAsync({
    tags: { $in: ["red", "blue"] },
    "address.zip": { $gte: 50000 },
  });
  console.log(
    "nedb2",
    n2.length,
    docs.slice(0, 20000).filter((d) =>
      (d.tags.includes("red") || d.tags.includes("blue")) &&
      d.address.zip >= 50000
    ).length,
  );
}
