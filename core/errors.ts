import type { DialectName } from "./dialect.ts";

/**
 * Where an error's class chain is recorded. `Symbol.for` makes the key the
 * same in every copy of Kysera loaded in one process (a JSR copy and an npm
 * copy, say), so guards and `instanceof` work across copies.
 */
const KINDS: unique symbol = Symbol.for("kysera.error.kinds") as never;

type ErrorClass = { readonly kind?: string };

function kindsOf(target: unknown): string[] {
  const kinds: string[] = [];
  for (let ctor = target; typeof ctor === "function"; ctor = Object.getPrototypeOf(ctor)) {
    const kind = Object.hasOwn(ctor, "kind") ? (ctor as ErrorClass).kind : undefined;
    if (kind !== undefined) kinds.push(kind);
  }
  return kinds;
}

function hasKind(value: unknown, kind: string): boolean {
  if (typeof value !== "object" || value === null) return false;
  const kinds = (value as { [KINDS]?: unknown })[KINDS];
  return Array.isArray(kinds) && kinds.includes(kind);
}

/** Options common to every {@linkcode KyseraError}. */
export interface KyseraErrorOptions {
  /** The error that caused this one (a driver error, say). */
  cause?: unknown;
}

/**
 * The codes of Kysera's own errors, one per error class. `KyseraError.code`
 * is typed by it, so a `switch` over codes is checked (a misspelt code fails
 * to compile). A third-party subclass names its own code as the type
 * argument: `class TenantError extends KyseraError<"TENANT_MISMATCH">`.
 *
 * @example Exhaustive handling of a code
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KyseraErrorCode } from "@kysera/kysera/core";
 *
 * function status(code: KyseraErrorCode): number {
 *   return code === "NOT_FOUND" ? 404 : code === "UNIQUE_VIOLATION" ? 409 : 500;
 * }
 * assert.equal(status("NOT_FOUND"), 404);
 * ```
 */
export type KyseraErrorCode =
  | DatabaseErrorCode
  | "NOT_FOUND"
  | "INVALID_CURSOR"
  | "PLUGIN_ERROR"
  | "PLUGIN_VALIDATION"
  | "PLUGIN_LIFECYCLE"
  | "PLUGIN_SCHEMA"
  | "RAW_SQL_REFUSED"
  | "OUTSIDE_TRANSACTION"
  | "TRANSACTION_REQUIRED"
  | "VALIDATION_FAILED"
  | "INVALID_WHERE"
  | "UNFILTERED_WRITE"
  | "RLS_POLICY_VIOLATION"
  | "RLS_CONTEXT_MISSING"
  | "RLS_NATIVE_UNSAFE"
  | "UNAUDITABLE_WRITE"
  | "AUDIT_RESTORE"
  | "RETRY_IN_TRANSACTION"
  | "COMMIT_OUTCOME_UNKNOWN"
  | "AFTER_COMMIT_FAILED";

/** The codes of {@linkcode DatabaseError} and its subclasses. */
export type DatabaseErrorCode =
  | "DATABASE_ERROR"
  | "UNIQUE_VIOLATION"
  | "FOREIGN_KEY_VIOLATION"
  | "NOT_NULL_VIOLATION"
  | "CHECK_VIOLATION"
  | "SERIALIZATION_FAILURE"
  | "DEADLOCK"
  | "LOCK_TIMEOUT"
  | "QUERY_TIMEOUT"
  | "CONNECTION_ERROR";

/**
 * The base class of every error Kysera throws on purpose. It sets `name`,
 * a stable machine-readable `code` and `cause`.
 *
 * `instanceof` and the `isXError()` guards recognise an error from another
 * copy of Kysera in the same process (the class chain is recorded under a
 * global symbol), so prefer them over comparing constructors.
 *
 * @example Catching any Kysera error
 * ```ts
 * import assert from "node:assert/strict";
 * import { isKyseraError, NotFoundError } from "@kysera/kysera/core";
 *
 * try {
 *   throw new NotFoundError("users", { id: 42 });
 * } catch (error) {
 *   assert.ok(isKyseraError(error));
 *   assert.equal(error.code, "NOT_FOUND");
 * }
 * ```
 */
export class KyseraError<Code extends string = KyseraErrorCode> extends Error {
  /** The name of this class in the recorded class chain. */
  static readonly kind: string = "KyseraError";
  /** A stable machine-readable code, e.g. `"UNIQUE_VIOLATION"`; see {@linkcode KyseraErrorCode}. */
  readonly code: Code;

  /**
   * Creates a {@linkcode KyseraError}.
   *
   * @param message What went wrong, in sentence case without a trailing period.
   * @param code A stable machine-readable code.
   * @param options The cause, if any.
   */
  constructor(message: string, code: Code, options: KyseraErrorOptions = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    const kinds = kindsOf(new.target);
    Object.defineProperty(this, KINDS, { value: Object.freeze(kinds) });
    const ownKind = Object.hasOwn(new.target, "kind") ? (new.target as ErrorClass).kind : undefined;
    this.name = ownKind ?? new.target.name;
    this.code = code;
  }

  /**
   * Recognises instances of this class from any loaded copy of Kysera.
   * Subclasses that declare no `kind` of their own fall back to the ordinary
   * prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (!Object.hasOwn(this, "kind")) {
      return Function.prototype[Symbol.hasInstance].call(this, value);
    }
    return hasKind(value, (this as ErrorClass).kind as string);
  }
}

/** Structured facts a database error may carry, when the driver tells them. */
export interface DatabaseErrorDetails extends KyseraErrorOptions {
  /** The dialect whose driver raised the error. */
  dialect: DialectName;
  /** The driver's code: SQLSTATE (PostgreSQL), errno (MySQL/MariaDB), extended result code (SQLite) or a Node.js system code. */
  driverCode?: string;
  /** The violated constraint or index name. */
  constraint?: string;
  /** The table involved. */
  table?: string;
  /** The columns involved. */
  columns?: readonly string[];
}

/**
 * An error raised by the database or its driver. Thrown as is for errors
 * that no subclass describes; see {@linkcode parseDatabaseError}.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseError } from "@kysera/kysera/core";
 *
 * const error = new DatabaseError("syntax error at or near \"selec\"", { dialect: "postgres", driverCode: "42601" });
 * assert.equal(error.code, "DATABASE_ERROR");
 * assert.equal(error.driverCode, "42601");
 * ```
 */
export class DatabaseError<Code extends DatabaseErrorCode = DatabaseErrorCode> extends KyseraError<Code> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "DatabaseError";
  /** The dialect whose driver raised the error. */
  readonly dialect: DialectName;
  /** The driver's own code, as a string. */
  readonly driverCode: string | undefined;
  /** The violated constraint or index name, when the driver tells. */
  readonly constraint: string | undefined;
  /** The table involved, when the driver tells. */
  readonly table: string | undefined;
  /** The columns involved, when the driver tells. */
  readonly columns: readonly string[] | undefined;
  /**
   * Whether running the whole transaction again may succeed (serialization
   * failures, deadlocks, lock timeouts).
   */
  readonly transient: boolean;

  /**
   * Creates a {@linkcode DatabaseError}.
   *
   * @param message The driver's message.
   * @param details The dialect, the driver code and what the driver tells.
   * @param code The Kysera code.
   */
  constructor(message: string, details: DatabaseErrorDetails, code: Code = "DATABASE_ERROR" as Code) {
    super(message, code, details);
    this.dialect = details.dialect;
    this.driverCode = details.driverCode;
    this.constraint = details.constraint;
    this.table = details.table;
    this.columns = details.columns === undefined ? undefined : Object.freeze([...details.columns]);
    this.transient = false;
  }
}

/**
 * A row would duplicate a unique or primary key.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUniqueConstraintError, UniqueConstraintError } from "@kysera/kysera/core";
 *
 * const error = new UniqueConstraintError("duplicate email", { dialect: "sqlite", table: "users", columns: ["email"] });
 * assert.ok(isUniqueConstraintError(error));
 * assert.deepEqual(error.columns, ["email"]);
 * ```
 */
export class UniqueConstraintError extends DatabaseError<"UNIQUE_VIOLATION"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "UniqueConstraintError";
  /**
   * Creates a {@linkcode UniqueConstraintError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "UNIQUE_VIOLATION");
  }
}

/**
 * A write would break a foreign key: the referenced row is missing, or a
 * referenced row would be deleted or changed.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { ForeignKeyError } from "@kysera/kysera/core";
 *
 * assert.equal(new ForeignKeyError("no such user", { dialect: "postgres" }).code, "FOREIGN_KEY_VIOLATION");
 * ```
 */
export class ForeignKeyError extends DatabaseError<"FOREIGN_KEY_VIOLATION"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "ForeignKeyError";
  /**
   * Creates a {@linkcode ForeignKeyError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "FOREIGN_KEY_VIOLATION");
  }
}

/**
 * A NOT NULL column would get no value or NULL.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotNullError } from "@kysera/kysera/core";
 *
 * assert.equal(new NotNullError("email is null", { dialect: "mysql", columns: ["email"] }).code, "NOT_NULL_VIOLATION");
 * ```
 */
export class NotNullError extends DatabaseError<"NOT_NULL_VIOLATION"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "NotNullError";
  /**
   * Creates a {@linkcode NotNullError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "NOT_NULL_VIOLATION");
  }
}

/**
 * A CHECK constraint rejected a row.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { CheckConstraintError } from "@kysera/kysera/core";
 *
 * assert.equal(new CheckConstraintError("age > 0", { dialect: "sqlite" }).code, "CHECK_VIOLATION");
 * ```
 */
export class CheckConstraintError extends DatabaseError<"CHECK_VIOLATION"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "CheckConstraintError";
  /**
   * Creates a {@linkcode CheckConstraintError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "CHECK_VIOLATION");
  }
}

/**
 * A transient error: running the whole transaction again may succeed. The
 * common base of {@linkcode SerializationError}, {@linkcode DeadlockError}
 * and {@linkcode LockTimeoutError}; test `error.transient` to decide on a
 * retry.
 *
 * @example Transient errors are retryable
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeadlockError, TransientDatabaseError } from "@kysera/kysera/core";
 *
 * const error = new DeadlockError("deadlock detected", { dialect: "postgres" });
 * assert.ok(error instanceof TransientDatabaseError);
 * assert.equal(error.transient, true);
 * ```
 */
export abstract class TransientDatabaseError<
  Code extends "SERIALIZATION_FAILURE" | "DEADLOCK" | "LOCK_TIMEOUT" =
    | "SERIALIZATION_FAILURE"
    | "DEADLOCK"
    | "LOCK_TIMEOUT",
> extends DatabaseError<Code> {
  /** Always `true`: running the whole transaction again may succeed. */
  override readonly transient: boolean = true;
}

/**
 * The transaction could not be serialized with concurrent ones (PostgreSQL
 * `40001`, MariaDB `1020` under `innodb_snapshot_isolation`, SQLite
 * `SQLITE_BUSY_SNAPSHOT`). Retry the whole transaction.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { SerializationError } from "@kysera/kysera/core";
 *
 * assert.ok(new SerializationError("could not serialize", { dialect: "postgres" }).transient);
 * ```
 */
export class SerializationError extends TransientDatabaseError<"SERIALIZATION_FAILURE"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "SerializationError";
  /**
   * Creates a {@linkcode SerializationError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "SERIALIZATION_FAILURE");
  }
}

/**
 * The database chose this transaction as a deadlock victim (PostgreSQL
 * `40P01`, MySQL/MariaDB `1213`). Retry the whole transaction.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeadlockError } from "@kysera/kysera/core";
 *
 * assert.equal(new DeadlockError("deadlock detected", { dialect: "mysql" }).code, "DEADLOCK");
 * ```
 */
export class DeadlockError extends TransientDatabaseError<"DEADLOCK"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "DeadlockError";
  /**
   * Creates a {@linkcode DeadlockError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "DEADLOCK");
  }
}

/**
 * A lock could not be taken in time (PostgreSQL `55P03`, MySQL/MariaDB
 * `1205`/`3572`, SQLite `SQLITE_BUSY`/`SQLITE_LOCKED`).
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { LockTimeoutError } from "@kysera/kysera/core";
 *
 * assert.equal(new LockTimeoutError("database is locked", { dialect: "sqlite" }).code, "LOCK_TIMEOUT");
 * ```
 */
export class LockTimeoutError extends TransientDatabaseError<"LOCK_TIMEOUT"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "LockTimeoutError";
  /**
   * Creates a {@linkcode LockTimeoutError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "LOCK_TIMEOUT");
  }
}

/**
 * A statement ran past its time limit or was cancelled (PostgreSQL `57014`,
 * MariaDB `1969` for `max_statement_time`, MySQL `3024`). Not transient by
 * default: the same statement will likely time out again.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { QueryTimeoutError } from "@kysera/kysera/core";
 *
 * assert.equal(new QueryTimeoutError("statement timeout", { dialect: "postgres" }).code, "QUERY_TIMEOUT");
 * ```
 */
export class QueryTimeoutError extends DatabaseError<"QUERY_TIMEOUT"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "QueryTimeoutError";
  /**
   * Creates a {@linkcode QueryTimeoutError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "QUERY_TIMEOUT");
  }
}

/**
 * The connection could not be opened, or was lost (refused, reset, killed by
 * the server, too many connections, unknown database, SQLite cannot open the
 * file).
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConnectionError } from "@kysera/kysera/core";
 *
 * assert.equal(new ConnectionError("connect ECONNREFUSED", { dialect: "postgres", driverCode: "ECONNREFUSED" }).code, "CONNECTION_ERROR");
 * ```
 */
export class ConnectionError extends DatabaseError<"CONNECTION_ERROR"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "ConnectionError";
  /**
   * Creates a {@linkcode ConnectionError}.
   *
   * @param message The driver's message.
   * @param details The dialect and what the driver tells.
   */
  constructor(message: string, details: DatabaseErrorDetails) {
    super(message, details, "CONNECTION_ERROR");
  }
}

/**
 * A row that had to exist was not found.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotFoundError } from "@kysera/kysera/core";
 *
 * const error = new NotFoundError("users", { id: 7 });
 * assert.equal(error.message, "Cannot find users row with id 7");
 * assert.deepEqual(error.key, { id: 7 });
 * ```
 */
export class NotFoundError extends KyseraError<"NOT_FOUND"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "NotFoundError";
  /** The table that was searched. */
  readonly table: string;
  /** The key that was looked up, if any. */
  readonly key: Readonly<Record<string, unknown>> | undefined;

  /**
   * Creates a {@linkcode NotFoundError}.
   *
   * @param table The table that was searched.
   * @param key The key that was looked up.
   * @param options The cause, if any.
   */
  constructor(table: string, key?: Record<string, unknown>, options: KyseraErrorOptions = {}) {
    super(
      key === undefined || Object.keys(key).length === 0
        ? `Cannot find a ${table} row`
        : `Cannot find ${table} row with ${
          Object.entries(key).map(([column, value]) =>
            `${column} ${typeof value === "bigint" ? String(value) : safeJson(value)}`
          ).join(", ")
        }`,
      "NOT_FOUND",
      options,
    );
    this.table = table;
    this.key = key === undefined ? undefined : Object.freeze({ ...key });
  }
}

/**
 * The reasons an {@linkcode InvalidCursorError} gives.
 *
 * - `"malformed"`: not a token Kysera wrote (bad base64url, bad JSON, wrong shape)
 * - `"too-large"`: longer than the size cap (checked before decoding)
 * - `"version"`: an unknown token version
 * - `"signature"`: a missing or wrong HMAC signature, or a signed token where none is expected
 * - `"context"`: a token of another query or another order
 * - `"value"`: a value of the wrong type for its order column
 */
export type InvalidCursorReason = "malformed" | "too-large" | "version" | "signature" | "context" | "value";

/**
 * A pagination cursor was rejected: it is malformed, too large, forged or
 * tampered with, or belongs to another query or order. Clients send cursors,
 * so map this error to a 400 response; its message never repeats the token.
 *
 * @example Rejecting a forged cursor
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidCursorError, isInvalidCursorError } from "@kysera/kysera/core";
 *
 * const error = new InvalidCursorError("malformed", "Cannot decode the cursor: it is not base64url");
 * assert.ok(isInvalidCursorError(error));
 * assert.equal(error.code, "INVALID_CURSOR");
 * assert.equal(error.reason, "malformed");
 * ```
 */
export class InvalidCursorError extends KyseraError<"INVALID_CURSOR"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "InvalidCursorError";
  /** Why the cursor was rejected. */
  readonly reason: InvalidCursorReason;

  /**
   * Creates an {@linkcode InvalidCursorError}.
   *
   * @param reason Why the cursor was rejected.
   * @param message What went wrong, without the token itself.
   * @param options The cause, if any.
   */
  constructor(reason: InvalidCursorReason, message: string, options: KyseraErrorOptions = {}) {
    super(message, "INVALID_CURSOR", options);
    this.reason = reason;
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? v.toString() : v);
  } catch {
    return String(value);
  }
}

/**
 * Tells whether a value is a {@linkcode KyseraError} from any copy of Kysera.
 *
 * @param value Anything caught.
 * @returns `true` for a Kysera error.
 *
 * @example Recognising a KyseraError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isKyseraError } from "@kysera/kysera/core";
 *
 * assert.equal(isKyseraError(new Error("x")), false);
 * ```
 */
export function isKyseraError(value: unknown): value is KyseraError {
  return hasKind(value, KyseraError.kind);
}

/**
 * Tells whether a value is a {@linkcode DatabaseError} (or a subclass).
 *
 * @param value Anything caught.
 * @returns `true` for a database error.
 *
 * @example Recognising a DatabaseError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDatabaseError, DeadlockError } from "@kysera/kysera/core";
 *
 * assert.ok(isDatabaseError(new DeadlockError("x", { dialect: "mysql" })));
 * ```
 */
export function isDatabaseError(value: unknown): value is DatabaseError {
  return hasKind(value, DatabaseError.kind);
}

/**
 * Tells whether a value is a {@linkcode UniqueConstraintError}.
 *
 * @param value Anything caught.
 * @returns `true` for a unique violation.
 *
 * @example Recognising an UniqueConstraintError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUniqueConstraintError } from "@kysera/kysera/core";
 *
 * assert.equal(isUniqueConstraintError({ code: "UNIQUE_VIOLATION" }), false); // not a Kysera error
 * ```
 */
export function isUniqueConstraintError(value: unknown): value is UniqueConstraintError {
  return hasKind(value, UniqueConstraintError.kind);
}

/**
 * Tells whether a value is a {@linkcode ForeignKeyError}.
 *
 * @param value Anything caught.
 * @returns `true` for a foreign key violation.
 *
 * @example Recognising a ForeignKeyError
 * ```ts
 * import assert from "node:assert/strict";
 * import { ForeignKeyError, isForeignKeyError } from "@kysera/kysera/core";
 *
 * assert.ok(isForeignKeyError(new ForeignKeyError("x", { dialect: "sqlite" })));
 * ```
 */
export function isForeignKeyError(value: unknown): value is ForeignKeyError {
  return hasKind(value, ForeignKeyError.kind);
}

/**
 * Tells whether a value is a {@linkcode NotNullError}.
 *
 * @param value Anything caught.
 * @returns `true` for a NOT NULL violation.
 *
 * @example Recognising a NotNullError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotNullError, NotNullError } from "@kysera/kysera/core";
 *
 * assert.ok(isNotNullError(new NotNullError("x", { dialect: "sqlite" })));
 * ```
 */
export function isNotNullError(value: unknown): value is NotNullError {
  return hasKind(value, NotNullError.kind);
}

/**
 * Tells whether a value is a {@linkcode CheckConstraintError}.
 *
 * @param value Anything caught.
 * @returns `true` for a CHECK violation.
 *
 * @example Recognising a CheckConstraintError
 * ```ts
 * import assert from "node:assert/strict";
 * import { CheckConstraintError, isCheckConstraintError } from "@kysera/kysera/core";
 *
 * assert.ok(isCheckConstraintError(new CheckConstraintError("x", { dialect: "sqlite" })));
 * ```
 */
export function isCheckConstraintError(value: unknown): value is CheckConstraintError {
  return hasKind(value, CheckConstraintError.kind);
}

/**
 * Tells whether a value is a {@linkcode SerializationError}.
 *
 * @param value Anything caught.
 * @returns `true` for a serialization failure.
 *
 * @example Recognising a SerializationError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isSerializationError, SerializationError } from "@kysera/kysera/core";
 *
 * assert.ok(isSerializationError(new SerializationError("x", { dialect: "postgres" })));
 * ```
 */
export function isSerializationError(value: unknown): value is SerializationError {
  return hasKind(value, SerializationError.kind);
}

/**
 * Tells whether a value is a {@linkcode DeadlockError}.
 *
 * @param value Anything caught.
 * @returns `true` for a deadlock.
 *
 * @example Recognising a DeadlockError
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeadlockError, isDeadlockError } from "@kysera/kysera/core";
 *
 * assert.ok(isDeadlockError(new DeadlockError("x", { dialect: "postgres" })));
 * ```
 */
export function isDeadlockError(value: unknown): value is DeadlockError {
  return hasKind(value, DeadlockError.kind);
}

/**
 * Tells whether a value is a {@linkcode LockTimeoutError}.
 *
 * @param value Anything caught.
 * @returns `true` for a lock timeout.
 *
 * @example Recognising a LockTimeoutError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLockTimeoutError, LockTimeoutError } from "@kysera/kysera/core";
 *
 * assert.ok(isLockTimeoutError(new LockTimeoutError("x", { dialect: "sqlite" })));
 * ```
 */
export function isLockTimeoutError(value: unknown): value is LockTimeoutError {
  return hasKind(value, LockTimeoutError.kind);
}

/**
 * Tells whether a value is a {@linkcode QueryTimeoutError}.
 *
 * @param value Anything caught.
 * @returns `true` for a statement timeout or cancellation.
 *
 * @example Recognising a QueryTimeoutError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isQueryTimeoutError, QueryTimeoutError } from "@kysera/kysera/core";
 *
 * assert.ok(isQueryTimeoutError(new QueryTimeoutError("x", { dialect: "postgres" })));
 * ```
 */
export function isQueryTimeoutError(value: unknown): value is QueryTimeoutError {
  return hasKind(value, QueryTimeoutError.kind);
}

/**
 * Tells whether a value is a {@linkcode ConnectionError}.
 *
 * @param value Anything caught.
 * @returns `true` for a connection failure.
 *
 * @example Recognising a ConnectionError
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConnectionError, isConnectionError } from "@kysera/kysera/core";
 *
 * assert.ok(isConnectionError(new ConnectionError("x", { dialect: "mysql" })));
 * ```
 */
export function isConnectionError(value: unknown): value is ConnectionError {
  return hasKind(value, ConnectionError.kind);
}

/**
 * Tells whether a value is a {@linkcode NotFoundError}.
 *
 * @param value Anything caught.
 * @returns `true` for a missing row.
 *
 * @example Recognising a NotFoundError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotFoundError, NotFoundError } from "@kysera/kysera/core";
 *
 * assert.ok(isNotFoundError(new NotFoundError("users")));
 * ```
 */
export function isNotFoundError(value: unknown): value is NotFoundError {
  return hasKind(value, NotFoundError.kind);
}

/**
 * Tells whether a value is an {@linkcode InvalidCursorError}.
 *
 * @param value Anything caught.
 * @returns `true` for a rejected cursor.
 *
 * @example Recognising an InvalidCursorError
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidCursorError, isInvalidCursorError } from "@kysera/kysera/core";
 *
 * assert.ok(isInvalidCursorError(new InvalidCursorError("malformed", "x")));
 * ```
 */
export function isInvalidCursorError(value: unknown): value is InvalidCursorError {
  return hasKind(value, InvalidCursorError.kind);
}
