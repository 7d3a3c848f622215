/**
 * `deno task test` runs the small test files in four parts (tests/part_N.ts,
 * one worker each) and leaves them out of `deno test tests/` (`test.exclude`
 * in deno.json): each such file must be in exactly one part, and each part's
 * file excluded, or a test would not run, or run twice.
 *
 * @module
 */

import assert from "node:assert/strict";

const DIR = new URL("./", import.meta.url);
const PARTS = ["part_1.ts", "part_2.ts", "part_3.ts", "part_4.ts"];

Deno.test("every small test file is in exactly one part, and only those are left out of tests/", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", DIR)),
  );
  const excluded: string[] = config.test.exclude;
  const inParts: string[] = [];
  for (const part of PARTS) {
    const text = await Deno.readTextFile(new URL(part, DIR));
    for (const m of text.matchAll(/^import "\.\/([^"]+)";$/gm)) {
      inParts.push(`tests/${m[1]!}`);
    }
  }
  assert.deepEqual(
    inParts.filter((f, i) => inParts.indexOf(f) !== i),
    [],
    "in two parts",
  );
  assert.deepEqual([...inParts].sort(), [...excluded].sort());
  for (const f of inParts) {
    assert.ok((await Deno.stat(new URL(`../${f}`, DIR))).isFile, f);
  }
  const list = PARTS.map((p) => `tests/${p}`).join(" ");
  for (const task of ["test", "torture"]) {
    assert.ok(
      (config.tasks[task] as string).includes(`tests/ ${list}`),
      `deno task ${task} runs tests/ and the parts`,
    );
  }
});
