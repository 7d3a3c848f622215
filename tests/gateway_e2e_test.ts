// End to end: simulated devices (examples/esp32/main.py under CPython, and
// MQTT publishers through an in-process aedes broker) -> examples/gateway.ts
// in its own process (file database, ingest + MQTT bridge + relay) -> relay
// over HTTP -> examples/deploy_receiver.ts in its own process on a Deno KV
// file. The receiver is killed for a while (the gateway keeps ingesting),
// the gateway is SIGKILLed mid-relay and restarted; then, once the relay is
// idle, the receiver holds every reading exactly once with its content.
// TETHER_TORTURE=1 runs it longer, with more kills.

import assert from "node:assert/strict";
import mqtt from "mqtt";
import { open } from "../mod.ts";
import {
  expectedReading,
  hasPython,
  runEsp32,
  startBroker,
  until,
} from "./fixtures/gateway_helpers.ts";

const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
const PYTHON = await hasPython();

const ROOT = new URL("../", import.meta.url).pathname;
const DEVICES = {
  "esp32-kitchen": "k-token",
  "mqtt-1": "m1",
  "mqtt-2": "m2",
  "mqtt-3": "m3",
};

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

class Process {
  #child: Deno.ChildProcess;
  log = "";
  constructor(script: string, env: Record<string, string>) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--unstable-kv",
        "-A",
        "--config",
        `${ROOT}deno.json`,
        script,
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    for (const stream of [this.#child.stdout, this.#child.stderr]) {
      stream.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({
          write: (text) => void (this.log = (this.log + text).slice(-4000)),
        }),
      ).catch(() => {});
    }
  }
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
    await this.#child.status;
  }
}

async function getJson(url: string): Promise<unknown> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${response.status} from ${url}`);
  return await response.json();
}

async function ready(url: string, process: Process): Promise<void> {
  await until(`${url} answers`, async () => {
    try {
      await getJson(url);
      return true;
    } catch {
      return false;
    }
  }, 30_000).catch((e) => {
    throw new Error(`${e.message}\n${process.log}`);
  });
}

Deno.test({
  name:
    "gateway end to end: ESP32 + MQTT devices -> gateway process (file) -> relay -> receiver process (KV file), through a receiver outage and a gateway SIGKILL, every reading exactly once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const esp32Readings = PYTHON ? (TORTURE ? 4000 : 150) : 0;
    if (!PYTHON) {
      console.warn(
        "gateway_e2e_test: python3 is absent: only MQTT devices take part",
      );
    }
    const mqttPerDevice = TORTURE ? 3000 : 120;
    const cycles = TORTURE ? 6 : 1;
    const dir = await Deno.makeTempDir();
    const broker = await startBroker();
    const gatewayPort = freePort();
    const receiverPort = freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const receiverUrl = `http://127.0.0.1:${receiverPort}`;
    const gatewayEnv = {
      GATEWAY_DB: `${dir}/gateway.tdb`,
      HOST: "127.0.0.1",
      PORT: String(gatewayPort),
      DEVICES: Object.entries(DEVICES).map(([id, token]) => `${id}=${token}`)
        .join(","),
      SYNC_URL: `${receiverUrl}/sync`,
      SYNC_TOKEN: "sync-token",
      MQTT_URL: broker.url,
    };
    const receiverEnv = {
      PORT: String(receiverPort),
      KV_PATH: `${dir}/cloud.sqlite`,
      SYNC_TOKEN: "sync-token",
    };
    const startGateway = async () => {
      const p = new Process("examples/gateway.ts", gatewayEnv);
      await ready(`${gatewayUrl}/status`, p);
      return p;
    };
    const startReceiver = async () => {
      const p = new Process("examples/deploy_receiver.ts", receiverEnv);
      await ready(`${receiverUrl}/readings/count`, p);
      return p;
    };
    let receiver = await startReceiver();
    let gateway = await startGateway();
    const publishers = await Promise.all(
      ["mqtt-1", "mqtt-2", "mqtt-3"].map((id) =>
        mqtt.connectAsync(broker.url, { clientId: id })
      ),
    );
    const flash = await Deno.makeTempDir({ dir });
    const esp32 = PYTHON
      ? runEsp32(flash, {
        GATEWAY_URL: `${gatewayUrl}/readings`,
        TOKEN: "k-token",
        MAX_READINGS: String(esp32Readings),
        INTERVAL_MS: "10",
        BATCH: "25",
        BACKOFF_MS: "50",
        BACKOFF_MAX_MS: "400",
      })
      : undefined;
    try {
      const publishing = Promise.all(publishers.map(async (client, i) => {
        for (let seq = 1; seq <= mqttPerDevice; seq++) {
          await client.publishAsync(
            `devices/mqtt-${i + 1}/readings`,
            JSON.stringify({ seq, t: seq * 10 + i }),
            { qos: 1 },
          );
          await new Promise((r) => setTimeout(r, 8));
        }
      }));
      const sent = async () =>
        ((await getJson(`${gatewayUrl}/status`)) as { relay: { sent: number } })
          .relay.sent;
      for (let cycle = 0; cycle < cycles; cycle++) {
        // The cloud goes away; the gateway keeps taking readings.
        await until(
          "the relay has sent something",
          async () => await sent() > 0,
          30_000,
        );
        await receiver.kill();
        await new Promise((r) => setTimeout(r, 1_000));
        receiver = await startReceiver();
        // The relay catches up with the backlog: kill the gateway in the middle.
        const before = await sent();
        await until(
          "the relay sends again",
          async () => await sent() > before,
          30_000,
        );
        await gateway.kill("SIGKILL");
        await new Promise((r) => setTimeout(r, 300));
        gateway = await startGateway();
      }
      await publishing;
      if (esp32 !== undefined) {
        const { code, stderr } = await esp32.output();
        assert.equal(code, 0, new TextDecoder().decode(stderr));
      }
      const expected = esp32Readings + 3 * mqttPerDevice;
      await until(
        "the receiver holds every reading",
        async () =>
          ((await getJson(`${receiverUrl}/readings/count`)) as {
            count: number;
          }).count >= expected,
        TORTURE ? 300_000 : 60_000,
      ).catch((e) => {
        throw new Error(
          `${e.message}\n--- gateway ---\n${gateway.log}\n--- receiver ---\n${receiver.log}`,
        );
      });
      const idle = (await getJson(`${gatewayUrl}/idle`)) as {
        caughtUp: boolean;
        pending: number;
      };
      assert.equal(idle.caughtUp, true);
      assert.equal(idle.pending, 0);
      await gateway.kill("SIGTERM");
      await receiver.kill("SIGTERM");

      await using cloud = await open({ kv: `${dir}/cloud.sqlite` });
      const readings = cloud.collection<Record<string, unknown>>("readings");
      assert.equal(await readings.count(), expected);
      for (let n = 1; n <= esp32Readings; n++) {
        const r = await readings.get(
          `esp32-kitchen/${String(n).padStart(16, "0")}`,
        );
        assert.ok(r !== null, `ESP32 reading ${n} is missing`);
        assert.equal(r.raw, expectedReading(n).raw);
        assert.equal(r.device, "esp32-kitchen");
        assert.equal(r.relayedAt, undefined);
      }
      for (let i = 0; i < 3; i++) {
        for (let seq = 1; seq <= mqttPerDevice; seq++) {
          const r = await readings.get(
            `mqtt-${i + 1}/${String(seq).padStart(16, "0")}`,
          );
          assert.ok(r !== null, `mqtt-${i + 1} reading ${seq} is missing`);
          assert.equal(r.t, seq * 10 + i);
        }
      }
      // On the gateway every relayed reading now has its retention.
      await using local = await open({
        path: `${dir}/gateway.tdb`,
        readOnly: true,
      });
      const kept = await local.collection<Record<string, unknown>>("readings")
        .find({}, { limit: 5 }).entries();
      for await (const entry of kept) {
        assert.notEqual(entry.expiresAt, undefined);
      }
    } finally {
      await Promise.all(publishers.map((p) => p.endAsync().catch(() => {})));
      await gateway.kill();
      await receiver.kill();
      try {
        esp32?.kill("SIGKILL");
      } catch { /* done */ }
      await broker.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
