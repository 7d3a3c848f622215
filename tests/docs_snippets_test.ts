// Every ```ts block of README.md and docs/*.md runs here, as a user would
// run it after pasting it into a project: each in a fresh temp directory of
// its own, importing "@tether/db" through deno.json's "imports", type-checked
// (in one `deno check` for all, of copies in a directory kept between runs so
// that deno's check cache applies) and then run as a subprocess.
//
// The fence's info string says how a block is run:
//   ```ts                      run it; it must exit 0
//   ```ts serve                a server: run it with PORT=0, wait for
//                              "Listening on", then stop it
//   ```ts requires=FILE        run it only once FILE exists in the repository
//                              (a module another branch adds); until then
//                              the test is reported as ignored, naming FILE
//   ```ts ignore REASON        not run (a fragment); REASON is required
//   ```ts cwd=root             run with the repository root as the working
//                              directory (a block that reads its fixtures)
// A block in another language (sh, console, python, json) is not run.
//
// Every JSDoc example of src/ (a ```ts block in a `/** */` comment) runs here
// too, as `deno test --doc` would run it: type-checked (in the same
// `deno check` as the snippets), then imported as a test of its own into
// this worker, its relative imports made absolute. `deno test --doc` would
// start a fresh worker per example: about a quarter of a second of CPU each
// on this machine, over a minute for src/. The entry points (mod.ts,
// storage.ts, cli.ts, gateway.ts) keep running under `deno test --doc` in
// `deno task test`, and every example still runs under it too
// (`deno test --doc src/engine/btree.ts`).

import assert from "node:assert/strict";
import {
  absoluteImports,
  type Example,
  extractExamples,
  sourceFiles,
} from "./fixtures/doc_examples.ts";

const ROOT = new URL("../", import.meta.url);
const CONFIG = new URL("deno.json", ROOT).pathname;

/** One fenced TypeScript block. */
interface Snippet {
  /** `README.md:42` (the line of the opening fence). */
  where: string;
  file: string;
  /** The line of the opening fence (1-based). */
  line: number;
  code: string;
  mode: "run" | "serve" | "ignore";
  /** Why it is ignored (mode "ignore"). */
  reason?: string;
  /** A repository file the block needs (`requires=`). */
  requires?: string;
  /** Run from the repository root (`cwd=root`). */
  root?: boolean;
}

async function markdownFiles(): Promise<string[]> {
  const files = ["README.md"];
  const docs = new URL("docs/", ROOT);
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(docs)) {
      if (entry.isFile && entry.name.endsWith(".md")) names.push(entry.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return files.concat(names.sort().map((name) => `docs/${name}`));
}

/** The fenced TypeScript blocks of one markdown text. */
export function extractSnippets(file: string, text: string): Snippet[] {
  const lines = text.split("\n");
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang, info] = open as unknown as string[];
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim().startsWith(fence!) && line.trim() === fence) break;
      body.push(line.startsWith(indent!) ? line.slice(indent!.length) : line);
    }
    assert(i < lines.length, `${file}:${start + 1}: unclosed code fence`);
    if (!/^(ts|typescript|js|javascript|tsx)$/i.test(lang!)) continue;
    const where = `${file}:${start + 1}`;
    const words = info!.trim();
    const snippet: Snippet = {
      where,
      file,
      line: start + 1,
      code: body.join("\n") + "\n",
      mode: "run",
    };
    if (/^ignore\b/.test(words)) {
      snippet.mode = "ignore";
      snippet.reason = words.slice("ignore".length).trim();
      assert(snippet.reason, `${where}: "ts ignore" needs a reason after it`);
    } else if (words !== "") {
      for (const word of words.split(/\s+/)) {
        const requires = /^requires=(.+)$/.exec(word);
        if (word === "serve") snippet.mode = "serve";
        else if (word === "cwd=root") snippet.root = true;
        else if (requires) snippet.requires = requires[1]!;
        else assert.fail(`${where}: unknown fence word '${word}'`);
      }
    }
    out.push(snippet);
  }
  return out;
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

const FLAGS = [
  "--quiet",
  "--no-lock",
  `--config=${CONFIG}`,
  "--unstable-kv",
];
const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-net=127.0.0.1,localhost,0.0.0.0",
];
const ENV = {
  NO_COLOR: "1",
  PORT: "0",
  TETHER_PASSPHRASE: "correct horse battery staple",
  KITCHEN_TOKEN: "kitchen-token",
  SYNC_TOKEN: "sync-token",
  KV_PATH: ":memory:",
};

const snippets: Snippet[] = [];
for (const file of await markdownFiles()) {
  const text = await Deno.readTextFile(new URL(file, ROOT));
  snippets.push(...extractSnippets(file, text));
}
const runnable: Snippet[] = [];
for (const snippet of snippets) {
  if (snippet.mode === "ignore") continue;
  if (snippet.requires && !await exists(new URL(snippet.requires, ROOT))) {
    continue;
  }
  runnable.push(snippet);
}
const ignored = snippets.filter((s) => s.mode === "ignore");
const waiting = snippets.filter((s) =>
  s.mode !== "ignore" && !runnable.includes(s)
);
console.log(
  `docs snippets: ${snippets.length} TypeScript blocks, ${runnable.length} run, ` +
    `${ignored.length} ignored (ts ignore), ${waiting.length} waiting for a file` +
    waiting.map((s) => `\n  ${s.where} needs ${s.requires}`).join(""),
);

/** Where each runnable snippet is written: a directory of its own. */
const dirs = new Map<Snippet, string>();
const base = await Deno.makeTempDir({ prefix: "tether-snippets-" });
for (const [n, snippet] of runnable.entries()) {
  const dir = `${base}/${n}`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/snippet.ts`, snippet.code);
  dirs.set(snippet, dir);
}

/**
 * Where the type-check reads the snippets and the JSDoc examples: a
 * directory that keeps its name from run to run (one per checkout, beside
 * the temp directories), so that `deno check` finds its cache of the last
 * check of the same files and checks again only what changed, as it does
 * for the test files themselves. In a fresh temp directory every run, each
 * check started from nothing: about 8 s of CPU on this machine. A file is
 * rewritten only when its text changed, by a rename (a run at the same
 * time never reads half a file).
 */
const checkBase = `${
  base.slice(0, base.lastIndexOf("/"))
}/tether-snippets-check-${(await sha256Hex(ROOT.pathname)).slice(0, 16)}`;
await Deno.mkdir(`${checkBase}/snippets`, { recursive: true });
await Deno.mkdir(`${checkBase}/jsdoc`, { recursive: true });

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Writes `text` to `path` unless it holds it already. */
async function writeStable(path: string, text: string): Promise<void> {
  try {
    if (await Deno.readTextFile(path) === text) return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const temp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(temp, text);
  await Deno.rename(temp, path);
}

/** Where the type-check reads each runnable snippet. */
const checkPaths = new Map<Snippet, string>();
for (const [n, snippet] of runnable.entries()) {
  const path = `${checkBase}/snippets/${String(n).padStart(3, "0")}.ts`;
  await writeStable(path, snippet.code);
  checkPaths.set(snippet, path);
}

/** Where each JSDoc example of src/ is written (type-checked and imported). */
const examples = new Map<Example, string>();
for (const file of await sourceFiles(new URL("src/", ROOT), "src/")) {
  const text = await Deno.readTextFile(new URL(file, ROOT));
  for (const example of extractExamples(file, text)) {
    const path = `${checkBase}/jsdoc/${
      String(examples.size).padStart(4, "0")
    }.ts`;
    const code = absoluteImports(example.code, new URL(example.file, ROOT));
    await writeStable(path, code);
    examples.set(example, path);
  }
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

Deno.test("docs snippets: every block imports @tether/db as a user would", () => {
  for (const snippet of snippets) {
    assert.doesNotMatch(
      snippet.code,
      /from\s+["'](\.{1,2}\/|jsr:|https?:)/,
      `${snippet.where}: import "@tether/db" (mapped in deno.json), not a path or URL`,
    );
  }
  assert(snippets.length > 0, "no snippets found");
});

Deno.test("docs snippets: a fence word the runner does not know fails", () => {
  assert.throws(
    () => extractSnippets("x.md", "```ts sevre\n1\n```\n"),
    /sevre/,
  );
  assert.throws(
    () => extractSnippets("x.md", "```ts ignore\n1\n```\n"),
    /reason/,
  );
  assert.deepEqual(
    extractSnippets("x.md", "```sh\nls\n```\n```ts ignore a fragment\nx\n```\n")
      .map((s) => [s.where, s.mode, s.reason]),
    [["x.md:4", "ignore", "a fragment"]],
  );
});

/**
 * Files other branches add (docs they own); a link to one may dangle until
 * they are merged. Remove each once it exists on main.
 */
const PENDING = new Set<string>([]);

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

Deno.test("docs: every relative link and #anchor resolves", async () => {
  const problems: string[] = [];
  const pending: string[] = [];
  for (const file of await markdownFiles()) {
    const text = (await Deno.readTextFile(new URL(file, ROOT)))
      .replace(/^(`{3,})[^\n]*\n[\s\S]*?^\1\s*$/gm, ""); // not in code
    const links = [...text.matchAll(/\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)/gm)]
      .map((m) => m[1] ?? m[2]!);
    for (const link of links) {
      if (/^[a-z]+:/.test(link)) continue; // https:, mailto:
      const [path, hash] = link.split("#") as [string, string | undefined];
      const target = path === ""
        ? new URL(file, ROOT)
        : new URL(path, new URL(file, ROOT));
      const name = target.pathname.slice(ROOT.pathname.length)
        .replace(/\/$/, "");
      if (!await exists(target)) {
        if (PENDING.has(name)) pending.push(`${file} -> ${name}`);
        else problems.push(`${file}: '${link}' does not exist`);
        continue;
      }
      if (hash !== undefined && name.endsWith(".md")) {
        const headings = (await Deno.readTextFile(target)).match(/^#+ .*$/gm) ??
          [];
        if (!headings.some((h) => slug(h.replace(/^#+ /, "")) === hash)) {
          problems.push(`${file}: '${link}' names no heading of ${name}`);
        }
      }
    }
  }
  if (pending.length > 0) {
    console.log(`links waiting for other branches:\n  ${pending.join("\n  ")}`);
  }
  assert.deepEqual(problems, []);
});

/** A failure message, or `undefined` when the step passed. */
type Outcome = string | undefined;

/**
 * Runs at most `SLOTS` subprocesses at a time. Every snippet starts when the
 * module loads, so the type-check and the runs overlap; each test awaits its
 * own outcome.
 */
const SLOTS = 2;
let busy = 0;
const queue: (() => void)[] = [];
async function limited(step: () => Promise<Outcome>): Promise<Outcome> {
  if (busy >= SLOTS) await new Promise<void>((go) => queue.push(go));
  busy++;
  try {
    return await step();
  } catch (e) {
    return String((e as Error)?.stack ?? e);
  } finally {
    busy--;
    queue.shift()?.();
  }
}

async function typeCheck(): Promise<Outcome> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "check",
      ...FLAGS,
      ...checkPaths.values(),
      ...examples.values(),
    ],
    env: ENV,
  }).output();
  if (code === 0) return undefined;
  let message = decode(stderr);
  for (const [example, path] of examples) {
    // file:///tmp/.../jsdoc/0003.ts:5:7 -> src/x.ts:47:7
    message = message.replace(
      new RegExp(`(file://)?${path}(:(\\d+))?`, "g"),
      (_, _scheme, _at, line) =>
        line === undefined
          ? example.where
          : `${example.file}:${example.line + Number(line)}`,
    );
  }
  for (const [snippet, path] of checkPaths) {
    // file:///tmp/.../snippets/003.ts:5:7 -> README.md:47:7
    message = message.replace(
      new RegExp(`(file://)?${path}(:(\\d+))?`, "g"),
      (_, _scheme, _at, line) =>
        line === undefined
          ? snippet.where
          : `${snippet.file}:${snippet.line + Number(line)}`,
    );
  }
  return message;
}

async function runScript(snippet: Snippet, dir: string): Promise<Outcome> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, ...PERMISSIONS, `${dir}/snippet.ts`],
    cwd: snippet.root ? ROOT.pathname : dir,
    env: ENV,
  }).output();
  if (Deno.env.get("TETHER_SNIPPETS_VERBOSE")) {
    console.log(`${snippet.where}:\n${decode(stdout)}`);
  }
  return code === 0
    ? undefined
    : `${snippet.where} exited with ${code}:\n${decode(stdout)}\n${
      decode(stderr)
    }`;
}

async function runServer(snippet: Snippet, dir: string): Promise<Outcome> {
  // Without --quiet: Deno.serve's "Listening on" is what is waited for.
  const flags = FLAGS.filter((flag) => flag !== "--quiet");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, ...PERMISSIONS, "snippet.ts"],
    cwd: dir,
    env: ENV,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => child.kill(), 30_000);
  let text = "";
  try {
    while (!/Listening on /.test(text)) {
      const { value, done } = await reader.read();
      if (done) {
        return `${snippet.where}: the server exited before listening:\n${text}`;
      }
      text += value;
    }
    return undefined;
  } finally {
    clearTimeout(timer);
    try {
      child.kill();
    } catch {
      // it has exited already
    }
    await reader.cancel();
    await child.status;
  }
}

/** Each snippet's run, started on first use (so a --filter starts only its own). */
const jobs = new Map<Snippet, Promise<Outcome>>();
function job(snippet: Snippet, dir: string): Promise<Outcome> {
  let outcome = jobs.get(snippet);
  if (outcome === undefined) {
    outcome = limited(() =>
      snippet.mode === "serve"
        ? runServer(snippet, dir)
        : runScript(snippet, dir)
    );
    jobs.set(snippet, outcome);
  }
  return outcome;
}
let checked: Promise<Outcome> | undefined;

// The type-check starts every run too, so that they overlap; a run's test
// may then await a subprocess its own test did not start.
const started = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "docs snippets: all type-check",
  ignore: runnable.length === 0,
  ...started,
  async fn() {
    checked = limited(typeCheck);
    for (const [snippet, dir] of dirs) job(snippet, dir);
    const message = await checked;
    if (message !== undefined) assert.fail(message);
  },
});

for (const snippet of snippets) {
  const dir = dirs.get(snippet);
  const label = snippet.mode === "ignore"
    ? `(ts ignore: ${snippet.reason})`
    : dir === undefined
    ? `(skipped: ${snippet.requires} does not exist yet)`
    : snippet.mode === "serve"
    ? "starts its server"
    : "runs";
  Deno.test({
    name: `docs snippet ${snippet.where} ${label}`,
    ignore: dir === undefined,
    ...started,
    async fn() {
      const message = await job(snippet, dir!);
      if (message !== undefined) assert.fail(message);
    },
  });
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
  assert(examples.size > 100, `only ${examples.size} examples found`);
});

// After the snippets' tests (which await every subprocess), so that each
// example runs with the op and resource sanitizers on, as under --doc.
for (const [example, path] of examples) {
  Deno.test(`doc example ${example.where}`, async () => {
    await import(new URL(`file://${path}`).href);
  });
}

Deno.test({
  name: "docs snippets: the temp directories are removed",
  ...started,
  async fn() {
    await Promise.all([checked, ...jobs.values()]);
    await Deno.remove(base, { recursive: true });
  },
});
