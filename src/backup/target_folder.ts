/**
 * The checks a target of `backup` and `export` (and a source of `restore`
 * and `import`) gets before anything is read or written: a path or a
 * stream, and a file target's folder exists (else the error would name a
 * temporary file).
 *
 * @module
 */

/**
 * Checks that a target is a file path or a `WritableStream`, or (with
 * `reading`) that a source is a file path or a `ReadableStream`.
 *
 * @param value The target or source.
 * @param reading Whether it is read (a source).
 * @param action What is attempted, for the message.
 * @throws {TypeError} When it is neither.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkEnd } from "./target_folder.ts";
 * checkEnd("app.tdbk", false, "Cannot back up");
 * assert.throws(() => checkEnd(5, true, "Cannot restore"), TypeError);
 * ```
 */
export function checkEnd(
  value: unknown,
  reading: boolean,
  action: string,
): void {
  if (typeof value === "string" && value.length > 0) return;
  const method = reading ? "getReader" : "getWriter";
  if (
    typeof value === "object" && value !== null &&
    typeof (value as Record<string, unknown>)[method] === "function"
  ) return;
  throw new TypeError(
    `${action}: ${
      reading ? "the source" : "the target"
    } must be a file path or a ${
      reading ? "ReadableStream" : "WritableStream"
    }, got ${
      typeof value === "string"
        ? "an empty string"
        : value === null
        ? "null"
        : typeof value
    }`,
  );
}

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
