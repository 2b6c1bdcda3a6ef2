import type { Kysely } from "kysely";
import { getDialect, isConnectionError, isKyseraError, parseDatabaseError } from "../core/mod.ts";
import { type DbContext, transaction, type TransactionOptions } from "../dal/mod.ts";
import { isOutsideTransactionError } from "../executor/mod.ts";
import { AfterCommitError, CommitOutcomeUnknownError, RetryInTransactionError } from "./errors.ts";

/** How the backoff delay is randomised; see {@linkcode RetryTransactionOptions.jitter}. */
export type RetryJitter = "full" | "decorrelated" | "none";

/** What {@linkcode RetryTransactionOptions.onRetry} learns before each backoff sleep. */
export interface RetryInfo {
  /** The attempt (1-based) that failed. */
  readonly attempt: number;
  /** What the failed attempt threw, as thrown. */
  readonly error: unknown;
  /** How long the backoff sleep before the next attempt lasts. */
  readonly delayMs: number;
}

/** The context `fn` receives on each attempt of {@linkcode retryTransaction}. */
export interface RetryContext<DB> extends DbContext<DB> {
  /** The attempt (1-based). */
  readonly attempt: number;
  /**
   * Registers a callback that runs once, after this attempt commits (never
   * when it fails). Callbacks run in order, each awaited; if any throws, the
   * others still run and {@linkcode retryTransaction} rejects with an
   * `AfterCommitError` carrying the result.
   */
  afterCommit(callback: () => void | Promise<void>): void;
}

/** Options of {@linkcode retryTransaction}. */
export interface RetryTransactionOptions extends TransactionOptions {
  /**
   * The most attempts, the first included.
   * @default {5}
   */
  maxAttempts?: number;
  /**
   * The delay before the first retry, doubled for each further one (before jitter).
   * @default {50}
   */
  baseDelayMs?: number;
  /**
   * The longest delay between two attempts.
   * @default {2000}
   */
  maxDelayMs?: number;
  /**
   * No retry is started when its backoff would end later than this many
   * milliseconds after the first attempt began.
   * @default {Infinity}
   */
  maxElapsedMs?: number;
  /**
   * `"full"`: a random delay between 0 and the exponential one; `"decorrelated"`:
   * a random delay between `baseDelayMs` and three times the previous one;
   * `"none"`: the exponential delay itself. Capped at `maxDelayMs`.
   * @default {"full"}
   */
  jitter?: RetryJitter;
  /**
   * Cancels the retries: an abort during a backoff sleep rejects at once with
   * the signal's reason and no further attempt starts. A running attempt is
   * not interrupted (it commits or rolls back as usual).
   */
  signal?: AbortSignal;
  /**
   * Decides whether an error (as thrown: a driver error on a plain Kysely
   * instance, a typed one on an executor) is worth another attempt. The
   * default retries transient errors (deadlock, serialization failure, lock
   * timeout, SQLITE_BUSY) and a connection lost before COMMIT, as
   * `parseDatabaseError` classifies them.
   */
  retryOn?: (error: unknown) => boolean;
  /** Called before each backoff sleep. */
  onRetry?: (info: RetryInfo) => void;
  /**
   * Declares that running the work twice is harmless: a connection lost
   * during COMMIT is then retried instead of throwing `CommitOutcomeUnknownError`.
   * @default {false}
   */
  idempotent?: boolean;
}

/**
 * Runs `fn` in a transaction (the DAL's `transaction()`) and runs the WHOLE
 * transaction again when it fails with a transient error: a deadlock, a
 * serialization failure (at a statement or at COMMIT), a lock timeout,
 * SQLITE_BUSY, or a connection lost before COMMIT. Between attempts it
 * sleeps with exponential backoff and jitter; the timer is never unref'd,
 * cancel it through `signal`.
 *
 * A connection lost during COMMIT leaves the outcome unknown: that throws
 * `CommitOutcomeUnknownError` unless `idempotent: true`. Any other error, or
 * the last attempt's, is thrown as it was thrown. `afterCommit` callbacks
 * registered through the context run once, after the attempt that commits.
 *
 * @param db A Kysely instance or an executor (not a transaction).
 * @param fn The work, given a context whose `db` is the transaction; it may run several times.
 * @param options Backoff, limits, the retry test, the isolation level and access mode.
 * @returns What `fn` returned on the attempt that committed.
 * @throws {RetryInTransactionError} When called inside an open transaction.
 * @throws {CommitOutcomeUnknownError} When the connection is lost during COMMIT (and not `idempotent`).
 * @throws {AfterCommitError} When the transaction committed but an `afterCommit` callback threw.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When a number option is out of range.
 *
 * @example A transient failure retried
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { DeadlockError } from "@kysera/kysera/core"; // npm: "kysera/core"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { retryTransaction } from "@kysera/kysera/infra"; // npm: "kysera/infra"
 *
 * const db = new Kysely<{ log: { msg: string } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("log").addColumn("msg", "text").execute();
 * const sent: string[] = [];
 * const attempts = await retryTransaction(db, async (ctx) => {
 *   await ctx.db.insertInto("log").values({ msg: `attempt ${ctx.attempt}` }).execute();
 *   if (ctx.attempt === 1) throw new DeadlockError("deadlock detected", { dialect: "sqlite" });
 *   ctx.afterCommit(() => void sent.push("mail"));
 *   return ctx.attempt;
 * }, { baseDelayMs: 1 });
 * assert.equal(attempts, 2);
 * assert.deepEqual(sent, ["mail"]);
 * const log = await db.selectFrom("log").select("msg").execute();
 * assert.deepEqual(log.map((l) => l.msg), ["attempt 2"]); // the first attempt was rolled back
 * await db.destroy();
 * ```
 */
export async function retryTransaction<DB, R>(
  db: Kysely<DB>,
  fn: (ctx: RetryContext<DB>) => Promise<R>,
  options: RetryTransactionOptions = {},
): Promise<R> {
  const settings = readOptions(options);
  if (typeof fn !== "function") {
    throw new TypeError(`Cannot retry the transaction: 'fn' must be a function: current value is ${typeof fn}`);
  }
  if (isTransactionLike(db)) throw new RetryInTransactionError();
  const dialect = getDialect(db);
  const { signal } = options;
  const txOptions: TransactionOptions = {};
  if (options.isolationLevel !== undefined) txOptions.isolationLevel = options.isolationLevel;
  if (options.accessMode !== undefined) txOptions.accessMode = options.accessMode;
  const started = Date.now();
  let previousDelay = settings.baseDelayMs;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    const callbacks: (() => void | Promise<void>)[] = [];
    let entered = false;
    let committing = false;
    let open = true;
    let result: R;
    try {
      result = await transaction(db, async (trx) => {
        entered = true;
        const ctx: RetryContext<DB> = {
          db: trx.db,
          isTransaction: true,
          attempt,
          afterCommit(callback) {
            if (typeof callback !== "function") {
              throw new TypeError(
                `Cannot register an afterCommit callback: it must be a function: current value is ${typeof callback}`,
              );
            }
            if (!open) {
              throw new TypeError(
                `Cannot register an afterCommit callback: attempt ${attempt} has already ended`,
              );
            }
            callbacks.push(callback);
          },
        };
        const value = await fn(ctx);
        committing = true;
        return value;
      }, txOptions);
    } catch (error) {
      open = false;
      if (!entered && attempt === 1 && isOutsideTransactionError(error)) {
        throw new RetryInTransactionError({ cause: error });
      }
      const classified = parseDatabaseError(error, dialect);
      const lostAtCommit = committing && isConnectionError(classified);
      if (lostAtCommit && !settings.idempotent) throw new CommitOutcomeUnknownError(attempt, { cause: error });
      const retry = options.retryOn !== undefined ? options.retryOn(error) : lostAtCommit || isRetryable(classified);
      if (!retry || attempt >= settings.maxAttempts) throw error;
      const delayMs = nextDelay(settings, attempt, previousDelay);
      previousDelay = Math.max(delayMs, settings.baseDelayMs);
      if (Date.now() + delayMs - started > settings.maxElapsedMs) throw error;
      signal?.throwIfAborted();
      options.onRetry?.({ attempt, error, delayMs });
      await sleep(delayMs, signal);
      continue;
    }
    open = false;
    const failures: unknown[] = [];
    for (const callback of callbacks) {
      try {
        await callback();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AfterCommitError(result, failures);
    return result;
  }
}

interface Settings {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxElapsedMs: number;
  jitter: RetryJitter;
  idempotent: boolean;
}

function readOptions(options: RetryTransactionOptions): Settings {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot retry the transaction: 'options' must be an object: current value is ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  const maxAttempts = options.maxAttempts ?? 5;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(
      `Cannot retry the transaction: 'maxAttempts' must be a positive integer: current value is ${maxAttempts}`,
    );
  }
  const baseDelayMs = delayOption("baseDelayMs", options.baseDelayMs, 50);
  const maxDelayMs = delayOption("maxDelayMs", options.maxDelayMs, 2000);
  const maxElapsedMs = options.maxElapsedMs ?? Infinity;
  if (typeof maxElapsedMs !== "number" || Number.isNaN(maxElapsedMs) || maxElapsedMs < 0) {
    throw new RangeError(
      `Cannot retry the transaction: 'maxElapsedMs' must be a non-negative number: current value is ${maxElapsedMs}`,
    );
  }
  const jitter = options.jitter ?? "full";
  if (jitter !== "full" && jitter !== "decorrelated" && jitter !== "none") {
    throw new TypeError(
      `Cannot retry the transaction: 'jitter' must be "full", "decorrelated" or "none": current value is ${
        String(jitter)
      }`,
    );
  }
  for (const name of ["retryOn", "onRetry"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(
        `Cannot retry the transaction: '${name}' must be a function: current value is ${typeof options[name]}`,
      );
    }
  }
  return { maxAttempts, baseDelayMs, maxDelayMs, maxElapsedMs, jitter, idempotent: options.idempotent === true };
}

function delayOption(name: string, value: number | undefined, fallback: number): number {
  const delay = value ?? fallback;
  if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
    throw new RangeError(
      `Cannot retry the transaction: '${name}' must be a non-negative finite number: current value is ${delay}`,
    );
  }
  return delay;
}

function nextDelay(settings: Settings, attempt: number, previous: number): number {
  const { baseDelayMs: base, maxDelayMs: max } = settings;
  switch (settings.jitter) {
    case "none":
      return Math.min(max, base * 2 ** (attempt - 1));
    case "full":
      return Math.floor(Math.random() * Math.min(max, base * 2 ** (attempt - 1)));
    case "decorrelated":
      return Math.min(max, Math.floor(base + Math.random() * (previous * 3 - base)));
  }
}

function isRetryable(error: unknown): boolean {
  if (!isKyseraError(error)) return false;
  if (isConnectionError(error)) return true; // lost before COMMIT: nothing was committed
  return (error as { transient?: unknown }).transient === true;
}

function isTransactionLike(db: unknown): boolean {
  if (typeof db !== "object" || db === null) return false;
  if ((db as { isTransaction?: unknown }).isTransaction === true) return true;
  const inner = (db as { db?: { isTransaction?: unknown } }).db;
  return typeof inner === "object" && inner !== null && inner.isTransaction === true;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    // Never unref'd: a runtime would exit before the retry ran.
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
