// Progress (percentage, rate and ETA when the total is known, a spinner
// otherwise), drawn only on a terminal; colour only on a terminal without
// NO_COLOR, in the CLI and in examples/demo.ts.

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { main } from "../cli.ts";
import { paint, useColour } from "../src/cli/colour.ts";
import { Out } from "../src/cli/output.ts";
import {
  formatDuration,
  formatProgress,
  Progress,
  REDRAW_MS,
} from "../src/cli/progress.ts";

function sink(): { stream: WritableStream<Uint8Array>; text: () => string } {
  let text = "";
  const decoder = new TextDecoder();
  return {
    stream: new WritableStream({
      write: (chunk) => void (text += decoder.decode(chunk, { stream: true })),
    }),
    text: () => text,
  };
}

const MiB = 1024 * 1024;

Deno.test("progress: the line shows percentage, amounts, rate and ETA when the total is known, else a spinner", () => {
  assert.equal(
    formatProgress({
      label: "importing",
      done: MiB,
      total: 4 * MiB,
      unit: "bytes",
      elapsedMs: 2000,
    }),
    "importing [#####...............]  25%  1.0 MiB/4.0 MiB  512 KiB/s  ETA 0:06",
  );
  assert.equal(
    formatProgress({
      label: "exporting",
      done: 50,
      total: 100,
      unit: "items",
      elapsedMs: 2000,
    }),
    "exporting [##########..........]  50%  50/100  25/s  ETA 0:02",
  );
  // Done, and past the total (an estimate): 100%, ETA 0:00.
  assert.match(
    formatProgress({
      label: "x",
      done: 120,
      total: 100,
      unit: "items",
      elapsedMs: 1000,
    }),
    /\[#{20}\] 100% .* ETA 0:00$/,
  );
  // Nothing done yet: no rate to estimate from.
  assert.match(
    formatProgress({
      label: "x",
      done: 0,
      total: 100,
      unit: "items",
      elapsedMs: 0,
    }),
    / {2}0% .* ETA -:--$/,
  );
  // No total: a spinner, with the amount and rate once there is one.
  assert.equal(
    formatProgress({
      label: "backing up",
      done: MiB,
      unit: "bytes",
      elapsedMs: 2000,
      frame: 1,
    }),
    "/ backing up 1.0 MiB  512 KiB/s  2.0 s",
  );
  assert.equal(
    formatProgress({
      label: "verifying",
      done: 0,
      unit: "items",
      elapsedMs: 1500,
    }),
    "| verifying 1.5 s",
  );
  assert.equal(formatDuration(6), "0:06");
  assert.equal(formatDuration(3725), "1:02:05");
});

Deno.test("progress: drawn and erased on a terminal, nothing otherwise", async () => {
  for (const terminal of [true, false]) {
    const err = sink();
    const out = new Out(err.stream);
    const progress = new Progress(
      out,
      terminal,
      "exporting",
      () => ({ done: 5, total: 10 }),
      "items",
    );
    await new Promise((r) => setTimeout(r, 450));
    await progress.stop();
    if (terminal) {
      assert.match(
        err.text(),
        new RegExp(
          "^\\rexporting \\[#{10}\\.{10}\\] {2}50% {2}5/10 {2}\\d+/s {2}ETA \\d:\\d\\d" +
            String.fromCharCode(27) + "\\[K",
        ),
      );
      assert(err.text().endsWith("\r\x1b[K"));
    } else {
      assert.equal(err.text(), "");
    }
  }
});

Deno.test("progress: commands write nothing to stderr when it is not a terminal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-progress-" });
  try {
    const path = `${dir}/app.tdb`;
    {
      await using db = await open({ path });
      await db.collection("c").insertMany(
        Array.from({ length: 200 }, (_, i) => ({ _id: `k${i}`, i })),
      );
    }
    const db = ["--db", path];
    for (
      const args of [
        ["export", `${dir}/all.ndjson`],
        ["export", `${dir}/c.csv`],
        ["backup", `${dir}/all.tbk`],
        ["verify"],
        ["compact"],
        ["repair", "--out", `${dir}/fixed.tdb`],
        ["import", `${dir}/c.csv`, "--db", `${dir}/copy.tdb`],
        ["restore", `${dir}/all.tbk`, "--db", `${dir}/copy2.tdb`],
      ]
    ) {
      const out = sink();
      const err = sink();
      const code = await main(
        args.includes("--db") ? args : [...args, ...db],
        { stdout: out.stream, stderr: err.stream, env: () => undefined },
      );
      assert.equal(code, 0, `${args.join(" ")}: ${err.text()}`);
      assert.equal(err.text(), "", args.join(" "));
      assert.notEqual(out.text(), "");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("colour: only on a terminal, never with NO_COLOR", async () => {
  assert.equal(useColour(true, () => undefined), true);
  assert.equal(
    useColour(true, (n) => n === "NO_COLOR" ? "1" : undefined),
    false,
  );
  assert.equal(useColour(true, (n) => n === "NO_COLOR" ? "" : undefined), true);
  assert.equal(useColour(false, () => undefined), false);
  assert.equal(paint(false).red("x"), "x");
  assert.equal(paint(true).red("x"), "\x1b[31mx\x1b[39m");
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-colour-" });
  try {
    const path = `${dir}/app.tdb`;
    await (await open({ path })).close();
    const verify = async (terminal: boolean, noColor: string | undefined) => {
      const out = sink();
      await main(["verify", "--db", path], {
        stdout: out.stream,
        stdoutIsTerminal: terminal,
        env: (n) => n === "NO_COLOR" ? noColor : undefined,
      });
      return out.text();
    };
    assert.equal(
      await verify(true, undefined),
      "checked 0 stored values: \x1b[32mno problems\x1b[39m\n",
    );
    assert.equal(
      await verify(true, "1"),
      "checked 0 stored values: no problems\n",
    );
    assert.equal(
      await verify(false, undefined),
      "checked 0 stored values: no problems\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples/demo.ts writes no colour codes into a pipe", async () => {
  const env = Deno.env.toObject();
  delete env.NO_COLOR;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "examples/demo.ts"],
    env,
    clearEnv: true,
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0);
  assert.match(text, /== put and get =/);
  assert(!text.includes("\x1b["), "colour codes in a pipe");
});

Deno.test("progress: backup on a terminal shows the documents copied against the total, with percentage, rate and ETA", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-progress-" });
  try {
    const path = `${dir}/app.tdb`;
    {
      await using db = await open({ path });
      await db.collection("a").insertMany(
        Array.from({ length: 150 }, (_, i) => ({ _id: `k${i}`, i })),
      );
      await db.collection("b").insertMany([{ _id: "x" }, { _id: "y" }]);
      // The library reports each document copied.
      const seen: number[] = [];
      await db.backup(new WritableStream(), {
        onProgress: (n) => seen.push(n),
      });
      assert.deepEqual(seen, Array.from({ length: 152 }, (_, i) => i + 1));
    }
    // A slow stdout keeps the backup running while the bar is drawn.
    const err = sink();
    const out = new WritableStream<Uint8Array>({
      write: () => new Promise((r) => setTimeout(r, 250)),
    });
    const code = await main(["backup", "-", "--db", path], {
      stdout: out,
      stderr: err.stream,
      stderrIsTerminal: true,
      env: () => undefined,
    });
    assert.equal(code, 0, err.text());
    assert.match(
      err.text(),
      /\rbacking up \[[#.]{20}\] +\d+% {2}\d+\/152 {2}\d+\/s {2}ETA \d:\d\d/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("progress: verify, compact, repair and rekey on a terminal draw a bar against the total their APIs report", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-cli-progress-" });
  // The redraws of each command's progress line: run once more after the
  // command, they draw where its source ended (whatever the timing).
  const real = globalThis.setInterval;
  const redraws: (() => void)[] = [];
  globalThis.setInterval = ((fn: () => void, ms?: number) => {
    if (ms === REDRAW_MS) redraws.push(fn);
    return real(fn, ms);
  }) as typeof setInterval;
  try {
    const path = `${dir}/app.tdb`;
    {
      await using db = await open({ path });
      const c = db.collection("c");
      await c.createIndex("i");
      await c.insertMany(
        Array.from({ length: 200 }, (_, i) => ({ _id: `k${i}`, i })),
      );
      await c.updateMany({}, { $set: { x: 1 } });
    }
    const sealed = `${dir}/sealed.tdb`;
    {
      await using db = await open({
        path: sealed,
        encryption: { passphrase: "old", iterations: 1000 },
      });
      await db.collection("c").insertMany(
        Array.from({ length: 50 }, (_, i) => ({ _id: `k${i}` })),
      );
    }
    const cases: [string[], RegExp][] = [
      [
        ["verify"],
        /\rverifying \[#{20}\] 100% {2}400\/400 {2}\d+\/s {2}ETA 0:00/,
      ],
      [
        ["compact"],
        /\rcompacting \[#{20}\] 100% {2}([\d.]+ KiB)\/\1 {2}\S+ \S+\/s {2}ETA 0:00/,
      ],
      [
        ["repair", "--out", `${dir}/fixed.tdb`],
        /\rrepairing \[#{20}\] 100% {2}(\d+)\/\1 {2}\d+\/s {2}ETA 0:00/,
      ],
      [
        ["rekey", "--new-passphrase-env", "NEW", "--iterations", "1000"],
        /\rrekeying \[#{20}\] 100% {2}(\d+)\/\1 {2}\d+\/s {2}ETA 0:00/,
      ],
    ];
    for (const [args, line] of cases) {
      redraws.length = 0;
      const err = sink();
      const rekey = args[0] === "rekey";
      const code = await main([...args, "--db", rekey ? sealed : path], {
        stdout: sink().stream,
        stderr: err.stream,
        stderrIsTerminal: true,
        env: (name) =>
          rekey ? ({ TETHER_PASSPHRASE: "old", NEW: "new" })[name] : undefined,
      });
      assert.equal(code, 0, err.text());
      assert.equal(redraws.length, 1, args[0]);
      redraws[0]!();
      await new Promise((r) => setTimeout(r, 0));
      assert.match(err.text(), line, args[0]);
    }
  } finally {
    globalThis.setInterval = real;
    await Deno.remove(dir, { recursive: true });
  }
});
