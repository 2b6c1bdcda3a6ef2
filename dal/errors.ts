import { KyseraError } from "../core/mod.ts";

/**
 * A transactional query was called outside a transaction. No SQL was sent.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTransactionRequiredError, TransactionRequiredError } from "@kysera/kysera/dal";
 *
 * assert.ok(isTransactionRequiredError(new TransactionRequiredError("transfer")));
 * ```
 */
export class TransactionRequiredError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "TransactionRequiredError";
  /** The name of the query that was refused. */
  readonly query: string;

  /**
   * Creates a {@linkcode TransactionRequiredError}.
   *
   * @param query The name of the query function.
   */
  constructor(query: string) {
    super(
      `Cannot run '${query}' outside a transaction: call it inside transaction() or with a transaction`,
      "TRANSACTION_REQUIRED",
    );
    this.query = query;
  }
}

/**
 * Tells whether a value is a {@linkcode TransactionRequiredError} from any copy of Kysera.
 *
 * @param value Anything caught.
 * @returns `true` for a refused transactional query.
 *
 * @example Recognising a TransactionRequiredError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTransactionRequiredError } from "@kysera/kysera/dal";
 *
 * assert.equal(isTransactionRequiredError(new Error("x")), false);
 * ```
 */
export function isTransactionRequiredError(value: unknown): value is TransactionRequiredError {
  // KyseraError's instanceof recognises instances from any loaded copy.
  return value instanceof TransactionRequiredError;
}
