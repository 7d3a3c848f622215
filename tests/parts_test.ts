/**
 * `deno task test` runs the small test files in four parts (tests/part_N.ts,
 * one worker each) and names every other test file itself (in `F`, which
 * it type-checks first in a process of its own; the parts, then the other
 * files longest first, since they start in that order on the two workers
 * and a long one started last makes the run's tail): each test file
 * must be run exactly once, by a part or by name, or a test would not run
 * (or run twice). `deno test tests/` (and `deno task torture`) runs every
 * file in its own worker, the parts aside.
 *
 * @module
 */

import assert from "node:assert/strict";

const DIR = new URL("./", import.meta.url);

Deno.test("deno task test runs every test file exactly once, by name or in a part", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", DIR)),
  );
  // The files are named once, in F, for the type-check (a process of its
  // own: the checker's memory is not the test run's) and for the run.
  const task = config.tasks.test as string;
  assert.match(
    task,
    /^F='[^']+' && deno check --unstable-kv --doc \$F && deno test --no-check [^&']* --doc \$F$/,
  );
  const named = /^F='([^']+)'/.exec(task)![1]!.split(/\s+/)
    .filter((t) => t.startsWith("tests/"));
  const run: string[] = [];
  for (const entry of named) {
    const part = /^tests\/(part_\d+\.ts)$/.exec(entry);
    if (part === null) {
      run.push(entry);
      continue;
    }
    const text = await Deno.readTextFile(new URL(part[1]!, DIR));
    for (const m of text.matchAll(/^import "\.\/([^"]+)";$/gm)) {
      run.push(`tests/${m[1]!}`);
    }
  }
  const files: string[] = [];
  for await (const e of Deno.readDir(DIR)) {
    if (e.isFile && e.name.endsWith("_test.ts")) files.push(`tests/${e.name}`);
  }
  assert.deepEqual(
    run.filter((f, i) => run.indexOf(f) !== i),
    [],
    "run twice",
  );
  const missing = files.filter((f) => !run.includes(f));
  assert.deepEqual(
    missing,
    [],
    `deno task test does not run ${
      missing.join(", ")
    }: name it in deno.json's test task, or import it from a tests/part_N.ts`,
  );
  assert.deepEqual(
    run.filter((f) => !files.includes(f)),
    [],
    "not a test file",
  );
});
