/**
 * Shared pieces of the expression compiler (`expression.ts`) and its
 * operator modules.
 *
 * @module
 */

/**
 * A compiled expression: evaluates against a document (`$$ROOT` and
 * `$$CURRENT`). `undefined` stands for a missing value.
 */
export type Expression = (doc: unknown) => unknown;

/** Compiles one operator's operand; `where` locates it for errors. */
export type OperatorBuilder = (
  arg: unknown,
  where: string,
  compile: (spec: unknown, where: string) => Expression,
) => Expression;

/**
 * The error for a malformed expression.
 *
 * @param where Where in the pipeline or filter.
 * @param problem What is wrong.
 * @returns A `TypeError` naming the place.
 */
export function expressionError(where: string, problem: string): TypeError {
  return new TypeError(
    `Cannot compile expression${
      where === "" ? "" : ` at '${where}'`
    }: ${problem}`,
  );
}

/**
 * The error for an operand of the wrong type at run time.
 *
 * @param op The operator.
 * @param problem What is wrong.
 * @returns A `TypeError` naming the operator.
 */
export function evaluationError(op: string, problem: string): TypeError {
  return new TypeError(`Cannot evaluate '${op}': ${problem}`);
}

/** Whether a value is `null` or missing. */
export function nullish(v: unknown): v is null | undefined {
  return v === null || v === undefined;
}

/** The operands as a list (a single non-array operand is a list of one). */
export function list(
  arg: unknown,
  where: string,
  compile: (s: unknown, w: string) => Expression,
): Expression[] {
  const items = Array.isArray(arg) ? arg : [arg];
  // Array.from visits holes (as undefined, which is refused): map skips them.
  return Array.from(items, (s, i) => compile(s, `${where}.${i}`));
}

/** Exactly `n` operands. */
export function exactly(
  n: number,
  arg: unknown,
  where: string,
  compile: (s: unknown, w: string) => Expression,
): Expression[] {
  const args = list(arg, where, compile);
  if (args.length !== n) {
    throw expressionError(
      where,
      `expects ${n} argument${n === 1 ? "" : "s"}, got ${args.length}`,
    );
  }
  return args;
}
