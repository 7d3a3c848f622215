// examples/esp32/main.py under CPython (stand-ins for urequests, machine and
// time) against a real ingest server that is down at first and loses one
// answer: every reading arrives once, with its content.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { ingest } from "../gateway.ts";
import {
  expectedReading,
  hasPython,
  runEsp32,
} from "./fixtures/gateway_helpers.ts";

const PYTHON = await hasPython();
if (!PYTHON) {
  console.warn(
    "gateway_esp32_test: python3 is not installed; the ESP32 script's tests are skipped",
  );
}

Deno.test({
  name:
    "esp32 main.py: buffers on flash while the gateway is down, retries, and every reading is stored once",
  ignore: !PYTHON,
  async fn() {
    await using db = await open();
    const handle = ingest(db, { devices: { "esp32-test": "device-token" } });
    let posts = 0;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        posts++;
        if (posts <= 3) {
          await request.body?.cancel();
          return new Response("starting", {
            status: 503,
            headers: { "retry-after": "0" },
          });
        }
        const response = await handle(request);
        if (posts === 5) return new Response("lost answer", { status: 502 }); // stored, but the device does not know
        return response;
      },
    );
    const flash = await Deno.makeTempDir();
    try {
      const child = runEsp32(flash, {
        GATEWAY_URL: `http://127.0.0.1:${server.addr.port}/readings`,
        TOKEN: "device-token",
        MAX_READINGS: "60",
        INTERVAL_MS: "5",
        BATCH: "10",
        BACKOFF_MS: "20",
        BACKOFF_MAX_MS: "100",
      });
      const { code, stdout, stderr } = await child.output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      assert.match(new TextDecoder().decode(stdout), /done 60/);
      const readings = db.collection<
        { seq: number; raw: number; temp: number; device: string }
      >("readings");
      assert.equal(await readings.count(), 60);
      for (let n = 1; n <= 60; n++) {
        const r = await readings.get(
          `esp32-test/${String(n).padStart(16, "0")}`,
        );
        assert.ok(r !== null, `seq ${n} is missing`);
        const expected = expectedReading(n);
        assert.equal(r.raw, expected.raw);
        assert.ok(Math.abs(r.temp - expected.temp) < 0.006);
        assert.equal(r.device, "esp32-test");
      }
      assert.ok(
        handle.stats().duplicates > 0,
        "the batch whose answer was lost was sent again",
      );
      // Everything acknowledged: the flash buffer is gone; seq is reserved ahead.
      await assert.rejects(
        Deno.stat(`${flash}/buffer.ndjson`),
        Deno.errors.NotFound,
      );
      assert.equal(Number(await Deno.readTextFile(`${flash}/seq.txt`)), 100);
      // A reboot: numbering goes on after the reserved block, never reusing one.
      const again = await runEsp32(flash, {
        GATEWAY_URL: `http://127.0.0.1:${server.addr.port}/readings`,
        TOKEN: "device-token",
        MAX_READINGS: "3",
        INTERVAL_MS: "5",
      }).output();
      assert.equal(again.code, 0, new TextDecoder().decode(again.stderr));
      assert.equal(await readings.count(), 63);
      const first = await readings.get(
        `esp32-test/${String(101).padStart(16, "0")}`,
      );
      assert.equal(first?.raw, expectedReading(1).raw);
    } finally {
      await server.shutdown();
      await Deno.remove(flash, { recursive: true });
    }
  },
});
