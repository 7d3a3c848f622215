// The examples are run as a user runs them: as subprocesses.

import assert from "node:assert/strict";

async function run(file: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", file],
    env: { NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return out;
}

Deno.test("examples/microtetherdb.ts: every MicroTetherDB README example runs", async () => {
  const out = await run("examples/microtetherdb.ts");
  for (
    const section of [
      "basic operations",
      "TTL management",
      "query examples",
      "advanced features",
      "context manager",
      "event loop integration",
      "basic usage",
      "async integration",
    ]
  ) {
    assert.match(out, new RegExp(`${section}: ok`));
  }
});

Deno.test("examples/demo.ts runs every section", async () => {
  const out = await run("examples/demo.ts");
  for (
    const section of [
      "put and get",
      "queries",
      "batches",
      "TTL expiry",
      "stats",
    ]
  ) {
    assert.match(out, new RegExp(`== ${section} =`));
  }
  assert.match(out, /after 600 ms \(two expired\)\s+1/);
  assert.match(out, /TypeError: Cannot put 'bad'/);
});

Deno.test("examples/deploy.ts serves its API on Deno KV", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-kv",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "examples/deploy.ts",
    ],
    env: { NO_COLOR: "1", PORT: "0", TETHER_KV: ":memory:" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    let port: string | undefined;
    while (port === undefined) {
      const { value, done } = await stderr.read();
      assert(!done, `the server exited: ${text}`);
      text += value;
      port = /Listening on https?:\/\/[^ ]*:(\d+)\//.exec(text)?.[1];
    }
    const base = `http://127.0.0.1:${port}/readings`;
    const created = await fetch(`${base}?ttl=60000`, {
      method: "POST",
      body: JSON.stringify({ device: "esp32-1", temp: 21.5 }),
    });
    assert.equal(created.status, 201);
    const { id } = await created.json();
    const listed = await fetch(`${base}?device=esp32-1`);
    assert.deepEqual(await listed.json(), {
      items: [{ device: "esp32-1", temp: 21.5, _id: id }],
      next: null,
    });
    const bad = await fetch(base, { method: "POST", body: "{" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const gone = await fetch(`${base}/${id}`, { method: "DELETE" });
    assert.equal(gone.status, 204);
    await gone.body?.cancel();
  } finally {
    child.kill();
    await stderr.cancel();
    await child.status;
  }
});
