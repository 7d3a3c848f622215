/**
 * Evaluation operators: `$regex` (with `$options`) and `$mod`.
 *
 * - `$regex` takes a pattern string or a `RegExp`; `$options` may hold the
 *   flags `i`, `m`, `s` and `u` (MongoDB's `x` has no JavaScript equivalent
 *   and is rejected). It matches strings (element-wise in arrays). The `g`,
 *   `y` and `d` flags of a `RegExp` operand are dropped: matching is
 *   stateless.
 * - `$mod: [divisor, remainder]` matches numbers whose integer part (truncated
 *   toward zero, as MongoDB does) leaves `remainder` when divided by
 *   `divisor`; the operands are truncated too.
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

const ALLOWED_OPTIONS = /^[imsu]*$/;

/**
 * Copies a `RegExp` without the stateful or irrelevant flags (`g`, `y`, `d`).
 *
 * @param re The expression.
 * @returns An expression safe to call `test` on repeatedly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { statelessRegExp } from "./evaluation.ts";
 * assert(statelessRegExp(/a/gi).flags === "i");
 * ```
 */
export function statelessRegExp(re: RegExp): RegExp {
  const flags = re.flags.replace(/[gyd]/g, "");
  return flags === re.flags ? re : new RegExp(re.source, flags);
}

/**
 * Builds the test of a regular expression match: it passes for strings the
 * expression matches, and for `RegExp` values equal to the expression.
 *
 * @param re The expression (its `g`, `y` and `d` flags are ignored).
 * @returns The value test.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { regexTest } from "./evaluation.ts";
 * const t = regexTest(/^jo/i);
 * assert(t("John") && !t("Ann") && !t(42));
 * ```
 */
export function regexTest(re: RegExp): ValueTest {
  const r = statelessRegExp(re);
  // V8 compiles a pattern when first run: one too large for it (or for
  // its stack) fails there, so run it once now, not in every query.
  try {
    r.test("");
  } catch (e) {
    const why = String((e as Error)?.message ?? e).split(": ").pop();
    throw new TypeError(
      `Cannot compile filter: the regular expression /${
        r.source.length > 40 ? `${r.source.slice(0, 40)}...` : r.source
      }/ cannot run: ${why}`,
    );
  }
  const source = r.source;
  const flags = r.flags;
  return (v) =>
    typeof v === "string"
      ? r.test(v)
      : v instanceof RegExp && v.source === source && v.flags === flags;
}

function compileRegex(
  pattern: unknown,
  options: unknown,
  path: string,
): RegExp {
  let flags = "";
  if (options !== undefined) {
    if (typeof options !== "string") {
      throw filterError(
        path,
        `'$options' needs a string, got ${describe(options)}`,
      );
    }
    if (!ALLOWED_OPTIONS.test(options)) {
      throw filterError(
        path,
        `'$options' has unsupported flags '${options}' (supported: i, m, s, u)`,
      );
    }
    flags = options;
  }
  if (pattern instanceof RegExp) {
    const own = statelessRegExp(pattern);
    if (flags !== "" && own.flags !== "") {
      throw filterError(
        path,
        `options are set both in the '$regex' RegExp (${own.flags}) and in '$options' (${flags})`,
      );
    }
    if (flags === "") return own;
    pattern = own.source;
  }
  if (typeof pattern !== "string") {
    throw filterError(
      path,
      `'$regex' needs a string or a RegExp, got ${describe(pattern)}`,
    );
  }
  try {
    return new RegExp(pattern, [...new Set(flags)].join(""));
  } catch (e) {
    throw filterError(
      path,
      `'$regex' is not a valid regular expression: ${(e as Error).message}`,
    );
  }
}

function modPart(v: unknown, path: string, what: string): number {
  if (typeof v !== "number") {
    throw filterError(
      path,
      `'$mod' ${what} must be a number, got ${describe(v)}`,
    );
  }
  if (!Number.isFinite(v)) {
    throw filterRangeError(path, `'$mod' ${what} must be finite, got ${v}`);
  }
  return Math.trunc(v);
}

const LONG_LIMIT = 2 ** 63;

/**
 * The evaluation operators, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluationOperators } from "./evaluation.ts";
 * assert("$regex" in evaluationOperators && "$mod" in evaluationOperators);
 * ```
 */
export const evaluationOperators: { readonly [op: string]: OperatorCompiler } =
  {
    $regex(operand, ctx) {
      return leafOp(
        regexTest(compileRegex(operand, ctx.siblings.$options, ctx.path)),
        true,
        false,
      );
    },
    $options(_operand, ctx) {
      if (!Object.hasOwn(ctx.siblings, "$regex")) {
        throw filterError(ctx.path, "'$options' needs a '$regex' beside it");
      }
      return []; // Applied by $regex.
    },
    $mod(operand, ctx) {
      if (!Array.isArray(operand) || operand.length !== 2) {
        throw filterError(
          ctx.path,
          `'$mod' needs an array [divisor, remainder], got ${
            Array.isArray(operand)
              ? `an array of ${operand.length}`
              : describe(operand)
          }`,
        );
      }
      const divisor = modPart(operand[0], ctx.path, "divisor");
      const remainder = modPart(operand[1], ctx.path, "remainder");
      if (divisor === 0) {
        throw filterRangeError(ctx.path, "'$mod' divisor must not be 0");
      }
      return leafOp(
        (v) => {
          if (typeof v !== "number" || !Number.isFinite(v)) return false;
          const n = Math.trunc(v);
          return n < LONG_LIMIT && n >= -LONG_LIMIT &&
            n % divisor === remainder;
        },
        true,
        false,
      );
    },
  };
