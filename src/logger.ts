/**
 * The database's logger: what it tells about torn tails, repairs, slow
 * fsyncs, quota pressure and key rotation. Silent unless `open({ logger })`
 * is given one.
 *
 * @module
 */

/** How much a log message matters, from least to most. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Where the database sends its log messages. `console` is one; so is a
 * `@std/log` logger wrapped in an object with these four methods. A method
 * left out drops the messages of its level. Each call receives a message
 * that states what happened, then an object with the event's name
 * (`event`, such as `"torn-tail"`) and its figures. A logger that throws
 * is ignored: logging never fails an operation.
 */
export interface Logger {
  /** Details: compaction steps, key-rotation progress. */
  debug?(message: string, data: Readonly<Record<string, unknown>>): void;
  /** Normal but noteworthy events. */
  info?(message: string, data: Readonly<Record<string, unknown>>): void;
  /** Something was wrong and handled: a torn tail cut, a slow fsync. */
  warn?(message: string, data: Readonly<Record<string, unknown>>): void;
  /** Something failed. */
  error?(message: string, data: Readonly<Record<string, unknown>>): void;
}

const RANK: Readonly<Record<LogLevel, number>> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
};

/**
 * The engine's side of a {@linkcode Logger}: filters by level, names the
 * event, and never throws.
 */
export class Log {
  readonly #logger: Logger | undefined;
  readonly #min: number;

  /**
   * @param logger Where messages go; `undefined` for none.
   * @param level The least level passed on. Default `"info"`.
   */
  constructor(logger?: Logger, level: LogLevel = "info") {
    this.#logger = logger;
    this.#min = RANK[level];
  }

  /** Whether messages of this level reach a logger. */
  enabled(level: LogLevel): boolean {
    return this.#logger !== undefined && RANK[level] >= this.#min &&
      typeof this.#logger[level] === "function";
  }

  /**
   * Sends one message.
   *
   * @param level Its level.
   * @param event A short stable name, such as `"torn-tail"`.
   * @param message What happened, as a sentence.
   * @param data The event's figures.
   */
  write(
    level: LogLevel,
    event: string,
    message: string,
    data: Readonly<Record<string, unknown>> = {},
  ): void {
    if (!this.enabled(level)) return;
    try {
      this.#logger![level]!.call(this.#logger, message, { event, ...data });
    } catch {
      // A failing logger must not fail the operation that logs.
    }
  }

  /** {@linkcode Log.write} at `"debug"`. */
  debug(event: string, message: string, data?: Record<string, unknown>): void {
    this.write("debug", event, message, data);
  }

  /** {@linkcode Log.write} at `"info"`. */
  info(event: string, message: string, data?: Record<string, unknown>): void {
    this.write("info", event, message, data);
  }

  /** {@linkcode Log.write} at `"warn"`. */
  warn(event: string, message: string, data?: Record<string, unknown>): void {
    this.write("warn", event, message, data);
  }

  /** {@linkcode Log.write} at `"error"`. */
  error(event: string, message: string, data?: Record<string, unknown>): void {
    this.write("error", event, message, data);
  }
}

/** A log that drops everything. */
export const SILENT: Log = new Log();

/**
 * Checks `open()`'s `logger` and `logLevel` options.
 *
 * @throws {TypeError} When the logger is not an object of functions or the
 *   level is not one of the four.
 */
export function resolveLog(logger: unknown, level: unknown): Log {
  const action = "Cannot open the database";
  if (level !== undefined && !(typeof level === "string" && level in RANK)) {
    throw new TypeError(
      `${action}: logLevel must be "debug", "info", "warn" or "error", got ${
        typeof level === "string" ? JSON.stringify(level) : typeof level
      }`,
    );
  }
  if (logger === undefined) return SILENT;
  if (typeof logger !== "object" || logger === null) {
    throw new TypeError(
      `${action}: logger must be an object with debug/info/warn/error methods (console is one)`,
    );
  }
  for (const name of Object.keys(RANK)) {
    const method = (logger as Record<string, unknown>)[name];
    if (method !== undefined && typeof method !== "function") {
      throw new TypeError(
        `${action}: logger.${name} must be a function, got ${typeof method}`,
      );
    }
  }
  return new Log(logger as Logger, (level ?? "info") as LogLevel);
}
