/**
 * A zero-dependency SVG writer for the benchmark charts: an element tree
 * serialised with escaped text, a grouped horizontal bar chart (ratios with
 * a reference line and a target mark per bar) and a line chart (linear or
 * log x axis, horizontal target lines).
 *
 * @module
 */

/** Attribute values; `undefined` leaves the attribute out. */
export type Attrs = Record<string, string | number | undefined>;

/** An SVG element: a name, attributes, children (elements or text). */
export interface SvgNode {
  /** Tag name. */
  readonly name: string;
  /** Attributes. */
  readonly attrs: Attrs;
  /** Child elements and text (text is escaped when rendered). */
  readonly children: readonly (SvgNode | string)[];
}

/**
 * Escapes text for XML content and attribute values.
 *
 * @param s Any text.
 * @returns The text with `& < > " '` replaced by entities.
 */
export function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&apos;",
  );
}

/**
 * Builds an element.
 *
 * @param name Tag name.
 * @param attrs Attributes.
 * @param children Child elements and text.
 * @returns The element.
 */
export function el(
  name: string,
  attrs: Attrs = {},
  ...children: (SvgNode | string)[]
): SvgNode {
  return { name, attrs, children };
}

/** Rounds a coordinate to 2 decimals so the files stay small and stable. */
function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/**
 * Serialises an element tree (text and attribute values escaped).
 *
 * @param node The root.
 * @returns XML text.
 */
export function render(node: SvgNode | string): string {
  if (typeof node === "string") return esc(node);
  let attrs = "";
  for (const [k, v] of Object.entries(node.attrs)) {
    if (v === undefined) continue;
    attrs += ` ${k}="${esc(typeof v === "number" ? num(v) : v)}"`;
  }
  if (node.children.length === 0) return `<${node.name}${attrs}/>`;
  return `<${node.name}${attrs}>${
    node.children.map(render).join("")
  }</${node.name}>`;
}

/**
 * A whole SVG document.
 *
 * @param width Width in px.
 * @param height Height in px.
 * @param title Accessible title.
 * @param children Content.
 * @returns The document text, ending with a newline.
 */
export function svgDocument(
  width: number,
  height: number,
  title: string,
  children: (SvgNode | string)[],
): string {
  const root = el(
    "svg",
    {
      xmlns: "http://www.w3.org/2000/svg",
      width,
      height,
      viewBox: `0 0 ${num(width)} ${num(height)}`,
      "font-family":
        "system-ui, -apple-system, Segoe UI, Helvetica, sans-serif",
      "font-size": 12,
      role: "img",
    },
    el("title", {}, title),
    el("rect", { width, height, fill: "#ffffff" }),
    ...children,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n${render(root)}\n`;
}

/** Colours used by the charts. */
export const COLORS = {
  pass: "#2a9d8f",
  miss: "#e76f51",
  neutral: "#577590",
  target: "#1d3557",
  grid: "#e5e5e5",
  ref: "#888888",
  text: "#222222",
  muted: "#666666",
  series: ["#2a9d8f", "#e76f51", "#577590", "#f4a261", "#8d5fd3", "#3a86ff"],
} as const;

/** One bar of a {@linkcode barChart}. */
export interface Bar {
  /** Label left of the bar ("vs LokiJS clone"). */
  readonly label: string;
  /** The value; `null` draws "n/a". */
  readonly value: number | null;
  /** A target drawn as a mark across the bar's row. */
  readonly target?: number;
  /** `true` when higher is better (the default), `false` when lower is. */
  readonly higherIsBetter?: boolean;
  /** Text after the value ("0.64x", "n/a (not supported)"). */
  readonly text?: string;
}

/** A group of bars under one heading (one operation). */
export interface BarGroup {
  /** The operation ("put", "get"...). */
  readonly label: string;
  /** Its bars. */
  readonly bars: readonly Bar[];
}

/** Options of {@linkcode barChart}. */
export interface BarChartOptions {
  /** Title line. */
  readonly title: string;
  /** Second line (smaller). */
  readonly subtitle?: string;
  /** The groups, top to bottom. */
  readonly groups: readonly BarGroup[];
  /** A reference line (e.g. 1 for "as fast as the peer"). */
  readonly reference?: number;
  /** Unit suffix of values ("x"). */
  readonly unit?: string;
  /** Width in px (default 860). */
  readonly width?: number;
  /** Scale maximum; larger values are drawn to it with an arrow. */
  readonly max?: number;
  /** A last line in small print (the run: date, commit, machine). */
  readonly note?: string;
}

/** Tick values for an axis from 0 to `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) {
    out.push(Math.round(v / step) * step);
  }
  return out;
}

/** A number for a label: 3 significant digits, no trailing zeros. */
export function short(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6) return `${short(v / 1e6)}M`;
  if (a >= 1e4) return `${short(v / 1e3)}k`;
  return String(Number(v.toPrecision(3)));
}

/**
 * A grouped horizontal bar chart: each bar a value (a ratio), coloured by
 * whether it meets its target, with the target marked across its row and a
 * dashed reference line.
 *
 * @param o The chart.
 * @returns The SVG document.
 */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 860;
  const unit = o.unit ?? "";
  const labelW = 300;
  const right = 90;
  const plotW = width - labelW - right;
  const top = o.subtitle === undefined ? 52 : 72;
  const rowH = 20;
  const groupGap = 12;
  const values: number[] = [];
  for (const g of o.groups) {
    for (const b of g.bars) {
      if (b.value !== null && Number.isFinite(b.value)) values.push(b.value);
      if (b.target !== undefined) values.push(b.target);
    }
  }
  if (o.reference !== undefined) values.push(o.reference);
  const dataMax = Math.max(0, ...values) * 1.08;
  const max = o.max !== undefined ? Math.min(o.max, dataMax) : dataMax;
  const scale = (v: number) => (max > 0 ? Math.min(v, max) / max : 0) * plotW;
  const nodes: SvgNode[] = [];
  nodes.push(
    el("text", { x: 12, y: 22, "font-size": 15, "font-weight": 600 }, o.title),
  );
  if (o.subtitle !== undefined) {
    nodes.push(
      el("text", { x: 12, y: 40, fill: COLORS.muted }, o.subtitle),
    );
  }
  let y = top;
  const rows: SvgNode[] = [];
  for (const g of o.groups) {
    rows.push(
      el(
        "text",
        { x: 12, y: y + 13, "font-weight": 600, fill: COLORS.text },
        g.label,
      ),
    );
    y += rowH;
    for (const b of g.bars) {
      rows.push(
        el(
          "text",
          { x: labelW - 8, y: y + 13, "text-anchor": "end", fill: COLORS.text },
          b.label,
        ),
      );
      const higher = b.higherIsBetter !== false;
      if (b.value === null || !Number.isFinite(b.value)) {
        rows.push(
          el(
            "text",
            { x: labelW + 4, y: y + 13, fill: COLORS.muted },
            b.text ?? "n/a",
          ),
        );
      } else {
        const met = b.target === undefined
          ? undefined
          : higher
          ? b.value >= b.target
          : b.value <= b.target;
        const w = scale(b.value);
        rows.push(
          el("rect", {
            class: "bar",
            "data-value": b.value,
            x: labelW,
            y: y + 3,
            width: w,
            height: rowH - 6,
            rx: 2,
            fill: met === undefined
              ? COLORS.neutral
              : met
              ? COLORS.pass
              : COLORS.miss,
          }),
        );
        const clipped = b.value > max;
        const after = Math.max(
          w,
          b.target === undefined ? 0 : scale(b.target) + 2,
        );
        rows.push(
          el(
            "text",
            { x: labelW + after + 5, y: y + 13, fill: COLORS.text },
            `${clipped ? "▶ " : ""}${b.text ?? fmtValue(b.value, unit)}`,
          ),
        );
      }
      if (b.target !== undefined && b.value !== null) {
        const tx = labelW + scale(b.target);
        rows.push(
          el("line", {
            class: "target",
            "data-value": b.target,
            x1: tx,
            x2: tx,
            y1: y,
            y2: y + rowH,
            stroke: COLORS.target,
            "stroke-width": 2,
          }),
        );
      }
      y += rowH;
    }
    y += groupGap;
  }
  const bottom = y;
  // Grid and axis under the bars.
  const grid: SvgNode[] = [];
  for (const t of niceTicks(max)) {
    const x = labelW + scale(t);
    grid.push(
      el("line", {
        x1: x,
        x2: x,
        y1: top,
        y2: bottom,
        stroke: COLORS.grid,
      }),
      el(
        "text",
        {
          x,
          y: bottom + 14,
          "text-anchor": "middle",
          fill: COLORS.muted,
          "font-size": 11,
        },
        `${short(t)}${unit}`,
      ),
    );
  }
  if (o.reference !== undefined && o.reference <= max) {
    const x = labelW + scale(o.reference);
    grid.push(
      el("line", {
        class: "reference",
        x1: x,
        x2: x,
        y1: top - 4,
        y2: bottom,
        stroke: COLORS.ref,
        "stroke-dasharray": "4 3",
      }),
      el(
        "text",
        { x, y: top - 8, "text-anchor": "middle", fill: COLORS.muted },
        `${short(o.reference)}${unit}`,
      ),
    );
  }
  const legendY = bottom + 36;
  const legend = legendNodes(12, legendY, [
    { color: COLORS.pass, label: "meets its target" },
    { color: COLORS.miss, label: "misses its target" },
    { color: COLORS.neutral, label: "no target" },
  ]);
  legend.push(
    el("line", {
      x1: 420,
      x2: 420,
      y1: legendY - 10,
      y2: legendY + 2,
      stroke: COLORS.target,
      "stroke-width": 2,
    }),
    el("text", { x: 426, y: legendY, fill: COLORS.text }, "target"),
  );
  if (o.note !== undefined) legend.push(noteNode(12, legendY + 20, o.note));
  return svgDocument(
    width,
    legendY + (o.note === undefined ? 14 : 32),
    o.title,
    [
      ...nodes,
      ...grid,
      ...rows,
      ...legend,
    ],
  );
}

/** A value with its unit: ratios with 2 decimals, others 3 digits. */
function fmtValue(v: number, unit: string): string {
  // The same rounding as the markdown tables (toLocaleString, not toFixed).
  return unit === "x"
    ? `${
      v.toLocaleString("en-US", {
        minimumFractionDigits: 2,
        maximumFractionDigits: 2,
      })
    }x`
    : `${short(v)}${unit}`;
}

function noteNode(x: number, y: number, text: string): SvgNode {
  return el("text", { x, y, fill: COLORS.muted, "font-size": 10.5 }, text);
}

function legendNodes(
  x: number,
  y: number,
  items: readonly { color: string; label: string }[],
): SvgNode[] {
  const out: SvgNode[] = [];
  for (const it of items) {
    out.push(
      el("rect", {
        x,
        y: y - 10,
        width: 12,
        height: 12,
        rx: 2,
        fill: it.color,
      }),
      el("text", { x: x + 16, y, fill: COLORS.text }, it.label),
    );
    x += 28 + it.label.length * 7;
  }
  return out;
}

/** One line of a {@linkcode lineChart}. */
export interface Series {
  /** Legend label. */
  readonly label: string;
  /** Points `[x, y]`, in x order. */
  readonly points: readonly (readonly [number, number])[];
  /** Draw a dot on each point (for short series). */
  readonly dots?: boolean;
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions {
  /** Title line. */
  readonly title: string;
  /** Second line (smaller). */
  readonly subtitle?: string;
  /** X axis label. */
  readonly xLabel: string;
  /** Y axis label. */
  readonly yLabel: string;
  /** The lines. */
  readonly series: readonly Series[];
  /** A log10 x axis (x values must be > 0). */
  readonly xLog?: boolean;
  /** A log10 y axis (y values must be > 0). */
  readonly yLog?: boolean;
  /** Horizontal lines (targets). */
  readonly hLines?: readonly { readonly y: number; readonly label: string }[];
  /** Width in px (default 860). */
  readonly width?: number;
  /** Height in px (default 360). */
  readonly height?: number;
  /** A last line in small print (the run: date, commit, machine). */
  readonly note?: string;
}

/**
 * A line chart with axes, ticks, a legend and optional target lines.
 *
 * @param o The chart.
 * @returns The SVG document.
 */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 860;
  const height = o.height ?? 360;
  const left = 70;
  const right = 24;
  const top = o.subtitle === undefined ? 50 : 66;
  const bottom = o.note === undefined ? 70 : 86;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const xs: number[] = [];
  const ys: number[] = [0];
  for (const s of o.series) {
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && (!o.xLog || x > 0)) xs.push(x);
      if (Number.isFinite(y)) ys.push(y);
    }
  }
  for (const h of o.hLines ?? []) ys.push(h.y);
  const yMax = Math.max(...ys) * 1.1 || 1;
  const pos = ys.filter((v) => v > 0);
  const yLo = o.yLog ? Math.floor(Math.log10(Math.min(...pos, 1))) : 0;
  let yHi = o.yLog ? Math.ceil(Math.log10(Math.max(...pos, 1))) : 0;
  if (yHi === yLo) yHi = yLo + 1;
  const tf = o.xLog ? (v: number) => Math.log10(v) : (v: number) => v;
  let xMin = xs.length === 0 ? 0 : Math.min(...xs.map(tf));
  let xMax = xs.length === 0 ? 1 : Math.max(...xs.map(tf));
  if (!o.xLog) xMin = Math.min(0, xMin);
  if (xMax === xMin) xMax = xMin + 1;
  const px = (v: number) => left + (tf(v) - xMin) / (xMax - xMin) * plotW;
  const py = o.yLog
    ? (v: number) => top + plotH - (Math.log10(v) - yLo) / (yHi - yLo) * plotH
    : (v: number) => top + plotH - v / yMax * plotH;
  const yTicks = o.yLog
    ? Array.from({ length: yHi - yLo + 1 }, (_, i) => 10 ** (yLo + i))
    : niceTicks(yMax / 1.1);
  const nodes: SvgNode[] = [
    el("text", { x: 12, y: 22, "font-size": 15, "font-weight": 600 }, o.title),
  ];
  if (o.subtitle !== undefined) {
    nodes.push(el("text", { x: 12, y: 40, fill: COLORS.muted }, o.subtitle));
  }
  for (const t of yTicks) {
    nodes.push(
      el("line", {
        x1: left,
        x2: left + plotW,
        y1: py(t),
        y2: py(t),
        stroke: COLORS.grid,
      }),
      el("text", {
        x: left - 6,
        y: py(t) + 4,
        "text-anchor": "end",
        fill: COLORS.muted,
        "font-size": 11,
      }, short(t)),
    );
  }
  const xTicks = o.xLog
    ? Array.from(
      { length: Math.floor(xMax) - Math.ceil(xMin) + 1 },
      (_, i) => 10 ** (Math.ceil(xMin) + i),
    )
    : niceTicks(xMax).filter((t) => t >= xMin);
  for (const t of xTicks) {
    nodes.push(
      el("line", {
        x1: px(t),
        x2: px(t),
        y1: top,
        y2: top + plotH,
        stroke: COLORS.grid,
      }),
      el("text", {
        x: px(t),
        y: top + plotH + 16,
        "text-anchor": "middle",
        fill: COLORS.muted,
        "font-size": 11,
      }, short(t)),
    );
  }
  nodes.push(
    el("line", {
      x1: left,
      x2: left + plotW,
      y1: top + plotH,
      y2: top + plotH,
      stroke: COLORS.muted,
    }),
    el("line", {
      x1: left,
      x2: left,
      y1: top,
      y2: top + plotH,
      stroke: COLORS.muted,
    }),
    el("text", {
      x: left + plotW / 2,
      y: top + plotH + 36,
      "text-anchor": "middle",
      fill: COLORS.text,
    }, o.xLabel),
    el("text", {
      x: 16,
      y: top + plotH / 2,
      "text-anchor": "middle",
      fill: COLORS.text,
      transform: `rotate(-90 16 ${num(top + plotH / 2)})`,
    }, o.yLabel),
  );
  for (const h of o.hLines ?? []) {
    nodes.push(
      el("line", {
        class: "target",
        "data-value": h.y,
        x1: left,
        x2: left + plotW,
        y1: py(h.y),
        y2: py(h.y),
        stroke: COLORS.target,
        "stroke-dasharray": "6 4",
        "stroke-width": 1.5,
      }),
      el("text", {
        x: left + plotW - 4,
        y: py(h.y) - 5,
        "text-anchor": "end",
        fill: COLORS.target,
      }, h.label),
    );
  }
  o.series.forEach((s, i) => {
    const color = COLORS.series[i % COLORS.series.length]!;
    const pts = s.points.filter(([x, y]) =>
      Number.isFinite(x) && Number.isFinite(y) && (!o.xLog || x > 0) &&
      (!o.yLog || y > 0)
    );
    if (pts.length > 0) {
      nodes.push(el("polyline", {
        class: "series",
        fill: "none",
        stroke: color,
        "stroke-width": 1.5,
        "stroke-linejoin": "round",
        points: pts.map(([x, y]) => `${num(px(x))},${num(py(y))}`).join(" "),
      }));
    }
    if (s.dots === true) {
      for (const [x, y] of pts) {
        nodes.push(
          el("circle", { cx: px(x), cy: py(y), r: 3, fill: color }),
        );
      }
    }
  });
  if (o.note !== undefined) nodes.push(noteNode(12, height - 8, o.note));
  nodes.push(
    ...legendNodes(
      left,
      height - (o.note === undefined ? 12 : 28),
      o.series.map((s, i) => ({
        color: COLORS.series[i % COLORS.series.length]!,
        label: s.label,
      })),
    ),
  );
  return svgDocument(width, height, o.title, nodes);
}
