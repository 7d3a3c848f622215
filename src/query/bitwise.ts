/**
 * Bitwise query operators: `$bitsAllSet`, `$bitsAnySet`, `$bitsAllClear`
 * and `$bitsAnyClear`, with MongoDB's semantics.
 *
 * - The operand is a non-negative integer bitmask, an array of non-negative
 *   integer bit positions, or a `Uint8Array` (BinData: byte 0's lowest bit is
 *   position 0).
 * - A numeric value matches only if it is an integer representable in 64
 *   bits, read in two's complement (a negative number has every bit above
 *   its magnitude set, so position 200 of `-1` is set). A `Uint8Array` value
 *   is read as BinData, with bits past its end clear. Other values (strings,
 *   fractional numbers, `null`…) never match. Array fields match if any
 *   element does.
 *
 * @module
 */

import {
  describe,
  filterError,
  filterRangeError,
  leafOp,
  type OperatorCompiler,
  type ValueTest,
} from "./types.ts";

const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

/** The bit positions an operand names, in ascending order. */
function positions(op: string, operand: unknown, path: string): number[] {
  if (typeof operand === "number") {
    if (!Number.isInteger(operand) || operand < 0 || operand >= MAX_INT64) {
      throw filterRangeError(
        path,
        `'${op}' needs a non-negative integer bitmask, got ${operand}`,
      );
    }
    const out: number[] = [];
    let rest = BigInt(operand);
    for (let p = 0; rest !== 0n; p++, rest >>= 1n) {
      if (rest & 1n) out.push(p);
    }
    return out;
  }
  if (operand instanceof Uint8Array) {
    const out: number[] = [];
    for (let i = 0; i < operand.length; i++) {
      for (let b = 0; b < 8; b++) {
        if ((operand[i]! >> b) & 1) out.push(i * 8 + b);
      }
    }
    return out;
  }
  if (Array.isArray(operand)) {
    for (const p of operand) {
      if (typeof p !== "number") {
        throw filterError(
          path,
          `'${op}' bit positions must be numbers, got ${describe(p)}`,
        );
      }
      if (!Number.isInteger(p) || p < 0 || p > 2 ** 31 - 1) {
        throw filterRangeError(
          path,
          `'${op}' bit positions must be non-negative integers, got ${p}`,
        );
      }
    }
    return [...operand as number[]];
  }
  throw filterError(
    path,
    `'${op}' needs a bitmask number, an array of bit positions or a Uint8Array, got ${
      describe(operand)
    }`,
  );
}

/** Reads bit `p` of a value, or `undefined` when the value has no bits. */
function bitReader(v: unknown): ((p: number) => boolean) | undefined {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < MIN_INT64 || v >= MAX_INT64) {
      return undefined;
    }
    const n = BigInt.asUintN(64, BigInt(v));
    const negative = v < 0;
    return (p) => p >= 64 ? negative : ((n >> BigInt(p)) & 1n) === 1n;
  }
  if (v instanceof Uint8Array) {
    return (p) => {
      const byte = p >> 3;
      return byte < v.length && ((v[byte]! >> (p & 7)) & 1) === 1;
    };
  }
  return undefined;
}

function bits(op: string, want: boolean, all: boolean): OperatorCompiler {
  return (operand, ctx) => {
    const ps = positions(op, operand, ctx.path);
    const test: ValueTest = (v) => {
      const bit = bitReader(v);
      if (bit === undefined) return false;
      if (all) {
        for (const p of ps) if (bit(p) !== want) return false;
        return true;
      }
      for (const p of ps) if (bit(p) === want) return true;
      return false;
    };
    return leafOp(test, true, false);
  };
}

/**
 * The bitwise operators, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bitwiseOperators } from "./bitwise.ts";
 * assert("$bitsAllSet" in bitwiseOperators);
 * ```
 */
export const bitwiseOperators: { readonly [op: string]: OperatorCompiler } = {
  $bitsAllSet: bits("$bitsAllSet", true, true),
  $bitsAnySet: bits("$bitsAnySet", true, false),
  $bitsAllClear: bits("$bitsAllClear", false, true),
  $bitsAnyClear: bits("$bitsAnyClear", false, false),
};
