import { KyseraError } from "../../core/mod.ts";

/**
 * A write to an audited table that the audit plugin cannot record exactly,
 * refused before any SQL is sent (or, when only the write's result shows it,
 * rolled back with the write), so no write to an audited table goes
 * unaudited:
 *
 * - `REPLACE` (MySQL, MariaDB, SQLite), which silently deletes every row that
 *   conflicts on any unique key before inserting;
 * - `MERGE` (PostgreSQL 15 has no `RETURNING` for it, so the rows it inserts
 *   cannot be known);
 * - on MariaDB/MySQL, an `UPDATE` that sets a primary key column to an SQL
 *   expression (no `UPDATE ... RETURNING` to find the moved rows);
 * - a write whose target is raw SQL (`sql.table("posts").as("p")`), and a
 *   multi-table `UPDATE` or `DELETE` (MariaDB/MySQL) that lists an audited
 *   table anywhere;
 * - an upsert that may update from a `SELECT`, with a key column set by SQL,
 *   or conflicting on an index expression (its rows cannot be read before);
 * - a write to a table without its key columns (`"id"` unless the
 *   `primaryKey` option names them), whose history could not be told apart
 *   (an INSERT is rolled back when its rows show it).
 *
 * Use `INSERT ... ON CONFLICT` / `ON DUPLICATE KEY UPDATE`, plain `INSERT`,
 * `UPDATE` and `DELETE`, or a literal key value, instead.
 *
 * @example Telling a refused write
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUnauditableWriteError, UnauditableWriteError } from "@kysera/kysera/audit";
 *
 * const error = new UnauditableWriteError("merge", "posts", "use INSERT and UPDATE");
 * assert.ok(isUnauditableWriteError(error));
 * assert.equal(error.code, "UNAUDITABLE_WRITE");
 * assert.equal(error.message, "Cannot audit a merge of 'posts': use INSERT and UPDATE");
 * ```
 */
export class UnauditableWriteError extends KyseraError {
  /** The class name recorded in the error's kind chain. */
  static override readonly kind: string = "UnauditableWriteError";
  /** The refused statement: `"replace"`, `"merge"`, `"insert"`, `"update"` or `"delete"`. */
  readonly operation: string;
  /** The audited table. */
  readonly table: string;
  /** Why, and what to use instead. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param operation The refused statement.
   * @param table The audited table.
   * @param reason Why, and what to use instead.
   */
  constructor(operation: string, table: string, reason: string) {
    super(
      `Cannot audit ${/^[aeiou]/.test(operation) ? "an" : "a"} ${operation} of '${table}': ${reason}`,
      "UNAUDITABLE_WRITE",
    );
    this.operation = operation;
    this.table = table;
    this.reason = reason;
  }
}

/**
 * Tells whether a value is an {@linkcode UnauditableWriteError} (from any
 * loaded copy of Kysera).
 *
 * @param value Anything caught.
 * @returns `true` for a write the audit plugin refused.
 *
 * @example Recognising an UnauditableWriteError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUnauditableWriteError } from "@kysera/kysera/audit";
 *
 * assert.equal(isUnauditableWriteError(new Error("x")), false);
 * ```
 */
export function isUnauditableWriteError(value: unknown): value is UnauditableWriteError {
  return value instanceof UnauditableWriteError;
}

/**
 * An audit entry that cannot be restored: an update or delete recorded
 * without the row before it (`captureOldValues: false`), or an entry that
 * holds no values at all. Thrown before anything is written, so the live
 * row is left as it is.
 *
 * @example Telling a refused restore
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuditRestoreError, isAuditRestoreError } from "@kysera/kysera/audit";
 *
 * const error = new AuditRestoreError(7, "it records the update without the row before it");
 * assert.ok(isAuditRestoreError(error));
 * assert.equal(error.code, "AUDIT_RESTORE");
 * assert.equal(error.auditId, 7);
 * assert.equal(error.message, "Cannot restore from audit entry 7: it records the update without the row before it");
 * ```
 */
export class AuditRestoreError extends KyseraError {
  /** The class name recorded in the error's kind chain. */
  static override readonly kind: string = "AuditRestoreError";
  /** The audit entry's id. */
  readonly auditId: number | string;
  /** Why it cannot be restored. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param auditId The audit entry's id.
   * @param reason Why it cannot be restored.
   */
  constructor(auditId: number | string, reason: string) {
    super(`Cannot restore from audit entry ${auditId}: ${reason}`, "AUDIT_RESTORE");
    this.auditId = auditId;
    this.reason = reason;
  }
}

/**
 * Tells whether a value is an {@linkcode AuditRestoreError} (from any
 * loaded copy of Kysera).
 *
 * @param value Anything caught.
 * @returns `true` for a restore the audit reader refused.
 *
 * @example Recognising an AuditRestoreError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isAuditRestoreError } from "@kysera/kysera/audit";
 *
 * assert.equal(isAuditRestoreError(new Error("x")), false);
 * ```
 */
export function isAuditRestoreError(value: unknown): value is AuditRestoreError {
  return value instanceof AuditRestoreError;
}
