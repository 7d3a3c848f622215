/**
 * The module graph stays as DESIGN.md asks: no import circles (type-only
 * imports included: `deno info` draws them too) from any entry point, and
 * no source file over the size limit (~800 lines with its docs).
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const ENTRIES = ["mod.ts", "storage.ts", "cli.ts", "gateway.ts"];

interface InfoModule {
  specifier: string;
  dependencies?: {
    code?: { specifier?: string };
    type?: { specifier?: string };
  }[];
}

/** One import circle of the graph, as paths, or `undefined`. */
function findCircle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (u: string): string[] | undefined => {
    state.set(u, 1);
    stack.push(u);
    for (const v of graph.get(u) ?? []) {
      if (state.get(v) === 1) return [...stack.slice(stack.indexOf(v)), v];
      if (state.get(v) === undefined) {
        const found = visit(v);
        if (found !== undefined) return found;
      }
    }
    stack.pop();
    state.set(u, 2);
    return undefined;
  };
  for (const u of graph.keys()) {
    if (state.get(u) === undefined) {
      const found = visit(u);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

Deno.test("module graph: no import circles from any entry point", async () => {
  for (const entry of ENTRIES) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: InfoModule[];
    };
    const graph = new Map<string, string[]>();
    for (const m of info.modules) {
      if (!m.specifier.startsWith("file:")) continue;
      const deps: string[] = [];
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          if (s?.startsWith("file:")) deps.push(s);
        }
      }
      graph.set(m.specifier, deps);
    }
    assert(graph.size > 10, `${entry}: the graph was read`);
    const circle = findCircle(graph);
    assert.equal(
      circle?.map((s) => s.slice(ROOT.href.length)).join(" -> "),
      undefined,
      `${entry} has an import circle`,
    );
  }
});

Deno.test("module graph: the circle finder finds a circle of type imports", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", []]]);
  assert.deepEqual(findCircle(g), ["a", "b", "c", "a"]);
  assert.equal(findCircle(new Map([["a", ["b"]], ["b", []]])), undefined);
});

Deno.test("module graph: no source file over 800 lines", async () => {
  const long: string[] = [];
  const walk = async (dir: URL, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) {
        await walk(new URL(`${e.name}/`, dir), `${rel}${e.name}/`);
      } else if (e.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(new URL(e.name, dir));
        const lines = text.split("\n").length - 1;
        if (lines > 800) long.push(`${rel}${e.name}: ${lines}`);
      }
    }
  };
  await walk(new URL("src/", ROOT), "src/");
  for (const entry of ENTRIES) {
    const text = await Deno.readTextFile(new URL(entry, ROOT));
    if (text.split("\n").length - 1 > 800) long.push(entry);
  }
  assert.deepEqual(long, []);
});
