/**
 * A test helper: wraps a Deno KV so that a test sees, or steps into, each
 * atomic operation the database makes (its sets, its commit).
 *
 * @module
 */

import type { KvAtomicLike, KvLike } from "../src/storage/kv.ts";

/** What a test does around each atomic operation (`n` counts them from 1). */
export interface AtomicHooks {
  /** Before each set of atomic `n`. */
  readonly set?: (n: number) => void;
  /** Runs the commit of atomic `n`: `send()` commits it. */
  readonly commit?: (
    n: number,
    send: () => Promise<{ ok: boolean; versionstamp?: string }>,
  ) => Promise<{ ok: boolean; versionstamp?: string }>;
}

/**
 * The KV with each atomic operation passed through `hooks`.
 *
 * @param kv The KV.
 * @param hooks What to do around sets and commits.
 * @returns The wrapped KV (other methods go to `kv`).
 */
export function wrapAtomics(kv: Deno.Kv, hooks: AtomicHooks): KvLike {
  let ops = 0;
  return new Proxy(kv, {
    get(target, name) {
      if (name === "atomic") {
        return (): KvAtomicLike => {
          const op = target.atomic();
          const n = ++ops;
          return {
            check(...checks) {
              op.check(...checks as Deno.AtomicCheck[]);
              return this;
            },
            set(key, value, options) {
              hooks.set?.(n);
              op.set(key as Deno.KvKey, value, options);
              return this;
            },
            delete(key) {
              op.delete(key as Deno.KvKey);
              return this;
            },
            commit() {
              const send = () => op.commit();
              return hooks.commit === undefined
                ? send()
                : hooks.commit(n, send);
            },
          };
        };
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as unknown as KvLike;
}
