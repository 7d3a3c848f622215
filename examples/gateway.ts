// A gateway: ESP32 boards post readings (HTTP, or MQTT through the bridge),
// kept in a file database through any outage and relayed to a receiver
// (examples/deploy_receiver.ts). Settings come from the environment:
// GATEWAY_DB, HOST, PORT, DEVICES="id=token,...", SYNC_URL, SYNC_TOKEN, MQTT_URL.
import { open } from "../mod.ts"; // jsr:@tether/db
import { ingest, relay } from "../gateway.ts"; // jsr:@tether/db/gateway

const env = (name: string, or = "") => Deno.env.get(name) ?? or;
const db = await open({ path: env("GATEWAY_DB", "gateway.tdb") });
const devices = Object.fromEntries(
  env("DEVICES").split(",").map((
    d,
  ) => [d.split("=")[0], d.slice(d.indexOf("=") + 1)]),
);
const readings = ingest(db, {
  devices,
  ttl: 7 * 86_400_000,
  maxBodyBytes: 256 * 1024,
});
const uplink = relay(db, {
  collections: ["readings"],
  to: env("SYNC_URL"),
  token: env("SYNC_TOKEN"),
});
const mqtt = env("MQTT_URL") && await import("./mqtt_bridge.ts");
if (mqtt) await mqtt.mqttBridge(readings, { url: env("MQTT_URL") });

Deno.serve({
  hostname: env("HOST", "0.0.0.0"),
  port: Number(env("PORT", "8080")),
}, async (request) => {
  const path = new URL(request.url).pathname; // /status, /idle; readings: POST to any other
  if (path === "/status") {
    return Response.json({ ingest: readings.stats(), relay: uplink.stats() });
  }
  if (path === "/idle") {
    return await uplink.idle().then(() => Response.json(uplink.stats()));
  }
  return await readings(request);
});
