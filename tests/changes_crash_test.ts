/**
 * The change feed across SIGKILL: a child process writes to a file database
 * while its own live feed reader prints what it sees; the parent kills it
 * mid-write, reopens the file, and checks that every change the reader saw
 * survived (a change is in the feed only once durable, in strict and
 * batched durability alike), that a consumer resumes from the last seq it
 * saw, and that new positions are above every position seen.
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { collect } from "./changes_helpers.ts";

const WRITER = new URL("./fixtures/feed_writer.ts", import.meta.url).pathname;
const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
const KILLS = TORTURE ? 20 : 2;
const SEEN = 300;

async function runAndKill(
  path: string,
  durability: string,
  since: number,
): Promise<{ seq: number; key: string }[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      WRITER,
      path,
      durability,
      ...(since > 0 ? [String(since)] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const seen: { seq: number; key: string }[] = [];
  let rest = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  while (seen.length < SEEN) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      const [what, seq, key] = line.split(" ");
      if (what === "seen") seen.push({ seq: Number(seq), key: key! });
    }
  }
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel().catch(() => {});
  return seen;
}

for (const durability of ["strict", "batched"]) {
  Deno.test(`changes (file, ${durability}): what a live reader saw survives SIGKILL; resume and new positions follow it`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tether-feed-kill-" });
    try {
      const path = `${dir}/db.tdb`;
      let top = 0;
      for (let round = 0; round < KILLS; round++) {
        // The child's reader resumes after the probe written last round.
        const seen = await runAndKill(path, durability, top);
        assert(seen.length > 0, "the reader saw changes before the kill");
        for (const s of seen) {
          assert(s.seq > top, "positions grow across kills");
        }
        const last = seen.at(-1)!;
        await using db = await open({ path });
        const latest = new Map<string, number>();
        for (const c of await collect(db)) latest.set(c.key, Number(c.seq));
        for (const s of seen) {
          assert(
            (latest.get(s.key) ?? -1) >= s.seq,
            `${s.key} seen at ${s.seq} is still there (${latest.get(s.key)})`,
          );
        }
        // The consumer resumes from the last seq it saw.
        const after = await collect(db, { since: String(last.seq) });
        for (const c of after) assert(Number(c.seq) > last.seq);
        await db.put("probe", round);
        const [probe] = await collect(db, { since: String(last.seq) })
          .then((all) => all.filter((c) => c.key === "probe"));
        top = Number(probe!.seq);
        assert(top > Math.max(...seen.map((s) => s.seq)));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
