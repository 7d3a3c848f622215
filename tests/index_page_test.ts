/**
 * Cursor positions through index plans: pages of a multikey index, of
 * several ranges (`$in`) and of a reversed index order resume exactly where
 * the last page stopped, and give what `toArray()` gives, on the memory
 * and file storages (the object tier's index trees hand out each
 * document's index entry only when a page asks for positions).
 */

import assert from "node:assert/strict";
import { open } from "../mod.ts";

interface Doc {
  n: number;
  tags: string[];
  g: number;
}

async function pages(
  find: (after: string | undefined) => {
    page(size: number): Promise<{ items: Doc[]; next: string | undefined }>;
  },
  size: number,
): Promise<number[]> {
  const seen: number[] = [];
  let after: string | undefined;
  do {
    // A position that does not move on would page forever: fail instead.
    assert(seen.length <= 2_000, "the pages do not end");
    const page = await find(after).page(size);
    seen.push(...page.items.map((d) => d.n));
    after = page.next;
  } while (after !== undefined);
  return seen;
}

for (const kind of ["memory", "file"] as const) {
  Deno.test(`index pages [${kind}]: multikey, $in and reversed index orders resume exactly`, async () => {
    const dir = kind === "file" ? await Deno.makeTempDir() : undefined;
    try {
      await using db = await open<Doc>(
        dir === undefined ? {} : { path: `${dir}/db.tdb` },
      );
      await db.createIndex("tags");
      await db.createIndex("g");
      for (let i = 0; i < 300; i++) {
        const tags = [`t${i % 4}`, `t${i % 7}`];
        await db.put(`k${String(i).padStart(3, "0")}`, {
          n: i,
          tags,
          g: i % 9,
        });
      }
      const cases: [Record<string, unknown>, Record<string, 1 | -1>?][] = [
        [{ tags: "t3" }],
        [{ tags: { $in: ["t1", "t5"] } }],
        [{ g: { $in: [2, 4, 8] } }],
        [{ g: { $gte: 3 } }, { g: -1 }],
        [{ tags: { $in: ["t0", "t2"] }, g: { $lt: 5 } }],
      ];
      for (const [filter, sort] of cases) {
        const options = sort === undefined ? {} : { sort };
        const all = (await db.find(filter, options).toArray()).map((d) => d.n);
        assert(all.length > 10, JSON.stringify(filter));
        assert.equal(new Set(all).size, all.length, "each document once");
        for (const size of [1, 7, 64]) {
          const seen = await pages(
            (after) =>
              db.find(
                filter,
                after === undefined ? options : { ...options, after },
              ),
            size,
          );
          assert.deepEqual(seen, all, `${JSON.stringify(filter)} by ${size}`);
        }
        // A page position survives writes between pages: a new matching
        // document after the position is seen, nothing is given twice.
        const first = await db.find(filter, options).page(5);
        await db.put("zzz", {
          n: 1000,
          tags: ["t0", "t1", "t2", "t3", "t5"],
          g: 8,
        });
        const rest = await pages(
          (after) =>
            db.find(filter, { ...options, after: after ?? first.next }),
          50,
        );
        const got = [...first.items.map((d) => d.n), ...rest];
        assert.equal(new Set(got).size, got.length, "no document twice");
        await db.delete("zzz");
      }
    } finally {
      if (dir !== undefined) await Deno.remove(dir, { recursive: true });
    }
  });
}
