/**
 * What `verify` and `repair` share: the passphrase-aware repair call and
 * the lines listing what a repair loses.
 *
 * @module
 */

import { repair, type RepairReport } from "../../mod.ts";
import type { Context } from "./context.ts";
import { type Target, withPassphrase } from "./open.ts";
import { oneLine } from "./output.ts";

/**
 * Runs `repair()` on the file database at `where` (with the passphrase the
 * CLI gets, if it is encrypted), into `out`, or only reporting without it.
 *
 * @param ctx The command's context.
 * @param where The damaged database.
 * @param out The new database's path; none to only report.
 * @param onProgress Told how far along the repair is.
 * @returns The report.
 */
export function repairWith(
  ctx: Context,
  where: Target,
  out?: string,
  onProgress?: (done: number, total: number) => void,
): Promise<RepairReport> {
  return withPassphrase(ctx, where, (passphrase) => {
    const source = passphrase === undefined
      ? { path: where.location }
      : { path: where.location, encryption: { passphrase } };
    const options = onProgress === undefined ? {} : { onProgress };
    return out === undefined
      ? repair(source, undefined, options)
      : repair(source, { path: out }, options);
  });
}

/**
 * One line per loss of a repair report.
 *
 * @param report The report.
 * @returns The lines.
 */
export function lostLines(report: RepairReport): string {
  return report.lost.map((l) =>
    `  ${
      l.offset !== undefined
        ? `bytes ${l.offset} to ${l.offset + (l.bytes ?? 0)}`
        : l.key !== undefined
        ? `'${l.key}' in '${l.collection}'`
        : l.index !== undefined
        ? `index '${l.index}' of '${l.collection}'`
        : "a record"
    }: ${oneLine(l.reason)}\n`
  ).join("");
}
