import { KyseraError, type KyseraErrorOptions } from "../core/mod.ts";
import type { StandardIssue } from "./standard_schema.ts";

/** What a {@linkcode ValidationError} was validating. */
export type ValidationTarget = "create" | "update" | "output";

/** Details of a {@linkcode ValidationError}. */
export interface ValidationErrorDetails extends KyseraErrorOptions {
  /** The table of the repository. */
  readonly table: string;
  /** What was validated: input of a create or update, or a row read back. */
  readonly target: ValidationTarget;
}

/**
 * A value failed its repository schema (Standard Schema). Nothing was
 * written: input is validated before any SQL is sent, and a write whose
 * stored row fails the output schema (`target: "output"`) is rolled back
 * (it runs in a transaction, or a savepoint inside the caller's).
 *
 * @example Listing the issues
 * ```ts
 * import assert from "node:assert/strict";
 * import { isValidationError, ValidationError } from "@kysera/kysera/repository";
 *
 * const error = new ValidationError([{ message: "Invalid email", path: ["email"] }], { table: "users", target: "create" });
 * assert.ok(isValidationError(error));
 * assert.equal(error.message, "Cannot create a row in 'users': validation failed: email: Invalid email");
 * ```
 */
export class ValidationError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "ValidationError";
  /** Every issue the schema reported. */
  readonly issues: readonly StandardIssue[];
  /** The table of the repository. */
  readonly table: string;
  /** What was validated. */
  readonly target: ValidationTarget;

  /**
   * Creates a {@linkcode ValidationError}.
   *
   * @param issues The schema's issues.
   * @param details The table and what was validated.
   */
  constructor(issues: readonly StandardIssue[], details: ValidationErrorDetails) {
    const verb = details.target === "output" ? "read" : details.target;
    super(
      `Cannot ${verb} a row in '${details.table}': validation failed: ${issues.map(describeIssue).join("; ")}`,
      "VALIDATION_FAILED",
      details,
    );
    this.issues = Object.freeze([...issues]);
    this.table = details.table;
    this.target = details.target;
  }
}

function describeIssue(issue: StandardIssue): string {
  const path = (issue.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".");
  return path === "" ? issue.message : `${path}: ${issue.message}`;
}

/**
 * Tells whether a value is a {@linkcode ValidationError} (from any loaded
 * copy of Kysera).
 *
 * @param value Anything.
 * @returns Whether it is a validation error.
 *
 * @example Recognising a ValidationError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isValidationError } from "@kysera/kysera/repository";
 *
 * assert.equal(isValidationError(new Error("x")), false);
 * ```
 */
export function isValidationError(value: unknown): value is ValidationError {
  return value instanceof ValidationError;
}

/**
 * A where-DSL object names a column the repository does not know, or an
 * operator that does not exist. Thrown before any SQL is built, whatever
 * the environment.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidWhereError } from "@kysera/kysera/repository";
 *
 * assert.equal(new InvalidWhereError("users", "unknown operator '$regex'").code, "INVALID_WHERE");
 * ```
 */
export class InvalidWhereError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "InvalidWhereError";
  /** The table of the repository. */
  readonly table: string;

  /**
   * Creates an {@linkcode InvalidWhereError}.
   *
   * @param table The table of the repository.
   * @param reason What is wrong, e.g. `unknown column 'emial'`.
   */
  constructor(table: string, reason: string) {
    super(`Cannot filter '${table}': ${reason}`, "INVALID_WHERE");
    this.table = table;
  }
}

/**
 * Tells whether a value is an {@linkcode InvalidWhereError} (from any loaded
 * copy of Kysera).
 *
 * @param value Anything.
 * @returns Whether it is an invalid-where error.
 *
 * @example Recognising an InvalidWhereError
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidWhereError, isInvalidWhereError } from "@kysera/kysera/repository";
 *
 * assert.ok(isInvalidWhereError(new InvalidWhereError("users", "unknown column 'x'")));
 * ```
 */
export function isInvalidWhereError(value: unknown): value is InvalidWhereError {
  return value instanceof InvalidWhereError;
}

/**
 * A bulk write (`updateMany`, `deleteMany`) got a where clause that sets no
 * condition: `undefined`, `{}`, or one whose every value is `undefined` (what
 * a partial schema hands over for absent fields). Such a call would write
 * every row, so it is refused before any SQL is sent; say so explicitly with
 * `updateAll(changes)` or `deleteAll()`.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUnfilteredWriteError, UnfilteredWriteError } from "@kysera/kysera/repository";
 *
 * const error = new UnfilteredWriteError("users", "delete");
 * assert.ok(isUnfilteredWriteError(error));
 * assert.equal(
 *   error.message,
 *   "Cannot delete rows in 'users': the where clause sets no condition (call deleteAll() to delete every row)",
 * );
 * ```
 */
export class UnfilteredWriteError extends KyseraError {
  /** The kind that `isUnfilteredWriteError` recognises across copies of Kysera. */
  static override readonly kind: string = "UnfilteredWriteError";
  /** The table of the repository. */
  readonly table: string;
  /** The refused write. */
  readonly operation: "update" | "delete";

  /**
   * Creates the error.
   *
   * @param table The table of the repository.
   * @param operation The refused write.
   */
  constructor(table: string, operation: "update" | "delete") {
    super(
      `Cannot ${operation} rows in '${table}': the where clause sets no condition (call ${operation}All() to ${operation} every row)`,
      "UNFILTERED_WRITE",
    );
    this.table = table;
    this.operation = operation;
  }
}

/**
 * Tells whether a value is an {@linkcode UnfilteredWriteError} (from any
 * loaded copy of Kysera).
 *
 * @param value Anything.
 * @returns Whether it is an unfiltered-write error.
 *
 * @example Recognising an UnfilteredWriteError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUnfilteredWriteError } from "@kysera/kysera/repository";
 *
 * assert.equal(isUnfilteredWriteError(new Error("x")), false);
 * ```
 */
export function isUnfilteredWriteError(value: unknown): value is UnfilteredWriteError {
  return value instanceof UnfilteredWriteError;
}
