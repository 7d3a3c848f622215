/**
 * The benchmark's SVG writer and results file, on small made-up numbers:
 * the documents are well formed, bars are proportional to their values,
 * text is escaped, and a results file of the right shape (and only such a
 * file) gives every chart. No timing is measured here.
 */

import assert from "node:assert/strict";
import { downsample, drawCharts, steps } from "../bench/charts.ts";
import type { Result } from "../bench/harness.ts";
import { engineBlock, fillBlocks, growthBlock } from "../bench/report.ts";
import {
  type BenchResults,
  checkResults,
  judge,
  measure,
  SCHEMA,
  targetRow,
} from "../bench/results.ts";
import { barChart, el, esc, lineChart, render } from "../bench/svg.ts";

/** The tags of an XML text balance; returns the root's name. */
function assertWellFormed(xml: string): string {
  assert(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n'));
  const body = xml.slice(xml.indexOf("\n") + 1);
  const stack: string[] = [];
  let root = "";
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(body); m !== null; m = tag.exec(body)) {
    const between = body.slice(last, m.index);
    assert(!/[<>]/.test(between), `stray < or > in text: ${between}`);
    assert(!/&(?!(amp|lt|gt|quot|apos);)/.test(between), "raw & in text");
    last = m.index + m[0].length;
    const [, close, name, attrs, self] = m;
    assert(!/&(?!(amp|lt|gt|quot|apos);)/.test(attrs!), "raw & in attribute");
    if (root === "") root = name!;
    else assert(stack.length > 0, `second root element <${name}>`);
    if (close === "/") assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    else if (self !== "/") stack.push(name!);
  }
  assert.equal(body.slice(last).trim(), "", "text after the root");
  assert.deepEqual(stack, [], "unclosed elements");
  return root;
}

function barWidths(svg: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of svg.matchAll(/<rect class="bar" ([^>]*)\/>/g)) {
    const v = Number(/data-value="([^"]+)"/.exec(m[1]!)![1]);
    const w = Number(/width="([^"]+)"/.exec(m[1]!)![1]);
    out.set(v, w);
  }
  return out;
}

Deno.test("esc and render escape text and attribute values", () => {
  assert.equal(esc(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&apos;");
  const xml = render(
    el("g", { "data-x": `1" onload="x` }, el("text", {}, "<script>&")),
  );
  assert.equal(
    xml,
    '<g data-x="1&quot; onload=&quot;x"><text>&lt;script&gt;&amp;</text></g>',
  );
  assert.equal(
    render(el("rect", { width: 1.23456, x: undefined })),
    '<rect width="1.23"/>',
  );
});

Deno.test("barChart: well formed, bars proportional to values, text escaped", () => {
  const svg = barChart({
    title: 'ratios <&> "quoted"',
    subtitle: "sub & title",
    note: "commit <abc>",
    groups: [
      {
        label: "put & get",
        bars: [
          { label: "vs <LokiJS>", value: 1, target: 2 },
          { label: "vs NeDB", value: 2, target: 1 },
        ],
      },
      {
        label: "scan",
        bars: [
          { label: "four", value: 4 },
          {
            label: "missing",
            value: null,
            target: 1,
            text: "n/a (not supported)",
          },
        ],
      },
    ],
    reference: 1,
    unit: "x",
  });
  assert.equal(assertWellFormed(svg), "svg");
  assert(svg.includes("ratios &lt;&amp;&gt; &quot;quoted&quot;"));
  assert(svg.includes("vs &lt;LokiJS&gt;"));
  assert(svg.includes("put &amp; get"));
  assert(!svg.includes("<LokiJS>"));
  const w = barWidths(svg);
  assert.deepEqual([...w.keys()].sort(), [1, 2, 4]);
  assert(w.get(1)! > 0);
  assert(Math.abs(w.get(2)! / w.get(1)! - 2) < 0.01);
  assert(Math.abs(w.get(4)! / w.get(1)! - 4) < 0.01);
  // Meets its target or not: the colour says which.
  assert.match(svg, /data-value="1"[^>]*fill="#e76f51"/);
  assert.match(svg, /data-value="2"[^>]*fill="#2a9d8f"/);
  assert(svg.includes("n/a (not supported)"));
  // One target mark per measured bar that has a target, and the reference.
  assert.equal(svg.match(/class="target"/g)?.length, 2);
  assert.equal(svg.match(/class="reference"/g)?.length, 1);
});

Deno.test("barChart: a value above max is drawn to max and marked", () => {
  const svg = barChart({
    title: "t",
    groups: [{
      label: "g",
      bars: [{ label: "a", value: 1 }, {
        label: "b",
        value: 50,
      }],
    }],
    unit: "x",
    max: 5,
  });
  const w = barWidths(svg);
  assert(Math.abs(w.get(50)! / w.get(1)! - 5) < 0.01);
  assert(svg.includes("▶ 50.00x"));
});

Deno.test("lineChart: well formed, one line per series, target lines", () => {
  const svg = lineChart({
    title: "size <MB>",
    xLabel: "docs",
    yLabel: "MB",
    xLog: true,
    series: [
      {
        label: "ours",
        points: [[1000, 1], [10000, 10], [100000, 100]],
        dots: true,
      },
      { label: "json & co", points: [[1000, 2], [10000, 20]] },
    ],
    hLines: [{ y: 50, label: "target ≤ 50" }],
    note: "n",
  });
  assert.equal(assertWellFormed(svg), "svg");
  assert.equal(svg.match(/<polyline class="series"/g)?.length, 2);
  assert.equal(svg.match(/<circle /g)?.length, 3);
  assert(svg.includes("json &amp; co"));
  assert.equal(svg.match(/class="target"/g)?.length, 1);
  // Higher values sit higher (smaller y).
  const pts = /points="([^"]+)"/.exec(svg)![1]!.split(" ").map((p) =>
    p.split(",").map(Number)
  );
  assert(pts[0]![1]! > pts[1]![1]! && pts[1]![1]! > pts[2]![1]!);
  // Log x: equal ratios, equal steps.
  const d1 = pts[1]![0]! - pts[0]![0]!;
  const d2 = pts[2]![0]! - pts[1]![0]!;
  assert(Math.abs(d1 - d2) < 0.05);
});

Deno.test("steps and downsample keep the longest gap", () => {
  assert.deepEqual(steps([[2, 2], [5, 3]]), [[0, 2], [2, 2], [2, 3], [5, 3]]);
  assert.deepEqual(
    downsample([[1, 1], [2, 9], [3, 1], [11, 2]], 10),
    [[2, 9], [11, 2]],
  );
});

function fakeResult(impl: string, ms: number[], ops = 100): Result {
  const minMs = Math.min(...ms);
  return {
    impl,
    op: `${impl} op`,
    ops,
    samples: ms,
    medianMs: ms[1]!,
    minMs,
    opsPerSec: ops / (ms[1]! / 1000),
    bestOpsPerSec: ops / (minMs / 1000),
  };
}

function fakeResults(): BenchResults {
  const put = measure(
    "engine",
    "put.clone",
    "put",
    fakeResult("ours", [10, 12, 11]),
    fakeResult("LokiJS (clone)", [30, 31, 40]),
  );
  const targets = [
    targetRow(
      "engine",
      "put.clone",
      "put vs LokiJS",
      ">=",
      2,
      "x",
      put.ratio,
      "3x",
    ),
    targetRow(
      "engine",
      "readonly.get",
      "readonly get",
      ">=",
      0.4,
      "x",
      null,
      "n/a (not supported by this build)",
    ),
    targetRow(
      "engine",
      "put.indexes",
      "2 idx",
      "<=",
      2,
      "time ratio",
      1.5,
      "1.5",
    ),
    targetRow("engine", "stall.count", "stall", "<=", 20, "ms", 25, "25 ms"),
  ];
  return {
    schema: SCHEMA,
    date: "2026-12-05T14:00:00.000Z",
    commit: "abc1234",
    dirty: false,
    deno: { deno: "2.9.6", v8: "15", typescript: "6" },
    machine: {
      os: "linux",
      arch: "x86_64",
      cpus: 2,
      cpuModel: null,
      memoryGiB: 24,
      loadAvgStart: [1, 1, 1],
      loadAvgEnd: [2, 2, 2],
    },
    options: {
      quick: true,
      scenarios: ["engine", "growth"],
      args: ["--quick"],
    },
    sizes: { "engine.n": 100, "engine.stallItems": 1000 },
    method: "best of 3",
    totalMs: 1234,
    targets,
    measures: [put],
    scenarios: {
      engine: {
        name: "engine",
        title: "t",
        ms: 1,
        measures: [put],
        targets,
        markdown: "",
        data: {
          stallItems: 1000,
          stalls: [
            {
              impl: "ours",
              op: "await db.find({}).toArray()",
              items: 1000,
              durationMs: [10],
              maxGapMs: [4],
              best: {
                durationMs: 10,
                maxGapMs: 4,
                points: [[2, 2], [6, 4], [10, 4]],
              },
            },
            {
              impl: "LokiJS (plain)",
              op: "find",
              items: 1000,
              durationMs: [5],
              maxGapMs: [7],
              best: { durationMs: 5, maxGapMs: 7, points: [[7, 7]] },
            },
          ],
        },
      },
      growth: {
        name: "growth",
        title: "g",
        ms: 1,
        measures: [],
        targets: [],
        markdown: "",
        data: {
          rows: [1000, 10000].map((docs) => ({
            docs,
            oursBytes: docs * 60,
            ndjsonBytes: docs * 50,
            sqliteBytes: docs * 70,
            reopenMs: [docs / 1000],
            reopenBestMs: docs / 1000,
            heldBytes: docs * 100,
            sqliteOpenMs: 0.2,
            loadMs: 1,
          })),
        },
      },
    },
  };
}

Deno.test("measure and targetRow: ratio from the best samples, PASS/MISS/n/a", () => {
  const r = fakeResults();
  // Best 10 ms against best 30 ms for the same ops: 3x.
  assert.equal(r.measures[0]!.ratio, 3);
  assert.equal(r.measures[0]!.ours.bestMs, 10);
  assert.deepEqual(r.targets.map((t) => t.status), [
    "PASS",
    "n/a",
    "PASS",
    "MISS",
  ]);
  assert.deepEqual(r.targets.map((t) => t.goal), [
    "≥ 2.0x",
    "≥ 0.40x",
    "≤ 2.0",
    "≤ 20 ms",
  ]);
  assert.equal(judge(2, ">=", 2), "PASS");
  assert.equal(judge(Number.NaN, ">=", 2), "n/a");
});

Deno.test("a results file of the right shape gives every chart; a broken one is refused", () => {
  const r = JSON.parse(JSON.stringify(fakeResults()));
  assert.deepEqual(checkResults(r), []);
  const charts = drawCharts(r);
  assert.deepEqual(charts.map((c) => c.file), [
    "engine_ratios.svg",
    "stall_timeline.svg",
    "file_size.svg",
    "reopen_time.svg",
  ]);
  for (const c of charts) assert.equal(assertWellFormed(c.svg), "svg");
  const ratios = charts[0]!.svg;
  assert(ratios.includes("3.00x"));
  assert(ratios.includes("n/a (not supported by this build)"));
  // put with 2 indexes is drawn as speed: 1 / 1.5.
  assert(ratios.includes('data-value="0.67"') && ratios.includes("0.67x"));
  assert(ratios.includes("commit abc1234"));
  assert(charts[1]!.svg.includes("longest 4.0 ms"));
  // Without the engine or growth data, those charts are left out.
  delete r.scenarios.growth;
  assert.deepEqual(drawCharts(r).map((c) => c.file), [
    "engine_ratios.svg",
    "stall_timeline.svg",
  ]);
  const broken = { ...r, targets: [{ id: "x", status: "OK" }], schema: 0 };
  delete broken.measures;
  const problems = checkResults(broken);
  assert(problems.includes("schema is not 1"));
  assert(problems.includes("measures is not an array"));
  assert(problems.includes("targets[0].status is not PASS, MISS or n/a"));
  assert(problems.includes("targets[0].label is not a string"));
  assert.deepEqual(checkResults([]), ["not an object"]);
});

Deno.test("report: the generated blocks of BENCHMARKS.md are replaced, the rest kept", () => {
  const r = fakeResults();
  const md = [
    "# Title, kept",
    "<!-- bench:engine -->",
    "old table",
    "<!-- /bench:engine -->",
    "text between, kept",
    "<!-- bench:growth -->",
    "<!-- /bench:growth -->",
    "<!-- bench:unknown -->x<!-- /bench:unknown -->",
  ].join("\n");
  const out = fillBlocks(md, {
    engine: engineBlock(r),
    growth: growthBlock(r),
    missing: "never inserted",
  });
  assert(out.startsWith("# Title, kept\n<!-- bench:engine -->\n| Measure |"));
  assert(!out.includes("old table"));
  assert(out.includes("text between, kept"));
  assert(out.includes("<!-- bench:unknown -->x<!-- /bench:unknown -->"));
  assert(!out.includes("never inserted"));
  // One row per engine target, with its result and status.
  assert(
    out.includes(
      "| put vs LokiJS | ≥ 2.0x | 10.0 ms / 100 | 30.0 ms / 100 | 3.00x | **PASS** |",
    ),
  );
  assert(
    out.includes(
      "| readonly get | ≥ 0.40x |  |  | n/a (not supported by this build) | n/a |",
    ),
  );
  assert(out.includes("| stall | ≤ 20 ms |  |  | 25.0 ms | **MISS** |"));
  assert(out.includes("2 of 4 met, 1 not measurable in this build."));
  assert(
    out.includes("| 10,000 | 0.6 | 1.20 | 0.7 | 10.0 | 0.20 | 1.0 (2.0x) |"),
  );
  // Filling twice gives the same text.
  assert.equal(fillBlocks(out, { engine: engineBlock(r) }), out);
});
