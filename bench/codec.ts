/**
 * Scenario 10 of `deno task bench`: compression and encryption at rest
 * (`open({ compression, encryption })`, src/codec_storage.ts) against the
 * same database without them, on each storage, in one run:
 *
 * - 10a. single puts of sensor documents, a small one (about 240 bytes of
 *   JSON) and a larger one (about 2 KB), on the memory storage (`open()`),
 *   the file storage (`open({ path })`, default strict durability) and the
 *   Deno KV storage (`open({ kv: path })` on a KV file), each plain,
 *   compressed (`compression: true`), encrypted (`encryption: { passphrase,
 *   iterations: 1000 }`) and both;
 * - 10b. lookups by key in random order on the same storages and variants;
 * - 10c. what is stored: the file (and KV file) holding 10,000 sensor
 *   documents after `db.compact()`, and each record's envelope, counted
 *   below the codec;
 * - 10d. open time at the default PBKDF2 iteration count (600,000): creating
 *   a file database and reopening one of 10,000 documents, against plain.
 *
 * The cases of 10a, 10b and 10d run round-robin (one sample of each in
 * turn), so a slow spell of the machine hits every variant alike and the
 * ratios to plain hold. {@linkcode runCodecBench} runs it; `bench/main.ts`
 * calls it after scenario 9 (or alone with `--only=codec`). Needs
 * `--unstable-kv`.
 *
 * @module
 */

import { type Database, open, type OpenOptions } from "../mod.ts";
import { decodeKey, MemoryStorage, type Storage } from "../storage.ts";
import type {
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
} from "../storage.ts";
import { mulberry32, shuffledIndices } from "./data.ts";
import {
  type Case,
  check,
  collectGarbage,
  fail,
  fmtMs,
  fmtOps,
  median,
  nf,
  type Result,
  runInterleaved,
} from "./harness.ts";

/** What scenario 10 needs from the main benchmark. */
export interface CodecBenchContext {
  /** `--quick`: 10x fewer puts, lookups and stored documents. */
  readonly quick: boolean;
  /** Unrecorded rounds. */
  readonly warmup: number;
  /** Progress output (stderr). */
  readonly log: (line: string) => void;
}

/** A row of the Targets table (the same shape as `bench/main.ts`'s). */
export interface CodecTarget {
  /** What is measured. */
  name: string;
  /** The goal. */
  goal: string;
  /** The measured value, in words. */
  measured: string;
  /** Whether the goal was met. */
  met: boolean;
}

/** One stored-size row of 10c. */
export interface StoredSize {
  /** "file" or "KV file". */
  readonly storage: string;
  /** "small" or "large". */
  readonly doc: string;
  /** "plain", "compressed", "encrypted" or "both". */
  readonly variant: string;
  /** Documents stored. */
  readonly docs: number;
  /** Bytes on disk after `compact()` and `close()`. */
  readonly bytes: number;
  /** Whether the file holds the plain text `greenhouse-3` (a field value). */
  readonly plaintextFound: boolean;
  /** Load time (putBatch of 1,000 at a time), ms. */
  readonly loadMs: number;
}

/** One envelope row of 10c: stored values counted below the codec. */
export interface EnvelopeRow {
  /** "tiny", "small" or "large". */
  readonly doc: string;
  /** The variant, with its compression threshold. */
  readonly variant: string;
  /** Records written. */
  readonly records: number;
  /** Mean bytes of the stored value. */
  readonly meanBytes: number;
  /** Smallest and largest stored value. */
  readonly minBytes: number;
  /** Largest stored value. */
  readonly maxBytes: number;
  /** Records whose envelope says compressed. */
  readonly compressed: number;
  /** Records whose envelope says encrypted. */
  readonly encrypted: number;
}

/** The outcome of scenario 10. */
export interface CodecReport {
  /** Single puts per sample (10a). */
  readonly puts: number;
  /** Lookups per sample (10b), among as many stored documents. */
  readonly gets: number;
  /** Documents of the stored-size and reopen tests. */
  readonly sizeDocs: number;
  /** Median JSON bytes of each document kind. */
  readonly docJsonBytes: Record<string, number>;
  /** PBKDF2 iterations of the throughput runs. */
  readonly fastIterations: number;
  /** Every timed case; `extra` places it (group, storage, doc, variant). */
  readonly results: Result[];
  /** 10c, on disk. */
  readonly sizes: StoredSize[];
  /** 10c, below the codec. */
  readonly envelopes: EnvelopeRow[];
  /** Rows for the Targets table (none: the issue sets no goal). */
  readonly targets: CodecTarget[];
  /** The report section, markdown, starting with its `##` heading. */
  readonly markdown: string;
}

/** Recorded rounds of the put cases (a sample lasts ~0.05-1 s). */
const PUT_ROUNDS = 5;
/** Recorded rounds of the get cases (cheaper: more of them). */
const GET_ROUNDS = 7;
/** Recorded rounds of the open cases. */
const OPEN_ROUNDS = 5;
/** PBKDF2 iterations of the throughput runs (open stays ~1 ms). */
const FAST_ITERATIONS = 1_000;
/** The default of src/codec_storage.ts. */
const DEFAULT_ITERATIONS = 600_000;
/** The default compression threshold of src/codec_storage.ts. */
const DEFAULT_MIN_BYTES = 256;
const PASSPHRASE = "correct horse battery staple";
/** Documents per `putBatch` when loading (Deno KV: 100 checks per commit). */
const LOAD_BATCH = 40;
/** Documents per `putBatch` of the stored-size files. */
const SIZE_BATCH = 1_000;
/**
 * Text every plain sensor record holds (a field's value: the file storage
 * writes JSON, Deno KV its own serialisation of the value, and both keep
 * the text as it is); absent once encrypted.
 */
const MARKER = "greenhouse-3";

/** A small sensor reading, about 240 bytes of JSON. */
interface SmallDoc {
  device: string;
  site: string;
  zone: string;
  fw: string;
  ts: number;
  temp: number;
  hum: number;
  battery: number;
  rssi: number;
  status: string;
  readings: number[];
}

/** A batch of 36 samples, about 2 KB of JSON. */
interface LargeDoc {
  device: string;
  site: string;
  zone: string;
  fw: string;
  ts: number;
  status: string;
  battery: number;
  rssi: number;
  samples: { t: number; temp: number; hum: number; co2: number }[];
}

type SensorDoc = SmallDoc | LargeDoc;

function makeDocs(
  n: number,
  seed: number,
): { small: SmallDoc[]; large: LargeDoc[] } {
  const rnd = mulberry32(seed);
  const dec = (lo: number, hi: number, digits: number) =>
    Math.round((lo + rnd() * (hi - lo)) * 10 ** digits) / 10 ** digits;
  const device = (i: number) => `esp32-${String(i % 100).padStart(3, "0")}`;
  const zone = (i: number) => `bench-${"ABCD"[i % 4]}`;
  const small: SmallDoc[] = new Array(n);
  const large: LargeDoc[] = new Array(n);
  for (let i = 0; i < n; i++) {
    small[i] = {
      device: device(i),
      site: "greenhouse-3",
      zone: zone(i),
      fw: "1.4.2",
      ts: 1_700_000_000_000 + i * 1_000,
      temp: dec(15, 35, 1),
      hum: dec(20, 80, 1),
      battery: dec(3.3, 4.2, 2),
      rssi: -Math.round(40 + rnd() * 50),
      status: "ok",
      readings: Array.from({ length: 10 }, () => dec(15, 35, 2)),
    };
    const ts = 1_700_000_000_000 + i * 60_000;
    large[i] = {
      device: device(i),
      site: "greenhouse-3",
      zone: zone(i),
      fw: "1.4.2",
      ts,
      status: "ok",
      battery: dec(3.3, 4.2, 2),
      rssi: -Math.round(40 + rnd() * 50),
      samples: Array.from({ length: 36 }, (_, k) => ({
        t: ts + k * 1_000,
        temp: dec(15, 35, 2),
        hum: dec(20, 80, 1),
        co2: Math.round(380 + rnd() * 400),
      })),
    };
  }
  return { small, large };
}

/** The compression / encryption options of one variant. */
interface Variant {
  readonly name: "plain" | "compressed" | "encrypted" | "both";
  readonly options: Pick<OpenOptions, "compression" | "encryption">;
}

function variants(iterations: number): Variant[] {
  const encryption = { passphrase: PASSPHRASE, iterations };
  return [
    { name: "plain", options: {} },
    { name: "compressed", options: { compression: true } },
    { name: "encrypted", options: { encryption } },
    { name: "both", options: { compression: true, encryption } },
  ];
}

/** Where a database lives. */
interface Place {
  /** "memory", "file" or "KV file". */
  readonly label: string;
  /** The open options of a new database there (a new file, if any). */
  readonly fresh: () => Promise<
    { where: OpenOptions; dir?: string | undefined }
  >;
}

/** Bytes of a SQLite file plus its WAL, if one was left. */
async function sqliteBytes(path: string): Promise<number> {
  let total = 0;
  for (const p of [path, `${path}-wal`]) {
    try {
      total += (await Deno.stat(p)).size;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return total;
}

/** Whether `bytes` contains `needle`. */
function contains(bytes: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0]!;
  let at = bytes.indexOf(first);
  while (at !== -1 && at + needle.length <= bytes.length) {
    let j = 1;
    while (j < needle.length && bytes[at + j] === needle[j]) j++;
    if (j === needle.length) return true;
    at = bytes.indexOf(first, at + 1);
  }
  return false;
}

/**
 * A memory storage that records the size and envelope flags of every
 * document value written to it: below the codec, it sees what is stored.
 */
class CountingStorage implements Storage {
  readonly #inner = new MemoryStorage();
  /** Stored value sizes of document keys. */
  readonly sizes: number[] = [];
  /** Envelope flag bytes of document keys. */
  readonly flags: number[] = [];

  get capabilities() {
    return this.#inner.capabilities;
  }
  get(key: Uint8Array): Promise<StorageEntry | null> {
    return this.#inner.get(key);
  }
  getMany(keys: readonly Uint8Array[]): Promise<(StorageEntry | null)[]> {
    return this.#inner.getMany(keys);
  }
  scan(
    options: Parameters<Storage["scan"]>[0],
  ): AsyncIterable<readonly StorageEntry[]> {
    return this.#inner.scan(options);
  }
  commit(commit: StorageCommit): Promise<StorageCommitResult> {
    for (const set of commit.sets ?? []) {
      if (decodeKey(set.key)[0] !== "d") continue;
      this.sizes.push(set.value.length);
      this.flags.push(set.value[1]!);
    }
    return this.#inner.commit(commit);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** The codec settings a database reports in `stats().storageStats`. */
function codecOf(db: Database<unknown>): {
  encrypted: boolean;
  compression: unknown;
} {
  const s = db.stats().storageStats as Record<string, unknown> | undefined;
  return {
    encrypted: s?.encrypted === true,
    compression: s?.compression ?? false,
  };
}

function checkCodec(db: Database<unknown>, v: Variant, who: string): void {
  const c = codecOf(db);
  const wantCompression = v.options.compression === undefined
    ? false
    : DEFAULT_MIN_BYTES;
  check(
    c.encrypted === (v.options.encryption !== undefined) &&
      c.compression === wantCompression,
    `${who}: codec reports ${JSON.stringify(c)}`,
  );
}

function sameDoc(a: unknown, b: SensorDoc): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Runs scenario 10.
 *
 * @param ctx Size, repetitions and logging.
 * @returns Results, sizes, envelopes and the report section.
 */
export async function runCodecBench(
  ctx: CodecBenchContext,
): Promise<CodecReport> {
  const { warmup, log } = ctx;
  const scale = ctx.quick ? 10 : 1;
  const P = 1_000 / scale;
  const S = 10_000 / scale;
  const docs = makeDocs(Math.max(P, S), 10);
  const kinds = [
    { name: "small", docs: docs.small as SensorDoc[], prefix: "s" },
    { name: "large", docs: docs.large as SensorDoc[], prefix: "l" },
  ] as const;
  const jsonBytes = (d: unknown) =>
    new TextEncoder().encode(JSON.stringify(d)).length;
  const docJsonBytes: Record<string, number> = {
    small: median(docs.small.slice(0, S).map(jsonBytes)),
    large: median(docs.large.slice(0, S).map(jsonBytes)),
  };
  const smallRange = docs.small.slice(0, S).map(jsonBytes);
  const order = shuffledIndices(P, 5);
  const fast = variants(FAST_ITERATIONS);
  const results: Result[] = [];
  const sizes: StoredSize[] = [];
  const envelopes: EnvelopeRow[] = [];
  const md: string[] = [];
  const p = (s = "") => md.push(s);
  const timers = { ttlCheckInterval: Infinity, cleanupInterval: Infinity };

  const root = await Deno.makeTempDir({ prefix: "tether-bench-codec-" });
  let dirNo = 0;
  const freshDir = async (): Promise<string> => {
    const dir = `${root}/d${dirNo++}`;
    await Deno.mkdir(dir);
    return dir;
  };
  const drop = (dir: string | undefined) =>
    dir === undefined
      ? Promise.resolve()
      : Deno.remove(dir, { recursive: true });
  const places: Place[] = [
    { label: "memory", fresh: () => Promise.resolve({ where: {} }) },
    {
      label: "file",
      fresh: async () => {
        const dir = await freshDir();
        return { where: { path: `${dir}/db.tdb` }, dir };
      },
    },
    {
      label: "KV file",
      fresh: async () => {
        const dir = await freshDir();
        return { where: { kv: `${dir}/kv.sqlite` }, dir };
      },
    },
  ];
  const open10 = (
    where: OpenOptions,
    v: Pick<OpenOptions, "compression" | "encryption">,
  ) => open({ ...where, ...timers, ...v });
  const stores: Database<unknown>[] = [];

  try {
    // -----------------------------------------------------------------------
    // 10a. P single puts into a new database, each sample.
    log(
      `# 10a. ${P} single puts per storage, document and variant (temp dir ${root})`,
    );
    const putCases: Case<unknown>[] = [];
    const tags: Record<string, string>[] = [];
    for (const place of places) {
      for (const kind of kinds) {
        for (const v of fast) {
          const who = `${place.label} ${kind.name} ${v.name}`;
          tags.push({ storage: place.label, doc: kind.name, variant: v.name });
          putCases.push(
            {
              impl: `${place.label}, ${kind.name}, ${v.name}`,
              op: "await db.put(key, doc)",
              ops: P,
              setup: async () => {
                const { where, dir } = await place.fresh();
                return { db: await open10(where, v.options), dir };
              },
              run: async ({ db }: { db: Database<unknown> }) => {
                for (let i = 0; i < P; i++) {
                  await db.put(`${kind.prefix}${i}`, kind.docs[i]);
                }
              },
              teardown: async (
                { db, dir }: { db: Database<unknown>; dir: string | undefined },
              ) => {
                check(db.stats().items === P, `${who}: ${db.stats().items}`);
                check(
                  sameDoc(await db.get(`${kind.prefix}${P - 1}`), {
                    ...kind.docs[P - 1]!,
                  }),
                  `${who}: read back`,
                );
                checkCodec(db, v, who);
                await db.close();
                await drop(dir);
              },
            } satisfies Case<
              { db: Database<unknown>; dir: string | undefined }
            > as Case<
              unknown
            >,
          );
        }
      }
    }
    const putRaw = await runInterleaved(putCases, warmup, PUT_ROUNDS, log);
    results.push(
      ...putRaw.map((r, i): Result => ({
        ...r,
        extra: { group: "put", ...tags[i]! },
      })),
    );

    // -----------------------------------------------------------------------
    // 10b. P lookups in random order among P stored documents of each kind.
    log(`# 10b. loading ${P} small and ${P} large documents per store`);
    const getCases: Case<unknown>[] = [];
    const getTags: Record<string, string>[] = [];
    for (const place of places) {
      for (const v of fast) {
        const { where, dir } = await place.fresh();
        void dir; // removed with the root
        const db = await open10(where, v.options);
        stores.push(db);
        for (const kind of kinds) {
          for (let s = 0; s < P; s += LOAD_BATCH) {
            const batch = new Map<string, SensorDoc>();
            for (let i = s; i < Math.min(P, s + LOAD_BATCH); i++) {
              batch.set(`${kind.prefix}${i}`, kind.docs[i]!);
            }
            await db.putBatch(batch);
          }
        }
        checkCodec(db, v, `${place.label} ${v.name} store`);
        for (const kind of kinds) {
          getTags.push({
            storage: place.label,
            doc: kind.name,
            variant: v.name,
          });
          getCases.push({
            impl: `${place.label}, ${kind.name}, ${v.name}`,
            op: "await db.get(key)",
            ops: P,
            run: async () => {
              let found = 0;
              for (let i = 0; i < P; i++) {
                const d = await db.get(`${kind.prefix}${order[i]!}`) as
                  | SensorDoc
                  | null;
                if (d?.ts === kind.docs[order[i]!]!.ts) found++;
              }
              check(found === P, `${place.label} ${v.name}: found ${found}`);
            },
          });
        }
      }
    }
    // The same lookups in the same order; the rounds interleave all stores.
    log(`# 10b. ${P} lookups by key, random order`);
    const getRaw = await runInterleaved(getCases, warmup, GET_ROUNDS, log);
    results.push(
      ...getRaw.map((r, i): Result => ({
        ...r,
        extra: { group: "get", ...getTags[i]! },
      })),
    );
    for (const db of stores.splice(0)) await db.close();
    collectGarbage();

    // -----------------------------------------------------------------------
    // 10c. What is stored. First each record's envelope, counted below the
    // codec on a memory storage; then whole files.
    log(`# 10c. envelopes (counted below the codec) and stored sizes`);
    const tiny = (i: number) => ({
      device: `dev-${i % 100}`,
      temp: docs.small[i]!.temp,
      hum: docs.small[i]!.hum,
      ts: docs.small[i]!.ts,
    });
    docJsonBytes["tiny"] = median(
      Array.from({ length: P }, (_, i) => jsonBytes(tiny(i))),
    );
    const probes: {
      doc: string;
      variant: string;
      options: Pick<OpenOptions, "compression" | "encryption">;
      value: (i: number) => unknown;
    }[] = [];
    for (const kind of kinds) {
      for (const v of fast) {
        probes.push({
          doc: kind.name,
          variant: v.name,
          options: v.options,
          value: (i) => kind.docs[i],
        });
      }
    }
    for (
      const [variant, options] of [
        ["plain", {}],
        ["compressed", { compression: true }],
        ["compressed (minBytes: 0)", { compression: { minBytes: 0 } }],
        ["encrypted", {
          encryption: { passphrase: PASSPHRASE, iterations: FAST_ITERATIONS },
        }],
      ] as const
    ) {
      probes.push({ doc: "tiny", variant, options, value: tiny });
    }
    probes.push({
      doc: "small",
      variant: "compressed (minBytes: 0)",
      options: { compression: { minBytes: 0 } },
      value: (i) => docs.small[i],
    });
    for (const probe of probes) {
      const storage = new CountingStorage();
      const db = await open({ storage, ...timers, ...probe.options });
      for (let i = 0; i < P; i++) await db.put(`s${i}`, probe.value(i));
      await db.close();
      check(storage.sizes.length === P, `${probe.doc} ${probe.variant} count`);
      envelopes.push({
        doc: probe.doc,
        variant: probe.variant,
        records: P,
        meanBytes: storage.sizes.reduce((a, b) => a + b, 0) / P,
        minBytes: Math.min(...storage.sizes),
        maxBytes: Math.max(...storage.sizes),
        compressed: storage.flags.filter((f) =>
          probe.options.compression !== undefined && (f & 1) !== 0
        ).length,
        encrypted: storage.flags.filter((f) =>
          probe.options.encryption !== undefined && (f & 2) !== 0
        ).length,
      });
    }

    // Whole files: S documents, putBatch of 1,000, compact(), close(). The
    // encrypted ones at the default iteration count: they are reopened in
    // 10d.
    const slow = variants(DEFAULT_ITERATIONS);
    const marker = new TextEncoder().encode(MARKER);
    const reopenPaths: Record<string, string> = {};
    for (const place of places.slice(1)) {
      for (const kind of kinds) {
        for (const v of slow) {
          const { where, dir } = await place.fresh();
          const t0 = performance.now();
          const db = await open10(where, v.options);
          for (let s = 0; s < S; s += SIZE_BATCH) {
            // Deno KV commits at most 100 checks: smaller batches there.
            const step = place.label === "file" ? SIZE_BATCH : LOAD_BATCH;
            for (let b = s; b < s + SIZE_BATCH; b += step) {
              const batch = new Map<string, SensorDoc>();
              for (let i = b; i < Math.min(S, b + step); i++) {
                batch.set(`${kind.prefix}${i}`, kind.docs[i]!);
              }
              await db.putBatch(batch);
            }
          }
          const loadMs = performance.now() - t0;
          check(db.stats().items === S, `${place.label} size test items`);
          await db.compact();
          await db.close();
          const path = (where.path ?? where.kv) as string;
          const bytes = place.label === "file"
            ? (await Deno.stat(path)).size
            : await sqliteBytes(path);
          let plaintextFound = false;
          for (const f of [path, `${path}-wal`]) {
            try {
              if (contains(await Deno.readFile(f), marker)) {
                plaintextFound = true;
              }
            } catch (e) {
              if (!(e instanceof Deno.errors.NotFound)) throw e;
            }
          }
          if (v.options.encryption !== undefined) {
            check(!plaintextFound, `${place.label} ${v.name}: plain text`);
          }
          if (v.name === "plain") {
            check(plaintextFound, `${place.label} plain: marker not found`);
          }
          sizes.push({
            storage: place.label,
            doc: kind.name,
            variant: v.name,
            docs: S,
            bytes,
            plaintextFound,
            loadMs,
          });
          log(
            `  ${place.label} ${kind.name} ${v.name}: ${
              nf(bytes)
            } bytes (load ${fmtMs(loadMs)} ms)`,
          );
          if (kind.name === "small") {
            reopenPaths[`${place.label} ${v.name}`] = path;
          } else {
            await drop(dir);
          }
        }
      }
    }

    // -----------------------------------------------------------------------
    // 10d. Open time at the default iteration count.
    log(`# 10d. open at ${DEFAULT_ITERATIONS} PBKDF2 iterations`);
    const key = crypto.getRandomValues(new Uint8Array(32));
    const creates: [string, Pick<OpenOptions, "encryption" | "compression">][] =
      [
        ["plain", {}],
        ["passphrase, 600,000 iterations (default)", {
          encryption: { passphrase: PASSPHRASE },
        }],
        ["passphrase, 1,000 iterations", {
          encryption: { passphrase: PASSPHRASE, iterations: FAST_ITERATIONS },
        }],
        ["raw 32-byte key (HKDF)", { encryption: { key } }],
      ];
    const openCases: Case<unknown>[] = [];
    const openTags: Record<string, string>[] = [];
    openTags.push({ storage: "—", variant: "PBKDF2 alone" });
    openCases.push({
      impl: "PBKDF2-SHA256, 600,000 iterations",
      op: "crypto.subtle.deriveBits (512 bits)",
      ops: 1,
      run: async () => {
        const base = await crypto.subtle.importKey(
          "raw",
          new TextEncoder().encode(PASSPHRASE),
          "PBKDF2",
          false,
          ["deriveBits"],
        );
        await crypto.subtle.deriveBits(
          {
            name: "PBKDF2",
            hash: "SHA-256",
            salt: crypto.getRandomValues(new Uint8Array(16)),
            iterations: DEFAULT_ITERATIONS,
          },
          base,
          512,
        );
      },
    });
    for (const [name, options] of creates) {
      openTags.push({ storage: "file", variant: `create, ${name}` });
      openCases.push(
        {
          impl: `new file, ${name}`,
          op: "await open({ path, ...options })",
          ops: 1,
          setup: () => freshDir(),
          run: async (dir: string) => {
            const db = await open10({ path: `${dir}/db.tdb` }, options);
            await db.close();
          },
          teardown: (dir: string) => drop(dir),
        } satisfies Case<string> as Case<unknown>,
      );
    }
    for (const place of places.slice(1)) {
      for (const v of slow) {
        const path = reopenPaths[`${place.label} ${v.name}`]!;
        const where: OpenOptions = place.label === "file"
          ? { path }
          : { kv: path };
        openTags.push({ storage: place.label, variant: `reopen, ${v.name}` });
        openCases.push(
          {
            impl: `${place.label} of ${nf(S)} small documents, ${v.name}`,
            op: `await open({ ${place.label === "file" ? "path" : "kv"}${
              v.options.compression !== undefined ? ", compression" : ""
            }${
              v.options.encryption !== undefined
                ? ", encryption: { passphrase }"
                : ""
            } })`,
            ops: 1,
            run: async () => {
              const db = await open10(where, v.options);
              // Held until the teardown: closing is not part of opening.
              stores.push(db);
            },
            teardown: async () => {
              const db = stores.pop()!;
              // (On Deno KV, stats() counts only what this handle wrote.)
              if (place.label === "file") {
                check(db.stats().items === S, `reopened ${db.stats().items}`);
              }
              check(
                sameDoc(await db.get(`s${S - 1}`), docs.small[S - 1]!),
                `reopened ${place.label} ${v.name}: read back`,
              );
              checkCodec(db, v, `reopened ${place.label} ${v.name}`);
              await db.close();
            },
          },
        );
      }
    }
    const openRaw = await runInterleaved(openCases, warmup, OPEN_ROUNDS, log);
    results.push(
      ...openRaw.map((r, i): Result => ({
        ...r,
        extra: { group: "open", ...openTags[i]! },
      })),
    );

    // -----------------------------------------------------------------------
    // Report.
    const find = (
      group: string,
      storage: string,
      doc: string,
      variant: string,
    ): Result => {
      const r = results.find((x) =>
        x.extra?.group === group && x.extra?.storage === storage &&
        x.extra?.doc === doc && x.extra?.variant === variant
      );
      if (r === undefined) fail(`no result ${group} ${storage} ${doc}`);
      return r;
    };
    const ratio = (r: Result, base: Result) =>
      `${(r.opsPerSec / base.opsPerSec).toFixed(2)}x`;
    const perOp = (r: Result) => (r.medianMs * 1000) / r.ops;
    const extraUs = (r: Result, base: Result) => {
      const d = perOp(r) - perOp(base);
      return `${d >= 0 ? "+" : "−"}${fmtMs(Math.abs(d))} µs`;
    };
    const envelope = (doc: string, variant: string) =>
      envelopes.find((e) => e.doc === doc && e.variant === variant)!;
    const size = (storage: string, doc: string, variant: string) =>
      sizes.find((s) =>
        s.storage === storage && s.doc === doc && s.variant === variant
      )!;
    const openRow = (storage: string, variant: string) =>
      results.find((x) =>
        x.extra?.group === "open" && x.extra?.storage === storage &&
        x.extra?.variant === variant
      )!;

    p(
      `## 10. Compression and encryption: ${nf(P)} puts and gets per storage, ${
        nf(S)
      } documents stored`,
    );
    p();
    p(
      `Variants: plain (no option), compressed (\`compression: true\`: deflate-raw of records from ${DEFAULT_MIN_BYTES} bytes, kept when smaller), encrypted (\`encryption: { passphrase, iterations: ${
        nf(FAST_ITERATIONS)
      } }\`: AES-CBC + HMAC-SHA256 per record; ${
        nf(FAST_ITERATIONS)
      } iterations so that opening a database per sample stays fast, which changes nothing after open) and both. Storages: memory \`open()\`, file \`open({ path })\` (default durability, strict: one fdatasync per put), Deno KV \`open({ kv: path })\` on a KV file. Documents: small \`{ device, site, zone, fw, ts, temp, hum, battery, rssi, status, readings: [10 numbers] }\`, ${
        docJsonBytes["small"]
      } bytes of JSON (median; ${Math.min(...smallRange)}-${
        Math.max(...smallRange)
      }), and large \`{ device, site, zone, fw, ts, status, battery, rssi, samples: [36 × { t, temp, hum, co2 }] }\`, ${
        docJsonBytes["large"]
      } bytes (median). The cases of each table run round-robin (one sample of each in turn, every storage and variant alike): ${warmup} warm-up round, then ${PUT_ROUNDS} timed rounds for puts, ${GET_ROUNDS} for gets and ${OPEN_ROUNDS} for opens.`,
    );
    p();
    p(`### 10a/10b. Ratios to plain on the same storage (median ops/s)`);
    p();
    p(
      "| Storage | Document | Operation | plain ops/s | compressed | encrypted | both |",
    );
    p("|---|---|---|--:|--:|--:|--:|");
    for (const group of ["put", "get"]) {
      for (const place of places) {
        for (const kind of kinds) {
          const base = find(group, place.label, kind.name, "plain");
          const cells = ["compressed", "encrypted", "both"].map((v) => {
            const r = find(group, place.label, kind.name, v);
            return `${ratio(r, base)} (${extraUs(r, base)})`;
          });
          p(
            `| ${place.label} | ${kind.name} | ${group} | ${
              fmtOps(base.opsPerSec)
            } | ${cells.join(" | ")} |`,
          );
        }
      }
    }
    p();
    p(
      "Each cell: the variant's median ops/s ÷ plain's on the same storage and document (below 1 is slower), and the time it adds per operation at the median.",
    );
    for (const group of ["put", "get"] as const) {
      p();
      p(
        group === "put"
          ? `### 10a. ${nf(P)} single puts into a new database`
          : `### 10b. ${nf(P)} lookups by key among ${
            nf(P)
          } of the same kind, random order`,
      );
      p();
      p(
        `| Storage | Document | Variant | median ms | min ms | median ${group}s/s | best ${group}s/s | µs per ${group} | ops/s ÷ plain |`,
      );
      p("|---|---|---|--:|--:|--:|--:|--:|--:|");
      for (const r of results.filter((x) => x.extra?.group === group)) {
        const e = r.extra!;
        const base = find(group, e.storage as string, e.doc as string, "plain");
        p(
          `| ${e.storage} | ${e.doc} | ${e.variant} | ${fmtMs(r.medianMs)} | ${
            fmtMs(r.minMs)
          } | ${fmtOps(r.opsPerSec)} | ${fmtOps(r.bestOpsPerSec)} | ${
            fmtMs(perOp(r))
          } | ${r === base ? "—" : ratio(r, base)} |`,
        );
      }
    }
    p();
    p(`### 10c. What is stored`);
    p();
    p(
      `Each record's stored value, counted below the codec (a memory storage under \`open({ storage })\`; ${
        nf(P)
      } puts each; the tiny document is \`{ device, temp, hum, ts }\`, ${
        docJsonBytes["tiny"]
      } bytes of JSON):`,
    );
    p();
    p(
      "| Document | Variant | mean stored bytes | min-max | ÷ plain | compressed | encrypted |",
    );
    p("|---|---|--:|--:|--:|--:|--:|");
    for (const e of envelopes) {
      const base = envelope(e.doc, "plain");
      p(
        `| ${e.doc} (${docJsonBytes[e.doc]} B JSON) | ${e.variant} | ${
          e.meanBytes.toFixed(1)
        } | ${e.minBytes}-${e.maxBytes} | ${
          (e.meanBytes / base.meanBytes).toFixed(2)
        }x | ${e.compressed} of ${e.records} | ${e.encrypted} of ${e.records} |`,
      );
    }
    p();
    const enc = envelope("small", "encrypted").meanBytes -
      envelope("small", "plain").meanBytes;
    const encL = envelope("large", "encrypted").meanBytes -
      envelope("large", "plain").meanBytes;
    p(
      `Envelope overhead per record: ${
        (envelope("tiny", "compressed").meanBytes -
          envelope("tiny", "plain").meanBytes).toFixed(1)
      } bytes when compression is on and the record is stored uncompressed (version and flags: the tiny document under \`compression: true\`), ${
        enc.toFixed(1)
      } bytes encrypted (small), ${
        encL.toFixed(1)
      } (large): version, flags and key generation (3), IV (16), PKCS#7 padding (1-16) and HMAC-SHA256 tag (32). The plain rows are the engine's record (the document's JSON plus its envelope of version, times and sequence number).`,
    );
    p();
    p(
      `Files holding ${nf(S)} documents, loaded with \`putBatch\` of ${
        nf(SIZE_BATCH)
      } (${
        nf(LOAD_BATCH)
      } on Deno KV), then \`db.compact()\` and \`close()\`; encrypted at the default ${
        nf(DEFAULT_ITERATIONS)
      } iterations:`,
    );
    p();
    p(
      "| Storage | Document | Variant | bytes | bytes per doc | ÷ plain | ÷ JSON | plain text found |",
    );
    p("|---|---|---|--:|--:|--:|--:|---|");
    for (const s of sizes) {
      const base = size(s.storage, s.doc, "plain");
      const json = docJsonBytes[s.doc]! * s.docs;
      p(
        `| ${s.storage} | ${s.doc} | ${s.variant} | ${nf(s.bytes)} | ${
          (s.bytes / s.docs).toFixed(0)
        } | ${(s.bytes / base.bytes).toFixed(2)}x | ${
          (s.bytes / json).toFixed(2)
        }x | ${s.plaintextFound ? "yes" : "no"} |`,
      );
    }
    p();
    p(
      `"÷ JSON" divides by ${
        nf(S)
      } × the median JSON bytes of the document. "plain text found": whether the file (and any \`-wal\`) contains the bytes \`${MARKER}\`, which every document holds (checked: present in the plain files, absent from the encrypted ones).`,
    );
    p();
    p(
      `### 10d. Open time at the default ${
        nf(DEFAULT_ITERATIONS)
      } PBKDF2 iterations`,
    );
    p();
    p("| What | Operation | median ms | min ms |");
    p("|---|---|--:|--:|");
    for (const r of results.filter((x) => x.extra?.group === "open")) {
      p(`| ${r.impl} | \`${r.op}\` | ${fmtMs(r.medianMs)} | ${
        fmtMs(r.minMs)
      } |`);
    }
    p();
    const pb = openRow("—", "PBKDF2 alone");
    const reopenPlain = openRow("file", "reopen, plain");
    const reopenComp = openRow("file", "reopen, compressed");
    const reopenEnc = openRow("file", "reopen, encrypted");
    const perRecord = (r: Result, minus: number) =>
      fmtMs(((r.medianMs - minus) * 1000) / S);
    p(
      `The "new file" rows open (creating the file and its codec header) and close a database in a new directory; the reopen rows time \`open()\` of an existing database of ${
        nf(S)
      } small documents (10c's files; closed untimed). PBKDF2 alone: ${
        fmtMs(pb.medianMs)
      } ms. Reopening the encrypted file: ${
        fmtMs(reopenEnc.medianMs)
      } ms against ${
        fmtMs(reopenPlain.medianMs)
      } ms plain: the file storage's open reads every record (the engine's load pass), and each is opened through the codec, about ${
        perRecord(reopenEnc, reopenPlain.medianMs + pb.medianMs)
      } µs per record encrypted beyond the PBKDF2 and ${
        perRecord(reopenComp, reopenPlain.medianMs)
      } µs compressed (medians). The Deno KV storage reads no record at open, so there only the PBKDF2 shows.`,
    );
    return {
      puts: P,
      gets: P,
      sizeDocs: S,
      docJsonBytes,
      fastIterations: FAST_ITERATIONS,
      results,
      sizes,
      envelopes,
      targets: [],
      markdown: md.join("\n"),
    };
  } finally {
    for (const db of stores) await db.close().catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
