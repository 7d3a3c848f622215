// Restore under SIGKILL, with real processes: a child process
// (tests/fixtures/restore_child.ts) opens a file database holding the "old"
// data, restores a backup of other data into it (mode "replace"), and is
// killed at a random moment, from just after it opened the database to a
// little after the restore usually ends. Each time this process reopens the
// file and requires its contents to be exactly the old database or exactly
// the backup's: every document, every count, every index; never empty,
// never a mix.
//
// A few runs by default; TETHER_TORTURE=1 runs many (RESTORE_KILLS=<n> sets
// how many). The kill delays are printed with any failure.

import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";

const CHILD = new URL("./fixtures/restore_child.ts", import.meta.url).href;
const NAMES = ["readings", "notes", "extra", "default"];

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const TORTURE = env("TETHER_TORTURE") === "1";
const RUNS = Number(env("RESTORE_KILLS") ?? (TORTURE ? 60 : 4));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything the database holds, as comparable data. */
async function snapshot(db: Database): Promise<string> {
  const out: Record<string, unknown> = {};
  for (const name of NAMES) {
    const c = db.collection(name);
    out[name] = {
      count: await c.count(),
      docs: await c.find({}, { sort: { _id: 1 } }).toArray(),
      indexes: (await c.indexes()).map((i) => i.name),
    };
  }
  out.items = db.stats().items;
  return JSON.stringify(out);
}

async function fillOld(db: Database): Promise<void> {
  const r = db.collection("readings");
  await r.createIndex("device");
  const docs = [];
  for (let i = 0; i < 1500; i++) {
    docs.push({ _id: `r${i}`, device: `old${i % 7}`, v: "o".repeat(120) });
  }
  for (let i = 0; i < docs.length; i += 500) {
    await r.insertMany(docs.slice(i, i + 500));
  }
  await db.collection("notes").insertMany(
    Array.from({ length: 200 }, (_, i) => ({ _id: `n${i}`, text: "old" })),
  );
  await db.put("a", "old", { ttl: 10 * 365 * 86_400_000 });
}

async function fillNew(db: Database): Promise<void> {
  const r = db.collection("readings");
  await r.createIndex("n");
  const docs = [];
  for (let i = 0; i < 2500; i++) {
    docs.push({ _id: `r${i}`, n: i, v: "n".repeat(150) });
  }
  for (let i = 0; i < docs.length; i += 500) {
    await r.insertMany(docs.slice(i, i + 500));
  }
  await db.collection("extra").insertMany(
    Array.from({ length: 500 }, (_, i) => ({ _id: `e${i}`, text: "new" })),
  );
  await db.put("b", "new", { tags: ["t"], ttl: 10 * 365 * 86_400_000 });
}

/**
 * Runs the child on `path`; kills it `delay` ms after it is ready (if it
 * has not finished). Returns how long its restore took when it finished.
 */
async function runChild(
  path: string,
  backup: string,
  delay: number | undefined,
): Promise<{ killed: boolean; took: number | undefined }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, path, backup],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let onReady!: () => void;
  const ready = new Promise<void>((r) => onReady = r);
  let took: number | undefined;
  const reading = (async () => {
    let text = "";
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      text += chunk;
      if (text.includes("ready\n")) onReady();
      const done = /done (\d+)/.exec(text);
      if (done !== null) took = Number(done[1]);
    }
  })();
  try {
    await Promise.race([ready, status]);
    if (delay !== undefined && !exited) {
      await sleep(delay);
      // It may have ended between the flag and the kill (the flag is set
      // a microtask after the process ends): then there is nothing to kill.
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch (e) {
          if (!/already terminated/.test(String(e))) throw e;
        }
      }
    }
    const { signal, code } = await status;
    await reading;
    const killed = signal === "SIGKILL";
    if (!killed) {
      assert.equal(code, 0, `the child failed: ${await stderr}`);
    }
    return { killed, took };
  } finally {
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
    }
    await reading.catch(() => {});
    await stderr.catch(() => {});
  }
}

Deno.test({
  name:
    "restore killed at any moment leaves exactly the old database or exactly the restored one",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tether-restore-kill-" });
    try {
      const template = `${dir}/template.tdb`;
      {
        await using db = await open({ path: template });
        await fillOld(db);
      }
      let old: string;
      {
        await using db = await open({ path: template });
        old = await snapshot(db);
      }
      const backup = `${dir}/new.tbk`;
      {
        await using db = await open();
        await fillNew(db);
        await db.backup(backup);
      }
      let restored: string;
      {
        await using db = await open();
        await db.restore(backup);
        restored = await snapshot(db);
      }
      assert.notEqual(old, restored);
      // One run to completion: how long a restore takes here.
      const path = `${dir}/run.tdb`;
      await Deno.copyFile(template, path);
      const calibration = await runChild(path, backup, undefined);
      assert.ok(calibration.took !== undefined);
      {
        await using db = await open({ path });
        assert.equal(await snapshot(db), restored, "a completed restore");
      }
      const span = Math.max(20, calibration.took * 1.3);
      const outcomes = { old: 0, restored: 0 };
      const delays: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        await Deno.remove(`${path}.lock`).catch(() => {});
        await Deno.copyFile(template, path);
        // Spread over the restore, from its first moment.
        const delay = Math.floor(((run + Math.random()) / RUNS) * span);
        delays.push(delay);
        const { killed } = await runChild(path, backup, delay);
        await using db = await open({ path });
        const found = await snapshot(db);
        const what: string = `run ${run}, killed ${
          killed ? `after ${delay} ms` : "never (it finished)"
        }; delays so far ${
          delays.join(",")
        }; restore took ${calibration.took} ms`;
        if (found === old) outcomes.old++;
        else if (found === restored) outcomes.restored++;
        else {
          const counts = JSON.parse(found) as Record<string, { count: number }>;
          assert.fail(
            `${what}: the database is neither the old one nor the restored one (${
              NAMES.map((n) => `${n}: ${counts[n]?.count}`).join(", ")
            })`,
          );
        }
        assert.deepEqual((await db.verify()).problems, [], what);
      }
      console.log(
        `restore kills: ${RUNS} runs, ${outcomes.old} old, ${outcomes.restored} restored (a restore took ${calibration.took} ms)`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
