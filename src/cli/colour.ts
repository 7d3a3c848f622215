/**
 * Colour on a terminal only, and never when `NO_COLOR` is set
 * (https://no-color.org: any non-empty value).
 *
 * @module
 */

/**
 * Whether to write colour codes to a stream.
 *
 * @param isTerminal Whether the stream is a terminal.
 * @param env Reads an environment variable.
 * @returns True on a terminal without `NO_COLOR`.
 */
export function useColour(
  isTerminal: boolean,
  env: (name: string) => string | undefined,
): boolean {
  const noColor = env("NO_COLOR");
  return isTerminal && (noColor === undefined || noColor === "");
}

/** Paints text, or leaves it as is when colour is off. */
export interface Paint {
  /** Errors. */
  red(text: string): string;
  /** Success. */
  green(text: string): string;
  /** Warnings and notes. */
  yellow(text: string): string;
  /** Less important text. */
  dim(text: string): string;
  /** Headings. */
  bold(text: string): string;
}

const wrap = (on: boolean, open: number, close: number) => (text: string) =>
  on ? `\x1b[${open}m${text}\x1b[${close}m` : text;

/**
 * The painter for a stream.
 *
 * @param on Whether colour is on (see {@linkcode useColour}).
 * @returns It.
 */
export function paint(on: boolean): Paint {
  return {
    red: wrap(on, 31, 39),
    green: wrap(on, 32, 39),
    yellow: wrap(on, 33, 39),
    dim: wrap(on, 2, 22),
    bold: wrap(on, 1, 22),
  };
}
