import { KyseraError } from "../core/mod.ts";

/**
 * `retryTransaction()` was called inside an open transaction (a transaction,
 * a context of one, or a transaction callback of the same executor). A
 * savepoint cannot be retried: only the outermost transaction can. No SQL
 * was sent.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRetryInTransactionError, RetryInTransactionError } from "@kysera/kysera/infra";
 *
 * const error = new RetryInTransactionError();
 * assert.ok(isRetryInTransactionError(error));
 * assert.equal(error.code, "RETRY_IN_TRANSACTION");
 * ```
 */
export class RetryInTransactionError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "RetryInTransactionError";

  /**
   * Creates a {@linkcode RetryInTransactionError}.
   *
   * @param options The cause, if any (the executor's `OutsideTransactionError`).
   */
  constructor(options: { cause?: unknown } = {}) {
    super(
      "Cannot retry a transaction inside an open transaction: a savepoint cannot be retried, call retryTransaction() on the outermost database",
      "RETRY_IN_TRANSACTION",
      options,
    );
  }
}

/**
 * The connection was lost while COMMIT was in flight: the transaction may or
 * may not have committed. `retryTransaction()` does not run it again unless
 * told the work is idempotent (`idempotent: true`). The driver's error is
 * the `cause`.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { CommitOutcomeUnknownError, isCommitOutcomeUnknownError } from "@kysera/kysera/infra";
 *
 * const error = new CommitOutcomeUnknownError(2, { cause: new Error("Connection terminated") });
 * assert.ok(isCommitOutcomeUnknownError(error));
 * assert.equal(error.attempt, 2);
 * ```
 */
export class CommitOutcomeUnknownError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "CommitOutcomeUnknownError";
  /** The attempt (1-based) whose COMMIT lost its connection. */
  readonly attempt: number;

  /**
   * Creates a {@linkcode CommitOutcomeUnknownError}.
   *
   * @param attempt The attempt (1-based) whose COMMIT lost its connection.
   * @param options The driver's error as `cause`.
   */
  constructor(attempt: number, options: { cause?: unknown } = {}) {
    super(
      `Cannot tell whether the transaction committed: the connection was lost during COMMIT on attempt ${attempt}`,
      "COMMIT_OUTCOME_UNKNOWN",
      options,
    );
    this.attempt = attempt;
  }
}

/**
 * The transaction committed, but one or more `afterCommit` callbacks threw.
 * Every callback ran; `result` is what the transaction returned and `errors`
 * what the callbacks threw, in order.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { AfterCommitError, isAfterCommitError } from "@kysera/kysera/infra";
 *
 * const error = new AfterCommitError(42, [new Error("mail down")]);
 * assert.ok(isAfterCommitError(error));
 * assert.equal(error.result, 42);
 * ```
 */
export class AfterCommitError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "AfterCommitError";
  /** What the committed transaction returned. */
  readonly result: unknown;
  /** What the failing callbacks threw, in the order they ran. */
  readonly errors: readonly unknown[];

  /**
   * Creates an {@linkcode AfterCommitError}.
   *
   * @param result What the committed transaction returned.
   * @param errors What the failing callbacks threw (the first is the `cause`).
   */
  constructor(result: unknown, errors: readonly unknown[]) {
    super(
      `The transaction committed but ${errors.length} afterCommit callback(s) failed`,
      "AFTER_COMMIT_FAILED",
      { cause: errors[0] },
    );
    this.result = result;
    this.errors = Object.freeze([...errors]);
  }
}

/**
 * Tells whether a value is a {@linkcode RetryInTransactionError} from any copy of Kysera.
 *
 * @param value Anything caught.
 * @returns `true` for a refused nested retry.
 *
 * @example Recognising a RetryInTransactionError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRetryInTransactionError } from "@kysera/kysera/infra";
 *
 * assert.equal(isRetryInTransactionError(new Error("x")), false);
 * ```
 */
export function isRetryInTransactionError(value: unknown): value is RetryInTransactionError {
  return value instanceof RetryInTransactionError;
}

/**
 * Tells whether a value is a {@linkcode CommitOutcomeUnknownError} from any copy of Kysera.
 *
 * @param value Anything caught.
 * @returns `true` for a COMMIT whose outcome is unknown.
 *
 * @example Recognising a CommitOutcomeUnknownError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isCommitOutcomeUnknownError } from "@kysera/kysera/infra";
 *
 * assert.equal(isCommitOutcomeUnknownError(new Error("x")), false);
 * ```
 */
export function isCommitOutcomeUnknownError(value: unknown): value is CommitOutcomeUnknownError {
  return value instanceof CommitOutcomeUnknownError;
}

/**
 * Tells whether a value is an {@linkcode AfterCommitError} from any copy of Kysera.
 *
 * @param value Anything caught.
 * @returns `true` for failed afterCommit callbacks.
 *
 * @example Recognising an AfterCommitError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isAfterCommitError } from "@kysera/kysera/infra";
 *
 * assert.equal(isAfterCommitError(new Error("x")), false);
 * ```
 */
export function isAfterCommitError(value: unknown): value is AfterCommitError {
  return value instanceof AfterCommitError;
}
