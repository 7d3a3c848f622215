/**
 * The check a file target of `backup` and `export` gets before anything is
 * written: its folder exists (else the error would name a temporary file).
 *
 * @module
 */

/**
 * Throws a `Deno.errors.NotFound` naming the target and its folder when the
 * folder of `path` does not exist (or is not a folder).
 *
 * @param path The target file.
 * @param what What is written ("backup", "export").
 * @throws {Deno.errors.NotFound} When the folder is missing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTargetFolder } from "./target_folder.ts";
 * await assert.rejects(
 *   checkTargetFolder("no-such-folder-x/y.tdbk", "backup"),
 *   /Cannot write backup to 'no-such-folder-x\/y.tdbk': the folder 'no-such-folder-x' does not exist/,
 * );
 * ```
 */
export async function checkTargetFolder(
  path: string,
  what: string,
): Promise<void> {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (cut < 0) return; // the working folder
  const folder = cut === 0 ? path.slice(0, 1) : path.slice(0, cut);
  let isFolder: boolean;
  try {
    isFolder = (await Deno.stat(folder)).isDirectory;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return; // let the write say why
    isFolder = false;
  }
  if (!isFolder) {
    throw new Deno.errors.NotFound(
      `Cannot write ${what} to '${path}': the folder '${folder}' does not exist`,
    );
  }
}
