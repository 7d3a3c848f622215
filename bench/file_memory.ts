/**
 * Memory held by an open file database, per document: writes N small
 * documents with insertMany, closes, then measures the JS heap and RSS growth
 * of reopening it, and the reopen time.
 *
 * deno run -A --v8-flags=--expose-gc bench/file_memory.ts [N]
 */

import { open } from "../mod.ts";

const N = Number(Deno.args[0] ?? 200_000);
const dir = await Deno.makeTempDir({ prefix: "tether-memory-" });
const path = `${dir}/m.tdb`;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
try {
  {
    await using db = await open({ path, durability: "none" });
    const docs = [];
    for (let i = 0; i < N; i++) {
      docs.push({
        n: i,
        name: "sensor-" + (i % 100),
        temp: 20 + (i % 50) / 10,
      });
    }
    const readings = db.collection("docs");
    for (let i = 0; i < N; i += 1000) {
      await readings.insertMany(docs.slice(i, i + 1000));
    }
  }
  gc();
  const before = Deno.memoryUsage();
  const t0 = performance.now();
  const db = await open({ path });
  const ms = performance.now() - t0;
  gc();
  const after = Deno.memoryUsage();
  const perDoc = (bytes: number) => (bytes / N).toFixed(0);
  console.log(
    `${N} documents: reopen ${ms.toFixed(0)} ms; heap +${
      perDoc(after.heapUsed - before.heapUsed)
    } B/doc, RSS +${perDoc(after.rss - before.rss)} B/doc; log ${
      perDoc((await Deno.stat(path)).size)
    } B/doc`,
  );
  await db.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}
