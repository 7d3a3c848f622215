// The file storage's one-writer lock, with real processes: a holder process
// (tests/fixtures/lock_holder.ts) keeps a database open while this process
// tries to open it, for writing and read-only.

import assert from "node:assert/strict";
import { LockedError, open } from "../mod.ts";

const HOLDER = new URL("./fixtures/lock_holder.ts", import.meta.url).href;

interface Holder {
  readonly child: Deno.ChildProcess;
  /** Resolves when the holder has printed this line. */
  waitFor(line: string): Promise<void>;
  /** Sends a line on its stdin. */
  send(line: string): Promise<void>;
  /** Closes its stdin. */
  endInput(): Promise<void>;
  /** Whether it has exited. */
  readonly ended: boolean;
  /** Its exit status (and stderr, for failure messages). */
  readonly status: Promise<Deno.CommandStatus & { stderr: string }>;
}

function startHolder(path: string): Holder {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", HOLDER, path],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const seen = new Set<string>();
  const waiters: { line: string; resolve: () => void }[] = [];
  let ended = false;
  const reading = (async () => {
    let buffer = "";
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        seen.add(line);
        for (const w of waiters.filter((w) => w.line === line)) w.resolve();
      }
    }
  })();
  const status = Promise.all([child.status, stderr, reading]).then((
    [s, text],
  ) => {
    ended = true;
    return { ...s, stderr: text };
  });
  const input = child.stdin.getWriter();
  let inputClosed = false;
  return {
    child,
    status,
    waitFor: (line) =>
      seen.has(line) ? Promise.resolve() : Promise.race([
        new Promise<void>((resolve) => waiters.push({ line, resolve })),
        status.then((s) => {
          if (!seen.has(line)) {
            throw new Error(
              `the holder exited (code ${s.code}) before printing '${line}': ${s.stderr}`,
            );
          }
        }),
      ]),
    send: (line) => input.write(new TextEncoder().encode(`${line}\n`)),
    endInput: async () => {
      if (inputClosed) return;
      inputClosed = true;
      await input.close().catch(() => {});
    },
    get ended() {
      return ended;
    },
  };
}

/** Makes sure the holder is gone, whatever the test did. */
async function stop(holder: Holder): Promise<void> {
  if (!holder.ended) {
    try {
      holder.child.kill("SIGKILL");
    } catch { /* already exited */ }
  }
  await holder.endInput();
  await holder.status;
}

async function assertLocked(
  opening: Promise<unknown>,
  path: string,
): Promise<void> {
  await assert.rejects(opening, (e: unknown) => {
    assert.ok(e instanceof LockedError, `expected a LockedError, got ${e}`);
    assert.ok(
      e.message.includes(path),
      `the message names the file: ${e.message}`,
    );
    return true;
  });
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tether-lock-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("another process's open database: a writer's open fails with LockedError naming the file, a read-only open reads its data, and SIGKILL releases the lock", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/locked.tdb`;
    const holder = startHolder(path);
    try {
      await holder.waitFor("ready");
      await assertLocked(open({ path, lockTimeout: 300 }), path);
      await assertLocked(open({ path, lockTimeout: 0 }), path);

      // A reader takes no lock: it opens, sees the holder's committed data,
      // and refuses writes.
      const reader = await open({ path, readOnly: true });
      try {
        assert.deepEqual(await reader.get("held"), {
          by: "child",
          pid: holder.child.pid,
        });
        assert.equal(reader.stats().storageStats?.readOnly, true);
        await assert.rejects(reader.put("mine", 1), TypeError);
        await assert.rejects(reader.delete("held"), TypeError);
      } finally {
        await reader.close();
      }
      // Closing the reader left the holder's lock alone.
      await assertLocked(open({ path, lockTimeout: 100 }), path);

      holder.child.kill("SIGKILL");
      const { signal } = await holder.status;
      assert.equal(signal, "SIGKILL");

      // The kernel released the dead holder's lock.
      const db = await open({ path, lockTimeout: 300 });
      try {
        assert.deepEqual(await db.get("held"), {
          by: "child",
          pid: holder.child.pid,
        });
        await db.put("mine", 1);
        assert.equal(await db.get("mine"), 1);
      } finally {
        await db.close();
      }
    } finally {
      await stop(holder);
    }
  });
});

Deno.test("the lock is released when the holding process closes its database and exits", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/exit.tdb`;
    const holder = startHolder(path);
    try {
      await holder.waitFor("ready");
      await assertLocked(open({ path, lockTimeout: 300 }), path);
      await holder.endInput();
      const { code, stderr } = await holder.status;
      assert.equal(code, 0, stderr);
      const db = await open({ path, lockTimeout: 300 });
      try {
        assert.deepEqual(await db.get("held"), {
          by: "child",
          pid: holder.child.pid,
        });
      } finally {
        await db.close();
      }
    } finally {
      await stop(holder);
    }
  });
});

Deno.test("an open waiting for the lock succeeds when the other process closes the database before lockTimeout", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/wait.tdb`;
    const holder = startHolder(path);
    try {
      await holder.waitFor("ready");
      // Held now: the holder only lets go when told to.
      await assertLocked(open({ path, lockTimeout: 0 }), path);
      const waiting = open({ path, lockTimeout: 5000 });
      // Told now, it writes `last` 200 ms later, then closes the database
      // and stays alive.
      await holder.send("close");
      const db = await waiting;
      try {
        // The open got the lock only after the holder's last write.
        assert.deepEqual(await db.get("last"), { by: "child" });
        assert.deepEqual(await db.get("held"), {
          by: "child",
          pid: holder.child.pid,
        });
        await holder.waitFor("closed");
        // The holder process still runs: closing the database released it.
        await db.put("mine", 2);
      } finally {
        await db.close();
      }
      await holder.endInput();
      const { code, stderr } = await holder.status;
      assert.equal(code, 0, stderr);
      const reader = await open({ path, readOnly: true });
      try {
        assert.equal(await reader.get("mine"), 2);
      } finally {
        await reader.close();
      }
    } finally {
      await stop(holder);
    }
  });
});

Deno.test("a second open of the same file in the same process fails with LockedError until the first is closed", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/same.tdb`;
    const first = await open({ path });
    let closed = false;
    try {
      await first.put("k", "first");
      await assertLocked(open({ path, lockTimeout: 100 }), path);
      await assertLocked(open({ path, lockTimeout: 0 }), path);
      // The failed opens did not take the first one's lock away.
      await first.put("k", "still first");
      await assertLocked(open({ path, lockTimeout: 0 }), path);
      // Reading alongside is fine.
      const reader = await open({ path, readOnly: true });
      assert.equal(await reader.get("k"), "still first");
      await reader.close();
      await first.close();
      closed = true;
      const second = await open({ path, lockTimeout: 100 });
      try {
        assert.equal(await second.get("k"), "still first");
        await second.put("k", "second");
      } finally {
        await second.close();
      }
      const third = await open({ path, lockTimeout: 100 });
      assert.equal(await third.get("k"), "second");
      await third.close();
    } finally {
      if (!closed) await first.close();
    }
  });
});

async function inode(path: string): Promise<number | null> {
  return (await Deno.stat(path)).ino;
}

Deno.test("a second writer through a symbolic link is refused with LockedError, in another process and in this one", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/real.tdb`;
    const link = `${dir}/link.tdb`;
    const holder = startHolder(path);
    try {
      await holder.waitFor("ready");
      await Deno.symlink(path, link);
      await assertLocked(open({ path: link, lockTimeout: 200 }), link);
      // A reader through the link needs no lock.
      const reader = await open({ path: link, readOnly: true });
      assert.deepEqual(await reader.get("held"), {
        by: "child",
        pid: holder.child.pid,
      });
      await reader.close();
    } finally {
      await stop(holder);
    }
    // In one process: the real path and the link are the same database.
    const first = await open({ path: link });
    try {
      await first.put("k", 1);
      await assertLocked(open({ path, lockTimeout: 100 }), path);
      await assertLocked(
        open({ path: `${dir}/./link.tdb`, lockTimeout: 0 }),
        `${dir}/./link.tdb`,
      );
      // Compacting through the link replaces the real file, not the link.
      assert.equal(await first.compact(), true);
      await first.put("k", 2);
    } finally {
      await first.close();
    }
    assert((await Deno.lstat(link)).isSymlink);
    const again = await open({ path, readOnly: true });
    assert.equal(await again.get("k"), 2);
    await again.close();
  });
});

Deno.test("deleting a .lock file beside the database does not let a second writer in", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/nolock.tdb`;
    const holder = startHolder(path);
    try {
      await holder.waitFor("ready");
      // Older releases locked this side file; deleting it changes nothing.
      await Deno.remove(`${path}.lock`).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      await assertLocked(open({ path, lockTimeout: 200 }), path);
      // Nor does a stale one left by an older release.
      await Deno.writeFile(`${path}.lock`, new Uint8Array());
      await assertLocked(open({ path, lockTimeout: 0 }), path);
    } finally {
      await stop(holder);
    }
  });
});

Deno.test("a writer waiting while the holder compacts (a new file renamed over the log) gets the new file, never the replaced one", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/compacting.tdb`;
    const holder = startHolder(path);
    try {
      await holder.waitFor("ready");
      const old = await inode(path);
      // The waiter opens the file the path names now, and polls its lock.
      const waiting = open({ path, lockTimeout: 20_000 });
      let settled = false;
      waiting.then(() => settled = true, () => settled = true);
      await new Promise((r) => setTimeout(r, 300));
      assert(!settled, "the waiter waits while the holder has the file");
      await holder.send("compact");
      await holder.waitFor("compacted");
      const replaced = await inode(path);
      if (old !== null) assert.notEqual(replaced, old, "a new file");
      // Still waiting: the new file is locked too.
      await new Promise((r) => setTimeout(r, 300));
      assert(!settled, "the new file is locked as well");
      await holder.send("close");
      const db = await waiting;
      try {
        // It sees everything the holder wrote, after the compaction too.
        assert.deepEqual(await db.get("last"), { by: "child" });
        assert.deepEqual(await db.get("after-compact"), { by: "child" });
        assert.deepEqual(await db.get("before-compact"), { by: "child" });
        await db.put("mine", 3);
        assert.equal(await inode(path), replaced);
      } finally {
        await db.close();
      }
      const reader = await open({ path, readOnly: true });
      try {
        assert.equal(await reader.get("mine"), 3);
        assert.deepEqual(await reader.get("last"), { by: "child" });
      } finally {
        await reader.close();
      }
    } finally {
      await stop(holder);
    }
  });
});
