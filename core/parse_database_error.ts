import type { DialectName } from "./dialect.ts";
import {
  CheckConstraintError,
  ConnectionError,
  DatabaseError,
  type DatabaseErrorDetails,
  DeadlockError,
  ForeignKeyError,
  isKyseraError,
  type KyseraError,
  LockTimeoutError,
  NotNullError,
  QueryTimeoutError,
  SerializationError,
  UniqueConstraintError,
} from "./errors.ts";

type DatabaseErrorClass = new (message: string, details: DatabaseErrorDetails) => DatabaseError;

/** A driver error, read loosely: every field is optional. */
interface DriverError {
  message?: unknown;
  code?: unknown;
  errno?: unknown;
  errcode?: unknown;
  sqlState?: unknown;
  constraint?: unknown;
  table?: unknown;
  column?: unknown;
  detail?: unknown;
  errors?: unknown;
}

/** Node.js system error codes of a refused, reset or unreachable connection. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOENT", // a Unix socket path that does not exist
]);

/**
 * Translates an error thrown by a database driver into a typed Kysera error.
 *
 * The classification reads the driver's codes only: SQLSTATE for PostgreSQL
 * (`pg`), errno for MySQL and MariaDB (`mysql2`), extended result codes
 * (`node:sqlite`, `bun:sqlite`) or code names (`better-sqlite3`) for SQLite,
 * and Node.js system codes for connection failures. Constraint, table and
 * column names are filled in when the driver tells them. The driver error is
 * kept as `cause`. An error that is already a Kysera error is returned as is
 * (so translating twice is harmless); any other error becomes a plain
 * {@linkcode DatabaseError}. Narrow the result with the `isXError()` guards.
 *
 * | error | PostgreSQL | MySQL / MariaDB | SQLite |
 * | --- | --- | --- | --- |
 * | {@linkcode UniqueConstraintError} | 23505 | 1062, 1586 | 2067, 1555 |
 * | {@linkcode ForeignKeyError} | 23503 | 1451, 1452, 1216, 1217 | 787 |
 * | {@linkcode NotNullError} | 23502 | 1048, 1364 | 1299 |
 * | {@linkcode CheckConstraintError} | 23514 | 3819, 4025 (MariaDB) | 275 |
 * | {@linkcode SerializationError} | 40001 | 1020 (MariaDB snapshot isolation) | 517 |
 * | {@linkcode DeadlockError} | 40P01 | 1213 | n/a (SQLite reports busy) |
 * | {@linkcode LockTimeoutError} | 55P03 | 1205, 3572 | 5, 6 and their extended codes |
 * | {@linkcode QueryTimeoutError} | 57014 | 1969, 3024 | n/a |
 * | {@linkcode ConnectionError} | class 08 (but 08P01), 57P01-57P03, 53300, class 28, 3D000, "Connection terminated", pg-pool's "timeout exceeded when trying to connect" | 1040, 1044, 1045, 1049, 1053, 1927, 2002, 2003, 2006, 2013, `PROTOCOL_CONNECTION_LOST`, "Can't add new command when connection is in closed state" | 14 (cannot open) |
 *
 * plus, on every dialect, the Node.js network codes (`ECONNREFUSED`,
 * `ECONNRESET`, `ETIMEDOUT`, ...). Messages are parsed to classify only
 * for the few errors the drivers raise themselves with no code (quoted in
 * the table); otherwise they are parsed only to fill in names the driver
 * puts nowhere else.
 *
 * @param error Anything a driver threw.
 * @param dialect The dialect of the database that raised it; see {@linkcode getDialect}.
 * @returns The typed error, with the driver error as `cause`.
 *
 * @example Turning a SQLite unique violation into a typed error
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { getDialect, isUniqueConstraintError, parseDatabaseError } from "@kysera/kysera/core";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<{ users: { email: string } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("email", "text", (c) => c.unique()).execute();
 * await db.insertInto("users").values({ email: "ada@example.com" }).execute();
 * const error = await db.insertInto("users").values({ email: "ada@example.com" }).execute()
 *   .then(() => undefined, (raw) => parseDatabaseError(raw, getDialect(db)));
 * assert.ok(isUniqueConstraintError(error));
 * assert.equal(error.table, "users");
 * assert.deepEqual(error.columns, ["email"]);
 * await db.destroy();
 * ```
 */
export function parseDatabaseError(error: unknown, dialect: DialectName): KyseraError {
  if (isKyseraError(error)) return error;
  if (typeof error !== "object" || error === null) {
    return new DatabaseError(String(error), { dialect, cause: error });
  }
  const driverError = error as DriverError;
  const message = typeof driverError.message === "string" ? driverError.message : String(error);
  const network = networkCode(driverError);
  if (network !== undefined) {
    return new ConnectionError(message, { dialect, driverCode: network, cause: error });
  }
  switch (dialect) {
    case "postgres":
      return fromPostgres(driverError, message, error);
    case "mysql":
      return fromMysql(driverError, message, error);
    case "sqlite":
      return fromSqlite(driverError, message, error);
    case "mssql":
      return new DatabaseError(message, {
        dialect,
        ...optional("driverCode", stringOf(driverError.code)),
        cause: error,
      });
  }
}

function networkCode(error: DriverError): string | undefined {
  const code = stringOf(error.code);
  if (code !== undefined && NETWORK_CODES.has(code)) return code;
  // Node.js reports a failure to reach every address of a host as an
  // AggregateError whose `errors` carry the codes.
  if (Array.isArray(error.errors)) {
    for (const inner of error.errors) {
      if (typeof inner === "object" && inner !== null) {
        const innerCode = stringOf((inner as DriverError).code);
        if (innerCode !== undefined && NETWORK_CODES.has(innerCode)) return innerCode;
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- PostgreSQL

const POSTGRES_CLASSES: Record<string, DatabaseErrorClass> = {
  "23505": UniqueConstraintError,
  "23503": ForeignKeyError,
  "23502": NotNullError,
  "23514": CheckConstraintError,
  "40001": SerializationError,
  "40P01": DeadlockError,
  "55P03": LockTimeoutError,
  "57014": QueryTimeoutError,
  "57P01": ConnectionError,
  "57P02": ConnectionError,
  "57P03": ConnectionError,
  "53300": ConnectionError,
  "3D000": ConnectionError,
};

function fromPostgres(error: DriverError, message: string, cause: unknown): DatabaseError {
  const sqlState = stringOf(error.code);
  let ErrorClass = sqlState === undefined ? undefined : POSTGRES_CLASSES[sqlState];
  // 08P01 (protocol violation) is the server refusing what the client sent,
  // e.g. a statement with more than 65,535 parameters (pg sends the count in
  // 16 bits): the same request fails again, so it is no ConnectionError.
  if (ErrorClass === undefined && sqlState !== undefined && sqlState !== "08P01" && /^(08|28)/.test(sqlState)) {
    ErrorClass = ConnectionError;
  }
  // pg raises these itself, without a SQLSTATE, when the socket closes;
  // pg-pool raises the last one when no connection frees up within its
  // `connectionTimeoutMillis` (an exhausted pool or an unreachable server).
  if (
    ErrorClass === undefined && sqlState === undefined &&
    /^Connection terminated|^Client has encountered a connection error|^timeout exceeded when trying to connect/
      .test(message)
  ) {
    ErrorClass = ConnectionError;
  }
  const column = stringOf(error.column);
  const details: DatabaseErrorDetails = {
    dialect: "postgres",
    ...optional("driverCode", sqlState),
    ...optional("constraint", stringOf(error.constraint)),
    ...optional("table", stringOf(error.table)),
    ...optional("columns", column !== undefined ? [column] : keyColumns(stringOf(error.detail))),
    cause,
  };
  return new (ErrorClass ?? DatabaseError)(message, details);
}

/** Reads `Key (a, b)=(1, 2) already exists.` from a PostgreSQL error detail. */
function keyColumns(detail: string | undefined): string[] | undefined {
  const match = detail === undefined ? null : /^Key \((.+?)\)=\(/.exec(detail);
  return match?.[1] === undefined ? undefined : match[1].split(", ").map(unquote);
}

// ------------------------------------------------------------- MySQL/MariaDB

const MYSQL_CLASSES: Record<number, DatabaseErrorClass> = {
  1062: UniqueConstraintError, // ER_DUP_ENTRY
  1586: UniqueConstraintError, // ER_DUP_ENTRY_WITH_KEY_NAME
  1451: ForeignKeyError, // ER_ROW_IS_REFERENCED_2
  1452: ForeignKeyError, // ER_NO_REFERENCED_ROW_2
  1216: ForeignKeyError, // ER_NO_REFERENCED_ROW
  1217: ForeignKeyError, // ER_ROW_IS_REFERENCED
  1048: NotNullError, // ER_BAD_NULL_ERROR
  1364: NotNullError, // ER_NO_DEFAULT_FOR_FIELD (strict mode)
  3819: CheckConstraintError, // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
  1020: SerializationError, // ER_CHECKREAD (MariaDB innodb_snapshot_isolation)
  1213: DeadlockError, // ER_LOCK_DEADLOCK
  1205: LockTimeoutError, // ER_LOCK_WAIT_TIMEOUT (also NOWAIT on MariaDB)
  3572: LockTimeoutError, // ER_LOCK_NOWAIT (MySQL)
  1969: QueryTimeoutError, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
  3024: QueryTimeoutError, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
  1040: ConnectionError, // ER_CON_COUNT_ERROR
  1044: ConnectionError, // ER_DBACCESS_DENIED_ERROR
  1045: ConnectionError, // ER_ACCESS_DENIED_ERROR
  1049: ConnectionError, // ER_BAD_DB_ERROR
  1053: ConnectionError, // ER_SERVER_SHUTDOWN
  1927: ConnectionError, // ER_CONNECTION_KILLED (MariaDB)
  2002: ConnectionError, // CR_CONNECTION_ERROR
  2003: ConnectionError, // CR_CONN_HOST_ERROR
  2006: ConnectionError, // CR_SERVER_GONE_ERROR
  2013: ConnectionError, // CR_SERVER_LOST
};

/** mysql2's own codes for a connection it lost or could not use. */
const MYSQL_CONNECTION_CODES: ReadonlySet<string> = new Set([
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR",
  "PROTOCOL_ENQUEUE_AFTER_QUIT",
]);

function fromMysql(error: DriverError, message: string, cause: unknown): DatabaseError {
  const errno = typeof error.errno === "number" ? error.errno : undefined;
  const code = stringOf(error.code);
  let ErrorClass = errno === undefined ? undefined : MYSQL_CLASSES[errno];
  // 4025 is MariaDB's ER_CONSTRAINT_FAILED (SQLSTATE 23000); MySQL uses the
  // same number for an unrelated InnoDB error (SQLSTATE HY000).
  if (errno === 4025 && error.sqlState === "23000") ErrorClass = CheckConstraintError;
  if (ErrorClass === undefined && code !== undefined && MYSQL_CONNECTION_CODES.has(code)) {
    ErrorClass = ConnectionError;
  }
  // mysql2 raises this itself, with no code, for a statement sent on a
  // connection that has already closed (killed by the server, lost, ended).
  if (
    ErrorClass === undefined && errno === undefined && code === undefined &&
    /^Can't add new command when connection is in closed state/.test(message)
  ) {
    ErrorClass = ConnectionError;
  }
  const names = ErrorClass === undefined ? {} : mysqlNames(errno, message);
  return new (ErrorClass ?? DatabaseError)(message, {
    dialect: "mysql",
    ...optional("driverCode", errno !== undefined ? String(errno) : code),
    ...names,
    cause,
  });
}

function mysqlNames(
  errno: number | undefined,
  message: string,
): Pick<DatabaseErrorDetails, "constraint" | "table" | "columns"> {
  let match: RegExpExecArray | null;
  switch (errno) {
    case 1062: {
      // MariaDB: for key 'email'; MySQL 8: for key 'users.email'
      match = /for key '(?:(.+)\.)?([^.']+)'$/.exec(message);
      return {
        ...optional("table", match?.[1]),
        ...optional("constraint", match?.[2]),
      };
    }
    case 1451:
    case 1452:
      // (`db`.`table`, CONSTRAINT `fk` FOREIGN KEY (`col`, ...) REFERENCES ...
      match = /\(`[^`]*`\.`([^`]*)`, CONSTRAINT `([^`]*)` FOREIGN KEY \(([^)]*)\)/.exec(message);
      return match === null ? {} : {
        ...optional("table", match[1]),
        ...optional("constraint", match[2]),
        ...optional("columns", match[3]?.split(",").map((c) => unquote(c.trim()))),
      };
    case 1048:
    case 1364:
      match = /^(?:Column|Field) '([^']+)'/.exec(message);
      return optional("columns", match?.[1] === undefined ? undefined : [match[1]]);
    case 4025:
      // CONSTRAINT `age_positive` failed for `db`.`table`
      match = /^CONSTRAINT `([^`]+)` failed for `[^`]*`\.`([^`]*)`/.exec(message);
      return { ...optional("constraint", match?.[1]), ...optional("table", match?.[2]) };
    case 3819:
      match = /^Check constraint '([^']+)'/.exec(message);
      return optional("constraint", match?.[1]);
    default:
      return {};
  }
}

// ------------------------------------------------------------------- SQLite

/** SQLite extended result codes (https://sqlite.org/rescode.html). */
const SQLITE_CLASSES: Record<number, DatabaseErrorClass> = {
  2067: UniqueConstraintError, // SQLITE_CONSTRAINT_UNIQUE
  1555: UniqueConstraintError, // SQLITE_CONSTRAINT_PRIMARYKEY
  787: ForeignKeyError, // SQLITE_CONSTRAINT_FOREIGNKEY
  1299: NotNullError, // SQLITE_CONSTRAINT_NOTNULL
  275: CheckConstraintError, // SQLITE_CONSTRAINT_CHECK
  517: SerializationError, // SQLITE_BUSY_SNAPSHOT
};

/** The same codes by the names better-sqlite3 and bun:sqlite give them. */
const SQLITE_NAMES: Record<string, number> = {
  SQLITE_CONSTRAINT_UNIQUE: 2067,
  SQLITE_CONSTRAINT_PRIMARYKEY: 1555,
  SQLITE_CONSTRAINT_FOREIGNKEY: 787,
  SQLITE_CONSTRAINT_NOTNULL: 1299,
  SQLITE_CONSTRAINT_CHECK: 275,
  SQLITE_BUSY: 5,
  SQLITE_BUSY_RECOVERY: 261,
  SQLITE_BUSY_SNAPSHOT: 517,
  SQLITE_BUSY_TIMEOUT: 773,
  SQLITE_LOCKED: 6,
  SQLITE_LOCKED_SHAREDCACHE: 262,
  SQLITE_LOCKED_VTAB: 518,
  SQLITE_CANTOPEN: 14,
  SQLITE_CANTOPEN_ISDIR: 526,
  SQLITE_CANTOPEN_FULLPATH: 782,
  SQLITE_CANTOPEN_CONVPATH: 1038,
};

function sqliteResultCode(error: DriverError): number | undefined {
  // node:sqlite: errcode; bun:sqlite: errno; better-sqlite3: code name only.
  if (typeof error.errcode === "number") return error.errcode;
  const code = stringOf(error.code);
  if (code !== undefined && code in SQLITE_NAMES) return SQLITE_NAMES[code];
  if (typeof error.errno === "number" && code?.startsWith("SQLITE_")) return error.errno;
  return undefined;
}

function fromSqlite(error: DriverError, message: string, cause: unknown): DatabaseError {
  const resultCode = sqliteResultCode(error);
  let ErrorClass = resultCode === undefined ? undefined : SQLITE_CLASSES[resultCode];
  if (ErrorClass === undefined && resultCode !== undefined) {
    const primary = resultCode & 0xff;
    if (primary === 5 || primary === 6) ErrorClass = LockTimeoutError; // BUSY, LOCKED
    if (primary === 14) ErrorClass = ConnectionError; // CANTOPEN
  }
  const details: DatabaseErrorDetails = {
    dialect: "sqlite",
    ...optional("driverCode", resultCode !== undefined ? String(resultCode) : stringOf(error.code)),
    cause,
  };
  // "UNIQUE constraint failed: users.a, users.b", "NOT NULL constraint failed: users.email"
  const columns = /^(?:UNIQUE|NOT NULL) constraint failed: (.+)$/.exec(message)?.[1];
  if (columns !== undefined && ErrorClass !== undefined) {
    const qualified = columns.split(", ").map((c) => c.trim());
    const table = qualified[0]?.includes(".") ? qualified[0].slice(0, qualified[0].lastIndexOf(".")) : undefined;
    Object.assign(details, {
      ...optional("table", table),
      columns: qualified.map((c) => c.slice(c.lastIndexOf(".") + 1)),
    });
  }
  // "CHECK constraint failed: age_positive" (a name, or the expression when unnamed)
  const check = /^CHECK constraint failed: (.+)$/.exec(message)?.[1];
  if (check !== undefined) details.constraint = check;
  return new (ErrorClass ?? DatabaseError)(message, details);
}

// ------------------------------------------------------------------ helpers

function stringOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  return undefined;
}

function unquote(identifier: string): string {
  return identifier.replace(/^["`]|["`]$/g, "");
}

/** `{ [key]: value }` when the value is defined, `{}` otherwise (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : { [key]: value } as { [P in K]?: V };
}
