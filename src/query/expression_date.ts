/**
 * Date expression operators: `$year`, `$month`, `$dayOfMonth`, `$hour`,
 * `$minute`, `$second`, `$millisecond`, `$dayOfWeek` and `$dateTrunc`.
 *
 * A date in this database is a JavaScript `Date` (stored and read back as a
 * `Date`, see `value_codec.ts`) or, since sensors usually send them, a
 * number of milliseconds since 1970-01-01T00:00:00Z (`Date.now()`). Both are
 * accepted here; `$dateTrunc` answers in the kind it was given (a `Date` for
 * a `Date`, a number for a number). Dates are read in UTC unless a
 * `timezone` is given as a fixed offset (`"+02:00"`, `"-0530"`) or
 * `"UTC"`/`"GMT"`/`"Z"`; named zones (`"Europe/Paris"`) are refused at
 * compile time.
 *
 * @module
 */

import {
  evaluationError,
  exactly,
  type Expression,
  expressionError,
  nullish,
  type OperatorBuilder,
} from "./expression_util.ts";
import { describe, isPlainObject } from "./types.ts";

const DAY = 86_400_000;
/** MongoDB's reference for `$dateTrunc` bins: 2000-01-01T00:00:00Z. */
const REFERENCE = Date.UTC(2000, 0, 1);

/** The epoch milliseconds of a date operand, `null` for null/missing. */
function millis(op: string, v: unknown): number | null {
  if (nullish(v)) return null;
  if (v instanceof Date) return v.getTime();
  if (typeof v === "number" && Number.isFinite(v)) return v;
  throw evaluationError(
    op,
    `expected a Date or epoch milliseconds, got ${describe(v)}`,
  );
}

/**
 * Parses a timezone: `"UTC"`, `"GMT"`, `"Z"`, or a fixed offset `±HH`,
 * `±HHMM`, `±HH:MM`. Returns the offset in milliseconds.
 */
function offsetOf(tz: unknown, where: string): number {
  if (tz === undefined || tz === "UTC" || tz === "GMT" || tz === "Z") return 0;
  if (typeof tz === "string") {
    const m = /^([+-])(\d{2})(?::?(\d{2}))?$/.exec(tz);
    if (m !== null) {
      const h = Number(m[2]);
      const min = Number(m[3] ?? "0");
      if (h <= 23 && min <= 59) {
        return (m[1] === "-" ? -1 : 1) * (h * 60 + min) * 60_000;
      }
    }
  }
  throw expressionError(
    where,
    `the timezone must be "UTC" or a fixed offset such as "+02:00", got ${
      describe(tz)
    } (named zones are not supported)`,
  );
}

/** The `{date, timezone}` or plain operand of a date-part operator. */
function dateOperand(
  arg: unknown,
  where: string,
  compile: (s: unknown, w: string) => Expression,
): { date: Expression; offset: number } {
  if (isPlainObject(arg) && Object.hasOwn(arg, "date")) {
    for (const k of Object.keys(arg)) {
      if (k !== "date" && k !== "timezone") {
        throw expressionError(
          where,
          `unknown field '${k}' (expected date, timezone)`,
        );
      }
    }
    return {
      date: compile(arg.date, `${where}.date`),
      offset: offsetOf(arg.timezone, `${where}.timezone`),
    };
  }
  const [date] = exactly(1, arg, where, compile) as [Expression];
  return { date, offset: 0 };
}

function datePart(op: string, part: (d: Date) => number): OperatorBuilder {
  return (arg, where, compile) => {
    const { date, offset } = dateOperand(arg, where, compile);
    const scratch = new Date(0);
    return (d) => {
      const t = millis(op, date(d));
      if (t === null) return null;
      scratch.setTime(t + offset);
      return part(scratch);
    };
  };
}

const UNITS: { readonly [unit: string]: number } = {
  millisecond: 1,
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: DAY,
  week: 7 * DAY,
  month: 1,
  quarter: 3,
  year: 12,
};

const WEEKDAYS = [
  "sunday",
  "monday",
  "tuesday",
  "wednesday",
  "thursday",
  "friday",
  "saturday",
];

function weekday(v: unknown, where: string): number {
  if (typeof v === "string") {
    const s = v.toLowerCase();
    const i = WEEKDAYS.findIndex((w) => w === s || w.slice(0, 3) === s);
    if (i !== -1) return i;
  }
  throw expressionError(
    where,
    `startOfWeek must be a day name, got ${describe(v)}`,
  );
}

/**
 * Truncates epoch milliseconds (MongoDB's `$dateTrunc`): bins of `binSize`
 * units counted from 2000-01-01T00:00:00Z (weeks: from the first
 * `startOfWeek` day of 2000), in local time at `offset`.
 *
 * @param t Epoch milliseconds.
 * @param unit The unit.
 * @param binSize Units per bin.
 * @param offset The timezone offset in milliseconds.
 * @param startOfWeek 0 (Sunday) to 6.
 * @returns The start of the bin, in epoch milliseconds.
 */
export function truncateMillis(
  t: number,
  unit: string,
  binSize: number,
  offset: number,
  startOfWeek: number,
): number {
  const local = t + offset;
  if (unit === "month" || unit === "quarter" || unit === "year") {
    const d = new Date(local);
    const months = (d.getUTCFullYear() - 2000) * 12 + d.getUTCMonth();
    const bin = binSize * UNITS[unit]!;
    const k = Math.floor(months / bin) * bin;
    const year = 2000 + Math.floor(k / 12);
    return Date.UTC(year, k - (year - 2000) * 12, 1) - offset;
  }
  // 2000-01-01 was a Saturday (6).
  const ref = unit === "week"
    ? REFERENCE + ((startOfWeek - 6 + 7) % 7) * DAY
    : REFERENCE;
  const bin = binSize * UNITS[unit]!;
  return ref + Math.floor((local - ref) / bin) * bin - offset;
}

const dateTrunc: OperatorBuilder = (arg, where, compile) => {
  if (!isPlainObject(arg)) {
    throw expressionError(
      where,
      `expects {date, unit, binSize?, timezone?, startOfWeek?}, got ${
        describe(arg)
      }`,
    );
  }
  for (const k of Object.keys(arg)) {
    if (!["date", "unit", "binSize", "timezone", "startOfWeek"].includes(k)) {
      throw expressionError(where, `unknown field '${k}'`);
    }
  }
  if (!Object.hasOwn(arg, "date")) {
    throw expressionError(where, "missing 'date'");
  }
  const date = compile(arg.date, `${where}.date`);
  const unit = arg.unit;
  if (typeof unit !== "string" || !Object.hasOwn(UNITS, unit)) {
    throw expressionError(
      where,
      `unit must be one of ${Object.keys(UNITS).join(", ")}, got ${
        describe(unit)
      }`,
    );
  }
  const binSize = arg.binSize ?? 1;
  if (
    typeof binSize !== "number" || !Number.isInteger(binSize) || binSize < 1
  ) {
    throw expressionError(
      where,
      `binSize must be a whole number of at least 1, got ${describe(binSize)}`,
    );
  }
  const offset = offsetOf(arg.timezone, `${where}.timezone`);
  const start = arg.startOfWeek === undefined
    ? 0
    : weekday(arg.startOfWeek, `${where}.startOfWeek`);
  return (d) => {
    const v = date(d);
    const t = millis("$dateTrunc", v);
    if (t === null) return null;
    const r = truncateMillis(t, unit, binSize, offset, start);
    return typeof v === "number" ? r : new Date(r);
  };
};

/** The date operators, by name. */
export const dateOperators: { readonly [op: string]: OperatorBuilder } = {
  $year: datePart("$year", (d) => d.getUTCFullYear()),
  $month: datePart("$month", (d) => d.getUTCMonth() + 1),
  $dayOfMonth: datePart("$dayOfMonth", (d) => d.getUTCDate()),
  $hour: datePart("$hour", (d) => d.getUTCHours()),
  $minute: datePart("$minute", (d) => d.getUTCMinutes()),
  $second: datePart("$second", (d) => d.getUTCSeconds()),
  $millisecond: datePart("$millisecond", (d) => d.getUTCMilliseconds()),
  $dayOfWeek: datePart("$dayOfWeek", (d) => d.getUTCDay() + 1),
  $dateTrunc: dateTrunc,
};
