/** The levels of a {@linkcode KyseraLogger}, from the most verbose. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

/**
 * The logger Kysera writes to. Any object with these five methods will do
 * (`console` itself, pino, winston, std `@std/log` loggers).
 *
 * @example The console is a logger
 * ```ts
 * import type { KyseraLogger } from "@kysera/kysera/core";
 *
 * const logger: KyseraLogger = console;
 * logger.info("ready");
 * ```
 */
export interface KyseraLogger {
  /** Very detailed tracing, off in production. */
  trace(message: string, ...args: unknown[]): void;
  /** Debugging detail. */
  debug(message: string, ...args: unknown[]): void;
  /** Normal operation worth recording. */
  info(message: string, ...args: unknown[]): void;
  /** Something unexpected that was handled. */
  warn(message: string, ...args: unknown[]): void;
  /** A failure. */
  error(message: string, ...args: unknown[]): void;
}

const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];

/** Options of {@linkcode createConsoleLogger}. */
export interface ConsoleLoggerOptions {
  /**
   * The least severe level that is written.
   * @default {"info"}
   */
  level?: LogLevel;
  /**
   * Where to write: anything with the five level methods.
   * @default {globalThis.console}
   */
  console?: KyseraLogger;
}

/**
 * Creates a logger that writes to the console, dropping messages below
 * `level`.
 *
 * @param options The least severe level to write, and the console.
 * @returns The logger.
 * @throws {RangeError} When `level` is not a log level.
 *
 * @example Logging warnings and errors to the console
 * ```ts
 * import { createConsoleLogger } from "@kysera/kysera/core";
 *
 * const logger = createConsoleLogger({ level: "warn" });
 * logger.info("not written");
 * logger.warn("written");
 * ```
 */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}): KyseraLogger {
  const level = options.level ?? "info";
  const threshold = LEVELS.indexOf(level);
  if (threshold < 0) {
    throw new RangeError(
      `Cannot create the logger: 'level' must be one of ${LEVELS.join(", ")}: current value is ${String(level)}`,
    );
  }
  // Typed structurally: the npm build compiles without DOM or Node types.
  const out = options.console ?? (globalThis as unknown as { console: KyseraLogger }).console;
  const method = (at: LogLevel) =>
    LEVELS.indexOf(at) >= threshold ? (message: string, ...args: unknown[]) => out[at](message, ...args) : noop;
  return Object.freeze({
    trace: method("trace"),
    debug: method("debug"),
    info: method("info"),
    warn: method("warn"),
    error: method("error"),
  });
}

function noop(): void {}

/**
 * A logger that writes nothing.
 *
 * @example Turning logging off
 * ```ts
 * import { silentLogger } from "@kysera/kysera/core";
 *
 * silentLogger.error("never shown");
 * ```
 */
export const silentLogger: KyseraLogger = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
});

/**
 * Wraps a logger so every message starts with `[prefix] `.
 *
 * @param logger The logger to write to.
 * @param prefix The prefix, e.g. a plugin name.
 * @returns The prefixed logger.
 *
 * @example Prefixing a plugin's messages
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPrefixedLogger } from "@kysera/kysera/core";
 *
 * const lines: string[] = [];
 * const sink = { trace() {}, debug() {}, info: (message: string) => void lines.push(message), warn() {}, error() {} };
 * createPrefixedLogger(sink, "audit").info("ready");
 * assert.deepEqual(lines, ["[audit] ready"]);
 * ```
 */
export function createPrefixedLogger(logger: KyseraLogger, prefix: string): KyseraLogger {
  const tag = `[${prefix}] `;
  return Object.freeze({
    trace: (message: string, ...args: unknown[]) => logger.trace(tag + message, ...args),
    debug: (message: string, ...args: unknown[]) => logger.debug(tag + message, ...args),
    info: (message: string, ...args: unknown[]) => logger.info(tag + message, ...args),
    warn: (message: string, ...args: unknown[]) => logger.warn(tag + message, ...args),
    error: (message: string, ...args: unknown[]) => logger.error(tag + message, ...args),
  });
}
