/**
 * An MQTT bridge for a tether gateway: many ESP32 firmwares speak MQTT, not
 * HTTP. It subscribes (QoS 1, persistent session) to `devices/+/readings`,
 * stores each message through the gateway's `ingest` checks (the device id
 * is the topic's second level; the payload is one JSON reading, a JSON array
 * or NDJSON), and acknowledges (PUBACK) a message only after its readings
 * are committed. A full storage or a rate limit holds the message (no ack)
 * and retries it after `Retry-After`, so the broker keeps it and the
 * messages behind it; a reading the gateway refuses for good (400, 409,
 * 413, an unknown device) is acknowledged, logged and counted, so one bad
 * message cannot block a device forever.
 *
 * The broker authenticates devices; give each one an ACL that lets it publish
 * only to its own topic. With Mosquitto (`mosquitto.conf`):
 *
 * ```
 * listener 1883
 * allow_anonymous false
 * password_file /etc/mosquitto/passwd      # mosquitto_passwd -c ... esp32-kitchen
 * acl_file /etc/mosquitto/acl
 * # acl:  pattern write devices/%u/readings
 * #       user tether-gateway
 * #       topic read devices/+/readings
 * ```
 *
 * Run it on its own (it opens the gateway database itself):
 *
 * ```sh
 * GATEWAY_DB=gateway.tdb DEVICES="esp32-kitchen=token" MQTT_URL=mqtt://127.0.0.1:1883 \
 *   deno run -A examples/mqtt_bridge.ts
 * ```
 *
 * or from `examples/gateway.ts` by setting `MQTT_URL` there (one process
 * holds the database file).
 *
 * @module
 */

import mqtt from "mqtt";
import type { IngestHandler } from "../gateway.ts";

/** Options of {@linkcode mqttBridge}. */
export interface BridgeOptions {
  /** The broker, e.g. `mqtt://127.0.0.1:1883`. */
  readonly url: string;
  /** The subscription. Default `devices/+/readings`. */
  readonly topic?: string;
  /** The bridge's client id (its persistent session). Default `tether-gateway`. */
  readonly clientId?: string;
  /** Broker credentials. */
  readonly username?: string;
  /** Broker credentials. */
  readonly password?: string;
  /** Where refusals and retries are told. Default `console`. */
  readonly log?: (message: string) => void;
}

/** A running bridge. */
export interface Bridge {
  /** Messages acknowledged after storing, refused for good, and retries. */
  stats(): { stored: number; refused: number; retries: number };
  /** Disconnects (a message being stored is not acknowledged). */
  close(): Promise<void>;
}

const TOPIC = /^devices\/([A-Za-z0-9_.-]{1,64})\/readings$/;

/**
 * Bridges an MQTT broker to an ingest handler.
 *
 * @param handler The gateway's `ingest(...)` handler.
 * @param options Broker and subscription.
 * @returns The bridge, once subscribed.
 */
export async function mqttBridge(
  handler: IngestHandler,
  options: BridgeOptions,
): Promise<Bridge> {
  const {
    url,
    topic = "devices/+/readings",
    clientId = "tether-gateway",
    log = (m: string) => console.warn(m),
  } = options;
  const counts = { stored: 0, refused: 0, retries: 0 };
  let closed = false;
  const client = mqtt.connect(url, {
    clientId,
    clean: false, // the broker keeps our QoS 1 messages while we are away
    reconnectPeriod: 500,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
  });
  // mqtt.js sends the PUBACK of a QoS 1 message when this calls back, and
  // hands over the next message only then.
  client.handleMessage = (packet, done) => {
    store(packet.topic, packet.payload as Uint8Array).then(
      (ack) => {
        if (ack) done();
      },
      (e) => {
        log(`mqtt bridge: ${(e as Error)?.message ?? e}`);
      },
    );
  };

  async function store(topic: string, payload: Uint8Array): Promise<boolean> {
    const device = TOPIC.exec(topic)?.[1];
    if (device === undefined) {
      counts.refused++;
      log(`mqtt bridge: ignored a message on '${topic}'`);
      return true;
    }
    const bytes = new Uint8Array(payload);
    const text = new TextDecoder().decode(bytes).trim();
    const format = text.includes("\n") ? "ndjson" : "json";
    for (let attempt = 0; !closed; attempt++) {
      const response = await handler.submit(device, bytes, format);
      const body = await response.text();
      if (response.status === 200) {
        counts.stored++;
        return true;
      }
      if (response.status === 429 || response.status >= 500) {
        counts.retries++;
        const after = Number(response.headers.get("retry-after") ?? "1");
        await new Promise((r) =>
          setTimeout(r, Math.min(60_000, Math.max(100, after * 1000)))
        );
        continue;
      }
      counts.refused++;
      log(`mqtt bridge: refused a message of '${device}': ${body}`);
      return true;
    }
    return false; // closing: not acknowledged, the broker sends it again
  }

  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return {
    stats: () => ({ ...counts }),
    async close() {
      closed = true;
      await client.endAsync(true);
    },
  };
}

if (import.meta.main) {
  const { open } = await import("../mod.ts");
  const { ingest } = await import("../gateway.ts");
  const env = (name: string, fallback?: string): string => {
    const value = Deno.env.get(name) ?? fallback;
    if (value === undefined) throw new Error(`Set ${name}`);
    return value;
  };
  const db = await open({ path: env("GATEWAY_DB", "gateway.tdb") });
  const devices = Object.fromEntries(
    env("DEVICES").split(",").map((pair) =>
      pair.split("=", 2) as [string, string]
    ),
  );
  await mqttBridge(ingest(db, { devices }), { url: env("MQTT_URL") });
  console.log("bridging", env("MQTT_URL"));
}
