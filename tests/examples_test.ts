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
