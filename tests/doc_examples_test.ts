// Every JSDoc example (a ```ts block in a `/** */` comment) of src/ runs
// here, as `deno test --doc` would run it: type-checked, then run as a test
// of its own. `deno test --doc` starts a fresh worker per example, which
// costs about a quarter of a second of CPU each on this machine (over a
// minute for the whole of src/); here they are type-checked in one
// `deno check` and imported in turn into this one worker.
//
// The entry points (mod.ts, storage.ts, cli.ts, gateway.ts) keep running
// under `deno test --doc` in `deno task test`, and every example here still
// runs under it too: `deno test --doc src/engine/btree.ts`.
//
// An example is written to a temp module of its own; its relative imports
// (`./btree.ts`) are made absolute, and "@tether/db" resolves through
// deno.json's "imports" as in a user's project.

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const CONFIG = new URL("deno.json", ROOT).pathname;

/** One JSDoc example. */
export interface Example {
  /** `src/engine/btree.ts:42` (the line of the opening fence). */
  where: string;
  /** The source file, relative to the repository root. */
  file: string;
  /** The line of the opening fence (1-based). */
  line: number;
  /** The code, with the comment's leading `*` removed. */
  code: string;
}

/**
 * The ```ts (or ```typescript, ```js, or bare ```) blocks inside the JSDoc
 * comments of one source text; a block whose info string has `ignore` is
 * left out, as `deno test --doc` leaves it out.
 */
export function extractExamples(file: string, text: string): Example[] {
  const out: Example[] = [];
  const lines = text.split("\n");
  let inDoc = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!inDoc) {
      if (/^\s*\/\*\*/.test(line) && !/\*\/\s*$/.test(line)) inDoc = true;
      continue;
    }
    if (/\*\/\s*$/.test(line)) {
      inDoc = false;
      continue;
    }
    const open = /^\s*\*?\s?(`{3,})\s*([^\s`]*)\s*(.*)$/.exec(line);
    if (!open) continue;
    const [, fence, lang, info] = open as unknown as string[];
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length; i++) {
      const inner = lines[i]!;
      if (/\*\/\s*$/.test(inner)) {
        throw new Error(
          `${file}:${start + 1}: a code fence runs past its comment`,
        );
      }
      const stripped = inner.replace(/^\s*\*( |$)/, "");
      if (stripped.trim() === fence) break;
      body.push(stripped);
    }
    const runs = /^(ts|typescript|js|javascript|tsx|jsx|)$/i.test(lang!) &&
      !/\bignore\b/.test(`${lang} ${info}`);
    if (!runs) continue;
    out.push({
      where: `${file}:${start + 1}`,
      file,
      line: start + 1,
      code: body.join("\n") + "\n",
    });
  }
  return out;
}

/**
 * The example's code with its relative import specifiers made absolute
 * (against the source file's URL), so it runs from anywhere.
 */
export function absoluteImports(code: string, source: URL): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*)\2/g,
    (_, lead: string, quote: string, path: string) =>
      `${lead}${quote}${new URL(path, source).href}${quote}`,
  );
}

async function sourceFiles(dir: URL, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const entry of entries) {
    if (entry.isDirectory) {
      out.push(
        ...await sourceFiles(
          new URL(`${entry.name}/`, dir),
          `${prefix}${entry.name}/`,
        ),
      );
    } else if (entry.isFile && entry.name.endsWith(".ts")) {
      out.push(`${prefix}${entry.name}`);
    }
  }
  return out;
}

const examples: Example[] = [];
for (const file of await sourceFiles(new URL("src/", ROOT), "src/")) {
  const text = await Deno.readTextFile(new URL(file, ROOT));
  examples.push(...extractExamples(file, text));
}

/** Where each example is written. */
const modules = new Map<Example, string>();
const base = await Deno.makeTempDir({ prefix: "tether-doc-examples-" });
for (const [n, example] of examples.entries()) {
  const path = `${base}/${String(n).padStart(4, "0")}.ts`;
  const code = absoluteImports(example.code, new URL(example.file, ROOT));
  await Deno.writeTextFile(path, code);
  modules.set(example, path);
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

Deno.test("doc examples: the extractor finds what deno test --doc runs", () => {
  const text = [
    "/**",
    " * A thing.",
    " *",
    " * @example",
    " * ```ts",
    ' * import { x } from "./x.ts";',
    " * x();",
    " * ```",
    " *",
    " * ```sh",
    " * ls",
    " * ```",
    " * ```ts ignore",
    " * not run",
    " * ```",
    " */",
    "/** ```ts not in a block comment of several lines``` */",
    "// ```ts",
    "// a line comment",
    "// ```",
  ].join("\n");
  const found = extractExamples("src/x.ts", text);
  assert.deepEqual(found.map((e) => [e.where, e.code]), [
    ["src/x.ts:5", 'import { x } from "./x.ts";\nx();\n'],
  ]);
  assert.equal(
    absoluteImports(
      'import { x } from "./x.ts";\nimport "../y.ts";\nawait import("./z.ts");\n' +
        'import { open } from "@tether/db";\n',
      new URL("file:///r/src/a/b.ts"),
    ),
    'import { x } from "file:///r/src/a/x.ts";\nimport "file:///r/src/y.ts";\n' +
      'await import("file:///r/src/a/z.ts");\nimport { open } from "@tether/db";\n',
  );
  // src/ has examples: an extractor that finds none fails here.
  assert(examples.length > 100, `only ${examples.length} examples found`);
});

Deno.test("doc examples: all type-check", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "check",
      "--quiet",
      "--no-lock",
      `--config=${CONFIG}`,
      "--unstable-kv",
      ...modules.values(),
    ],
  }).output();
  if (code === 0) return;
  let message = decode(stderr);
  for (const [example, path] of modules) {
    // file:///tmp/.../0003.ts:5:7 -> src/x.ts:47:7
    message = message.replace(
      new RegExp(`(file://)?${path}(:(\\d+))?`, "g"),
      (_, _scheme, _at, line) =>
        line === undefined
          ? example.where
          : `${example.file}:${example.line + Number(line)}`,
    );
  }
  assert.fail(message);
});

for (const [example, path] of modules) {
  Deno.test(`doc example ${example.where}`, async () => {
    await import(new URL(`file://${path}`).href);
  });
}

Deno.test({
  name: "doc examples: the temp modules are removed",
  async fn() {
    await Deno.remove(base, { recursive: true });
  },
});
