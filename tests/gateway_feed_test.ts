// relay() on the database's own durable change feed (`changes({ since })`), on
// memory, file (with a restart) and Deno KV sources.

import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";
import { ingest, receive, relay } from "../gateway.ts";

async function fill(db: Database, from: number, to: number): Promise<void> {
  const batch = new Map<string, unknown>();
  for (let i = from; i < to; i++) {
    batch.set(`dev/${String(i).padStart(16, "0")}`, {
      seq: i,
      t: i * 2,
      device: "dev",
      receivedAt: Date.now(),
    });
  }
  if (batch.size > 0) await db.collection("readings").putBatch(batch);
}

async function expectAll(target: Database, count: number): Promise<void> {
  const readings = target.collection<{ seq: number; t: number }>("readings");
  assert.equal(await readings.count(), count);
  for (let i = 0; i < count; i += Math.max(1, Math.floor(count / 50))) {
    assert.equal(
      (await readings.get(`dev/${String(i).padStart(16, "0")}`))?.t,
      i * 2,
    );
  }
}

for (const kind of ["memory", "kv"] as const) {
  Deno.test({
    name:
      `relay on the change feed (${kind} source): backlog, then live changes, to a Database target`,
    async fn() {
      await using gateway = await open(kind === "kv" ? { kv: ":memory:" } : {});
      await using cloud = await open();
      for (let i = 0; i < 300; i += 50) await fill(gateway, i, i + 50);
      await using uplink = relay(gateway, {
        collections: ["readings"],
        to: cloud,
        batchSize: 64,
      });
      await uplink.idle();
      await expectAll(cloud, 300);
      await fill(gateway, 300, 320);
      await uplink.idle();
      await expectAll(cloud, 320);
      assert.equal(uplink.stats().sent, 320);
      assert.equal(uplink.stats().caughtUp, true);
    },
  });
}

Deno.test({
  name:
    "relay on the change feed (file source): resumes after the gateway closes mid-backlog, each reading applied once",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await using cloud = await open();
      const endpoint = receive(cloud, { token: "t" });
      let posts = 0;
      let stopAfter = 3;
      const fetchFn = ((url: string | URL | Request, init?: RequestInit) => {
        posts++;
        return endpoint(new Request(url, init));
      }) as typeof fetch;
      {
        const gateway = await open({ path: `${dir}/gw.tdb` });
        await fill(gateway, 0, 500);
        const uplink = relay(gateway, {
          collections: ["readings"],
          to: "http://cloud/sync",
          token: "t",
          fetch: fetchFn,
          batchSize: 50,
        });
        while (posts < stopAfter) await new Promise((r) => setTimeout(r, 1));
        await uplink.close();
        await gateway.close();
      }
      const sentBefore = await cloud.collection("readings").count();
      assert.ok(sentBefore >= 100 && sentBefore < 500, `${sentBefore}`);
      stopAfter = Infinity;
      const gateway = await open({ path: `${dir}/gw.tdb` });
      const handle = ingest(gateway, { devices: { dev: "x" }, ttl: 3_600_000 });
      await fill(gateway, 500, 520);
      const uplink = relay(gateway, {
        collections: ["readings"],
        to: "http://cloud/sync",
        token: "t",
        fetch: fetchFn,
        batchSize: 50,
      });
      await uplink.idle();
      await expectAll(cloud, 520);
      // Nothing was applied twice (each batch applied once: the count above).
      assert.equal(await cloud.collection("_applied").count(), 1); // one position per origin and collection
      // Retention came with the relay (ingest declared a ttl for the collection).
      const entry = await gateway.collection("readings").getEntry(
        `dev/${String(510).padStart(16, "0")}`,
      );
      assert.notEqual(entry?.expiresAt, undefined);
      assert.equal(
        typeof (entry?.value as { relayedAt?: number }).relayedAt,
        "number",
      );
      assert.equal(handle.stats().stored, 0);
      await uplink.close();
      await gateway.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
