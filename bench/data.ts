/**
 * Deterministic benchmark data: a seeded PRNG and the document generator.
 *
 * @module
 */

/** The generated documents' shape. */
export interface UserDoc {
  /** `"user" + i`. */
  name: string;
  /** 0..79. */
  age: number;
  /** One of {@linkcode CITIES}. */
  city: string;
  /** A float in [0, 1000). */
  score: number;
  /** A coin flip. */
  active: boolean;
  /** Two distinct tags of {@linkcode TAGS}. */
  tags: string[];
  /** A nested object. */
  address: { zip: number };
}

/** The 8 cities. */
export const CITIES = [
  "NY",
  "LA",
  "SF",
  "CHI",
  "SEA",
  "BOS",
  "AUS",
  "MIA",
] as const;

/** The 10 tags. */
export const TAGS = [
  "red",
  "green",
  "blue",
  "cyan",
  "pink",
  "gold",
  "gray",
  "teal",
  "navy",
  "lime",
] as const;

/**
 * mulberry32: a small, fast, seeded PRNG.
 *
 * @param seed 32-bit seed.
 * @returns A function giving floats in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generates `n` documents deterministically.
 *
 * @param n How many.
 * @param seed PRNG seed.
 * @returns The documents (fresh objects; callers copy before handing out).
 */
export function makeDocs(n: number, seed = 42): UserDoc[] {
  const rnd = mulberry32(seed);
  const docs: UserDoc[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t1 = Math.floor(rnd() * TAGS.length);
    let t2 = Math.floor(rnd() * (TAGS.length - 1));
    if (t2 >= t1) t2++;
    docs[i] = {
      name: `user${i}`,
      age: Math.floor(rnd() * 80),
      city: CITIES[Math.floor(rnd() * CITIES.length)]!,
      score: Math.round(rnd() * 1_000_000) / 1000,
      active: rnd() < 0.5,
      tags: [TAGS[t1]!, TAGS[t2]!],
      address: { zip: 10_000 + Math.floor(rnd() * 90_000) },
    };
  }
  return docs;
}

/** The documents of the engine scenario (issue 14): `{ name, age, city }`. */
export interface Person {
  /** `"user" + i`. */
  name: string;
  /** 0..79. */
  age: number;
  /** One of {@linkcode CITIES}. */
  city: string;
}

/**
 * Generates `n` `{ name, age, city }` documents: the same names, ages and
 * cities as {@linkcode makeDocs} with the same seed, without the other fields.
 *
 * @param n How many.
 * @param seed PRNG seed.
 * @returns The documents.
 */
export function makePeople(n: number, seed = 42): Person[] {
  return makeDocs(n, seed).map(({ name, age, city }) => ({ name, age, city }));
}

/**
 * A deterministic permutation of `0..n-1` (Fisher-Yates).
 *
 * @param n Size.
 * @param seed PRNG seed.
 * @returns The shuffled indices.
 */
export function shuffledIndices(n: number, seed = 7): Uint32Array {
  const rnd = mulberry32(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** A small sensor reading (scenarios 9 and 11). */
export interface Sensor {
  /** `"dev-" + (i % devices)`. */
  device: string;
  /** Temperature, one decimal, 15.0 to 35.0. */
  temp: number;
  /** Relative humidity, one decimal, 20.0 to 80.0. */
  hum: number;
  /** Epoch ms, one second apart. */
  ts: number;
}

/**
 * Deterministic sensor readings.
 *
 * @param n How many.
 * @param seed Seed of mulberry32.
 * @param devices How many distinct devices, in turn.
 * @returns The readings.
 */
export function makeSensors(n: number, seed = 9, devices = 100): Sensor[] {
  const rnd = mulberry32(seed);
  const out: Sensor[] = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      device: `dev-${i % devices}`,
      temp: Math.round(150 + rnd() * 200) / 10,
      hum: Math.round(200 + rnd() * 600) / 10,
      ts: 1_700_000_000_000 + i * 1_000,
    };
  }
  return out;
}
