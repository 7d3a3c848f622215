/**
 * The filter interpreter: turns a validated filter ({@linkcode FilterNode})
 * into a tree of closures. It answers where code generation is not allowed
 * (see `codegen.ts`), for the parts of a filter the code generator does not
 * inline, and for `$elemMatch` sub-filters.
 *
 * @module
 */

import { allOf, anyOf } from "./logical.ts";
import {
  compilePathMatcher,
  compileRestMatcher,
  type PathMatcher,
} from "./path.ts";
import type { DocPredicate, FieldOp, FilterNode } from "./types.ts";

/**
 * The interpreter: turns a validated filter into a tree of closures. Used
 * where code generation is not allowed, for the parts of a filter the code
 * generator does not inline, and for `$elemMatch` sub-filters.
 *
 * @param node The validated filter.
 * @returns Its predicate.
 */
export function interpret(node: FilterNode): DocPredicate {
  switch (node.kind) {
    case "and":
      return allOf(node.nodes.map(interpret));
    case "or":
      return anyOf(node.nodes.map(interpret));
    case "nor": {
      const any = anyOf(node.nodes.map(interpret));
      return (d, t) => !any(d, t);
    }
    case "field":
      return interpretField(node.key, node.op, node.tags);
  }
}

/**
 * The closure for one field operator.
 *
 * @param key The field path.
 * @param op The operator.
 * @param tags Whether `tags…` paths resolve against an item's tags.
 * @returns Its predicate.
 */
export function interpretField(
  key: string,
  op: FieldOp,
  tags: boolean,
): DocPredicate {
  if (op.kind === "not") {
    const all = allOf(op.ops.map((o) => interpretField(key, o, tags)));
    return (d, t) => !all(d, t);
  }
  const test = op.test;
  const matcher: PathMatcher = compilePathMatcher(key, op.traverse);
  let pred: DocPredicate;
  if (tags && (key === "tags" || key.startsWith("tags."))) {
    const rest = compileRestMatcher(key, op.traverse);
    pred = (d, t) => t === undefined ? matcher(d, test) : rest(t, test);
  } else {
    pred = (d) => matcher(d, test);
  }
  if (!op.negate) return pred;
  return (d, t) => !pred(d, t);
}
