// examples/mqtt_bridge.ts against a real broker (npm:aedes, in this process)
// with devices simulated by npm:mqtt clients: QoS 1 messages are
// acknowledged only after commit, held while the gateway is full, delivered
// again after the bridge restarts, and every reading is stored once.

import assert from "node:assert/strict";
import mqtt from "mqtt";
import { open } from "../mod.ts";
import { ingest, type IngestHandler } from "../gateway.ts";
import { mqttBridge } from "../examples/mqtt_bridge.ts";
import { startBroker, until } from "./fixtures/gateway_helpers.ts";

const DEVICES = { "esp32-a": "ta", "esp32-b": "tb", "esp32-c": "tc" };

Deno.test("mqtt bridge: QoS 1 readings are stored once, acknowledged after commit, held while the gateway is full, delivered after a restart", async () => {
  const broker = await startBroker();
  await using db = await open();
  const handle = ingest(db, { devices: DEVICES });
  let full = true;
  let refusedWhileFull = 0;
  const flaky: IngestHandler = Object.assign((r: Request) => handle(r), {
    stats: handle.stats,
    submit: (
      device: string,
      body: string | Uint8Array,
      format?: "json" | "ndjson",
    ) => {
      if (full) {
        refusedWhileFull++;
        return Promise.resolve(
          new Response("full", {
            status: 503,
            headers: { "retry-after": "0" },
          }),
        );
      }
      return handle.submit(device, body, format);
    },
  });
  const logged: string[] = [];
  const publishers = await Promise.all(
    Object.keys(DEVICES).map((id) =>
      mqtt.connectAsync(broker.url, { clientId: id })
    ),
  );
  try {
    // 1. The gateway is full: the bridge holds the message and does not ack it.
    const first = await mqttBridge(flaky, {
      url: broker.url,
      log: (m) => logged.push(m),
    });
    await publishers[0]!.publishAsync(
      "devices/esp32-a/readings",
      '{"seq":1,"t":1}\n{"seq":2,"t":2}\n',
      { qos: 1 },
    );
    await until(
      "the bridge retried the held message",
      () => refusedWhileFull >= 2,
    );
    await first.close();
    assert.equal(await db.collection("readings").count(), 0);
    // 2. While the bridge is away, devices go on publishing (the broker keeps them).
    await publishers[1]!.publishAsync(
      "devices/esp32-b/readings",
      JSON.stringify({ seq: 1, t: 10 }),
      { qos: 1 },
    );
    // 3. A new bridge (same client id: same session) gets both.
    full = false;
    const bridge = await mqttBridge(flaky, {
      url: broker.url,
      log: (m) => logged.push(m),
    });
    await until(
      "the held and queued messages are stored",
      async () => await db.collection("readings").count() === 3,
    );
    // 4. Many messages from three devices, a few re-sent, and some bad ones.
    const sends: Promise<unknown>[] = [];
    for (let seq = 2; seq <= 41; seq++) {
      for (const [i, id] of Object.keys(DEVICES).entries()) {
        const body = JSON.stringify({ seq: seq + 100, t: seq * 10 + i });
        sends.push(
          publishers[i]!.publishAsync(`devices/${id}/readings`, body, {
            qos: 1,
          }),
        );
        if (seq % 10 === 0) {
          sends.push(
            publishers[i]!.publishAsync(`devices/${id}/readings`, body, {
              qos: 1,
            }),
          );
        }
      }
    }
    sends.push(
      publishers[0]!.publishAsync("devices/esp32-z/readings", '{"seq":1}', {
        qos: 1,
      }),
    );
    sends.push(
      publishers[0]!.publishAsync("devices/esp32-a/readings", "{oops", {
        qos: 1,
      }),
    );
    await Promise.all(sends);
    const expected = 3 + 40 * 3;
    await until(
      "all readings are stored",
      async () => await db.collection("readings").count() === expected,
    );
    await until(
      "every message is acknowledged",
      () => bridge.stats().stored + bridge.stats().refused === 2 + 120 + 12 + 2,
    );
    assert.equal(handle.stats().duplicates, 12);
    assert.equal(bridge.stats().refused, 2);
    assert.ok(
      logged.some((m) => /esp32-z.*not a known device/.test(m)),
      logged.join("\n"),
    );
    assert.ok(logged.some((m) => /not valid JSON/.test(m)), logged.join("\n"));
    const readings = db.collection<
      { t: number; device: string; receivedAt: number }
    >("readings");
    const c = await readings.get("esp32-c/0000000000000141");
    assert.deepEqual({ ...c, receivedAt: 0 }, {
      seq: 141,
      t: 412,
      device: "esp32-c",
      receivedAt: 0,
    });
    assert.equal((await readings.get("esp32-a/0000000000000002"))?.t, 2);
    await bridge.close();
  } finally {
    await Promise.all(publishers.map((p) => p.endAsync()));
    await broker.close();
  }
});
