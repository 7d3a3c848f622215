// The bound of durability "batched", with real processes: a writer
// (tests/fixtures/batched_writer.ts) puts keys with flushInterval 100 and
// prints each acknowledgement with its time; this process kills it with
// SIGKILL at a random moment, reopens the file, and checks that every key
// acknowledged more than flushInterval + SLACK_MS before the kill is there.
//
// SLACK_MS stands for the write and fsync already under way when the timer
// fires, and the commit's own (see `Durability`): generous, so that a loaded
// machine cannot make it fail; a commit left unwritten until the next
// commit, or a flush held back behind a long compaction fsync, still would.
//
// 2 kills normally (the second on a file the first kill left, reopened
// and written again); TETHER_TORTURE=1 runs 60.

import assert from "node:assert/strict";
import { open } from "../mod.ts";

const WRITER = new URL("./fixtures/batched_writer.ts", import.meta.url).href;
const FLUSH_INTERVAL = 100;
const SLACK_MS = 1000;

function torture(): boolean {
  try {
    return Deno.env.get("TETHER_TORTURE") === "1";
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Round {
  /** Acknowledged keys: number and time. */
  acks: { n: number; at: number }[];
  killedAt: number;
}

async function runAndKill(
  path: string,
  tag: string,
  delay: number,
): Promise<Round> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      WRITER,
      path,
      tag,
      String(FLUSH_INTERVAL),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const acks: { n: number; at: number }[] = [];
  let onReady!: () => void;
  const ready = new Promise<void>((r) => onReady = r);
  const reading = (async () => {
    let buffer = "";
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        if (line === "R") onReady();
        const [t, n, at] = line.split(" ");
        if (t === "A") acks.push({ n: Number(n), at: Number(at) });
      }
    }
  })();
  const status = child.status;
  await Promise.race([
    ready,
    status.then(async (s) => {
      throw new Error(
        `the writer exited (code ${s.code}) before it was ready: ${await stderr}`,
      );
    }),
  ]);
  await sleep(delay);
  const killedAt = Date.now();
  child.kill("SIGKILL");
  const { signal, code } = await status;
  await reading;
  assert.equal(
    signal,
    "SIGKILL",
    `the writer ended on its own (code ${code}): ${await stderr}`,
  );
  return { acks, killedAt };
}

Deno.test("batched durability: after SIGKILL, every write acknowledged more than flushInterval (+ slack for the fsync under way) before the kill is there", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-batched-" });
  const path = `${dir}/batched.tdb`;
  const rounds = torture() ? 60 : 2;
  let checked = 0;
  let lostYoung = 0;
  let oldestLoss = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const tag = `r${round}`;
      const delay = 1200 + Math.floor(Math.random() * 800);
      const { acks, killedAt } = await runAndKill(path, tag, delay);
      const db = await open({ path, ttlCheckInterval: Infinity });
      try {
        for (const { n, at } of acks) {
          const age = killedAt - at;
          const value = await db.get(`${tag}-${n}`) as { n: number } | null;
          if (value !== null) {
            assert.equal(value.n, n);
            continue;
          }
          lostYoung++;
          oldestLoss = Math.max(oldestLoss, age);
          assert(
            age <= FLUSH_INTERVAL + SLACK_MS,
            `round ${round}: ${tag}-${n}, acknowledged ${age} ms before the kill, is lost (of ${acks.length} acknowledged)`,
          );
        }
        checked += acks.filter(({ at }) =>
          killedAt - at > FLUSH_INTERVAL + SLACK_MS
        ).length;
      } finally {
        await db.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(
    `${rounds} kills: ${checked} writes old enough to be bound all present; ${lostYoung} younger ones lost (the oldest ${oldestLoss} ms)`,
  );
  // Not vacuous: writes old enough for the bound were there to check.
  assert(checked > 0);
});
