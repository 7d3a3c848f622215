/**
 * Listing a unosql database directory: which files are its collections,
 * telling the database name `D` from the files when it is not given, and
 * saying why every other file is left out (format note, sections 2 and 9).
 *
 * @module
 */

/** What a directory holds. */
export interface Listing {
  /** The database name `D`. */
  readonly name: string;
  /** Collection name → file name (`D_<collection>.db`). */
  readonly collections: Map<string, string>;
  /** Files that are not imported, and why. */
  readonly ignored: { file: string; reason: string }[];
  /** Whether `.idx` or `.db.bak` files exist (only the current format writes them). */
  readonly currentOnly: boolean;
}

/**
 * The database names the directory's own files reveal: `D_salt.db` and
 * `D_errors.log` (and its rotated copies `D_errors.log.<t>`).
 */
function namesFromHints(files: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const f of files) {
    const m = /^([A-Za-z0-9_]+)_(?:salt\.db|errors\.log(?:\.\d+)?)$/.exec(f);
    if (m) names.add(m[1]!);
  }
  return names;
}

/**
 * The longest `X` such that every `.db` file is `X_<something>.db`, or
 * `undefined` when there is none or only one file (ambiguous).
 */
function commonName(dbFiles: readonly string[]): string | undefined {
  if (dbFiles.length < 2) return undefined;
  const stems = dbFiles.map((f) => f.slice(0, -3));
  let prefix = stems[0]!;
  for (const s of stems) {
    let i = 0;
    while (i < prefix.length && i < s.length && prefix[i] === s[i]) i++;
    prefix = prefix.slice(0, i);
  }
  // Cut at the last '_' that leaves every collection name non-empty.
  for (
    let at = prefix.lastIndexOf("_");
    at > 0;
    at = prefix.lastIndexOf("_", at - 1)
  ) {
    const name = prefix.slice(0, at);
    if (stems.every((s) => s.length > at + 1)) return name;
  }
  return undefined;
}

/**
 * Lists a unosql database directory.
 *
 * @param dir The directory.
 * @param given The database name, if the caller gave it.
 * @param action For error messages.
 * @returns The collections and what is left out.
 * @throws {TypeError} When the name cannot be told, or two databases share
 *   the directory and no name was given.
 */
export async function listDatabase(
  dir: string,
  given: string | undefined,
  action: string,
): Promise<Listing> {
  const files: string[] = [];
  const ignored: { file: string; reason: string }[] = [];
  const path = (f: string) => (dir.endsWith("/") ? dir + f : `${dir}/${f}`);
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) files.push(entry.name);
    else ignored.push({ file: path(entry.name), reason: "not a file" });
  }
  files.sort();
  let name = given;
  if (name === undefined) {
    const hinted = namesFromHints(files);
    if (hinted.size > 1) {
      throw new TypeError(
        `${action}: '${dir}' holds several unosql databases (${
          [...hinted].sort().join(", ")
        }); pass options.name`,
      );
    }
    name = hinted.size === 1
      ? [...hinted][0]!
      : commonName(files.filter((f) => /^[A-Za-z0-9_]+\.db$/.test(f)));
    if (name === undefined) {
      throw new TypeError(
        `${action}: cannot tell the unosql database name in '${dir}' (no D_salt.db or D_errors.log, and not two or more D_<collection>.db files); pass options.name`,
      );
    }
  }
  const collections = new Map<string, string>();
  let currentOnly = false;
  const prefix = `${name}_`;
  for (const f of files) {
    const mine = f.startsWith(prefix);
    let reason: string | undefined;
    if (!mine) {
      reason = f.endsWith(".db") || f.endsWith(".idx")
        ? `not of database '${name}'`
        : "not a unosql file";
    } else if (f === `${name}_salt.db`) {
      continue; // read when needed
    } else if (f.endsWith(".idx")) {
      currentOnly = true;
      reason =
        "an index file (unosql never queries with it; declare indexes with createIndex)";
    } else if (f.endsWith(".db.bak")) {
      currentOnly = true;
      reason =
        "the previous copy left by an interrupted save; import it by its path if the collection file is damaged";
    } else if (f.endsWith(".db.tmp")) {
      reason = "an unfinished save";
    } else if (f.endsWith(".lock")) {
      reason =
        "a lock file: unosql may have been writing when the copy was taken";
    } else if (/\.log(\.\d+)?$/.test(f)) {
      reason = "unosql's log";
    } else if (f.endsWith(".db")) {
      const collection = f.slice(prefix.length, -3);
      if (/^[A-Za-z0-9_]+$/.test(collection)) {
        collections.set(collection, f);
        continue;
      }
      reason = "not a collection name unosql writes";
    } else {
      reason = "not a unosql file";
    }
    ignored.push({ file: path(f), reason });
  }
  return { name, collections, ignored, currentOnly };
}
