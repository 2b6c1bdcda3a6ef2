import { isKyseraError, KyseraError, type KyseraErrorOptions } from "../core/mod.ts";

/** The plugin hooks the executor calls; named in {@linkcode PluginError}. */
export type PluginHook =
  | "verifySchema"
  | "onInit"
  | "onDestroy"
  | "interceptQuery"
  | "scopeRows"
  | "onWrite"
  | "aroundWrite"
  | "aroundQuery"
  | "onTransaction"
  | "transformQuery"
  | "transformResult";

/** Where a failing hook was working, as far as the executor knows. */
export interface PluginErrorDetails extends KyseraErrorOptions {
  /** The plugin's name. */
  plugin: string;
  /** The hook that threw. */
  hook: PluginHook;
  /** The statement's operation (`select`, `insert`, ...), for query hooks. */
  operation?: string;
  /** The statement's table (alias stripped), for query hooks. */
  table?: string;
}

/**
 * A plugin hook threw. The original error is the `cause`; the message names
 * the plugin, the hook and, for query hooks, the operation and table. No SQL
 * was sent for the query when a query hook throws.
 *
 * Errors that are already a {@linkcode KyseraError} (a plugin's own typed
 * rejection, say) are not wrapped: they reach the caller unchanged.
 *
 * @example Reading a plugin error
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPluginError, PluginError } from "@kysera/kysera/executor";
 *
 * const error = new PluginError({ plugin: "tenant", hook: "interceptQuery", operation: "select", table: "users" });
 * assert.ok(isPluginError(error));
 * assert.equal(error.message, "Plugin 'tenant' failed in interceptQuery on select of 'users'");
 * ```
 */
export class PluginError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "PluginError";
  /** The plugin's name. */
  readonly plugin: string;
  /** The hook that threw. */
  readonly hook: PluginHook;
  /** The statement's operation, for query hooks. */
  readonly operation: string | undefined;
  /** The statement's table, for query hooks. */
  readonly table: string | undefined;

  /**
   * Creates a {@linkcode PluginError}.
   *
   * @param details The plugin, hook, operation, table and cause.
   */
  constructor(details: PluginErrorDetails) {
    const where = details.operation === undefined
      ? ""
      : ` on ${details.operation}${details.table === undefined ? "" : ` of '${details.table}'`}`;
    const because = details.cause instanceof Error ? `: ${details.cause.message}` : "";
    super(`Plugin '${details.plugin}' failed in ${details.hook}${where}${because}`, "PLUGIN_ERROR", details);
    this.plugin = details.plugin;
    this.hook = details.hook;
    this.operation = details.operation;
    this.table = details.table;
  }
}

/**
 * Wraps what a plugin hook threw in a {@linkcode PluginError}, unless it is a
 * {@linkcode KyseraError} already.
 *
 * @param error What the hook threw.
 * @param details The plugin, hook, operation and table.
 * @returns The error to throw.
 *
 * @example Wrapping a plugin's failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { wrapPluginError } from "@kysera/kysera/executor";
 *
 * const error = wrapPluginError(new Error("boom"), { plugin: "audit", hook: "onWrite" });
 * assert.equal(error.message, "Plugin 'audit' failed in onWrite: boom");
 * ```
 */
export function wrapPluginError(error: unknown, details: Omit<PluginErrorDetails, "cause">): Error {
  if (isKyseraError(error)) return error;
  return new PluginError({ ...details, cause: error });
}

/**
 * Tells whether a value is a {@linkcode PluginError}.
 *
 * @param value Anything caught.
 * @returns `true` for a plugin error.
 *
 * @example Recognising a PluginError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPluginError } from "@kysera/kysera/executor";
 *
 * assert.equal(isPluginError(new Error("x")), false);
 * ```
 */
export function isPluginError(value: unknown): value is PluginError {
  return value instanceof PluginError;
}

/** Why a plugin list was rejected. */
export type PluginValidationReason = "duplicate-name" | "missing-dependency" | "conflict" | "dependency-cycle";

/** The facts of a {@linkcode PluginValidationError}. */
export interface PluginValidationDetails {
  /** Why the list was rejected. */
  reason: PluginValidationReason;
  /** The plugin whose declaration failed. */
  plugin: string;
  /** The other plugin involved: the missing dependency, or the conflicting plugin. */
  other?: string;
  /** For a cycle: the plugin names along it, first name repeated at the end. */
  cycle?: readonly string[];
}

/**
 * A list of plugins cannot be used together: two share a name, one depends on
 * a plugin that is absent, two conflict, or dependencies form a cycle.
 * Thrown by {@linkcode createExecutor} before any plugin runs.
 *
 * @example Telling the reasons apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { createExecutorSync, isPluginValidationError } from "@kysera/kysera/executor";
 * import { Kysely, SqliteDialect } from "kysely";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * try {
 *   createExecutorSync(db, [{ name: "a", dependencies: ["b"] }, { name: "b", dependencies: ["a"] }]);
 *   assert.fail("the cycle was not detected");
 * } catch (error) {
 *   assert.ok(isPluginValidationError(error));
 *   assert.equal(error.reason, "dependency-cycle");
 *   assert.deepEqual(error.cycle, ["a", "b", "a"]);
 * }
 * await db.destroy();
 * ```
 */
export class PluginValidationError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "PluginValidationError";
  /** Why the list was rejected. */
  readonly reason: PluginValidationReason;
  /** The plugin whose declaration failed. */
  readonly plugin: string;
  /** The other plugin involved, if any. */
  readonly other: string | undefined;
  /** For a cycle: the names along it. */
  readonly cycle: readonly string[] | undefined;

  /**
   * Creates a {@linkcode PluginValidationError}.
   *
   * @param details The reason and the plugins involved.
   */
  constructor(details: PluginValidationDetails) {
    super(validationMessage(details), "PLUGIN_VALIDATION");
    this.reason = details.reason;
    this.plugin = details.plugin;
    this.other = details.other;
    this.cycle = details.cycle === undefined ? undefined : Object.freeze([...details.cycle]);
  }
}

function validationMessage(d: PluginValidationDetails): string {
  switch (d.reason) {
    case "duplicate-name":
      return `Cannot register plugins: two plugins are named '${d.plugin}'`;
    case "missing-dependency":
      return `Cannot register plugin '${d.plugin}': it depends on '${d.other}', which is not registered`;
    case "conflict":
      return `Cannot register plugin '${d.plugin}': it conflicts with '${d.other}'`;
    case "dependency-cycle":
      return `Cannot register plugins: dependencies form a cycle: ${(d.cycle ?? []).join(" -> ")}`;
  }
}

/**
 * Tells whether a value is a {@linkcode PluginValidationError}.
 *
 * @param value Anything caught.
 * @returns `true` for a plugin validation error.
 *
 * @example Recognising a PluginValidationError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPluginValidationError, PluginValidationError } from "@kysera/kysera/executor";
 *
 * assert.ok(isPluginValidationError(new PluginValidationError({ reason: "duplicate-name", plugin: "a" })));
 * ```
 */
export function isPluginValidationError(value: unknown): value is PluginValidationError {
  return value instanceof PluginValidationError;
}

/**
 * Raw SQL (`sql`...`.execute(executor)`, `executor.executeQuery(compiled)`
 * of a query compiled elsewhere, or a raw table source in FROM/JOIN) was
 * refused by a plugin that cannot enforce itself on it. Run it inside
 * `allowRawSql(...)` to opt in. No SQL was sent.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { RawSqlRefusedError } from "@kysera/kysera/executor";
 *
 * assert.equal(
 *   new RawSqlRefusedError("rls", "raw query").message,
 *   "Cannot run raw SQL: plugin 'rls' cannot enforce itself on a raw query; wrap the call in allowRawSql() to opt in",
 * );
 * ```
 */
export class RawSqlRefusedError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "RawSqlRefusedError";
  /** The refusing plugin. */
  readonly plugin: string;
  /** What kind of raw SQL was seen. */
  readonly source: string;

  /**
   * Creates a {@linkcode RawSqlRefusedError}.
   *
   * @param plugin The refusing plugin.
   * @param source What was seen: `"raw query"`, `"precompiled query"` or `"raw table source"`.
   */
  constructor(plugin: string, source: string) {
    super(
      `Cannot run raw SQL: plugin '${plugin}' cannot enforce itself on a ${source}; wrap the call in allowRawSql() to opt in`,
      "RAW_SQL_REFUSED",
    );
    this.plugin = plugin;
    this.source = source;
  }
}

/**
 * Tells whether a value is a {@linkcode RawSqlRefusedError}.
 *
 * @param value Anything caught.
 * @returns `true` when a plugin refused raw SQL.
 *
 * @example Recognising a RawSqlRefusedError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRawSqlRefusedError } from "@kysera/kysera/executor";
 *
 * assert.equal(isRawSqlRefusedError(new Error("x")), false);
 * ```
 */
export function isRawSqlRefusedError(value: unknown): value is RawSqlRefusedError {
  return value instanceof RawSqlRefusedError;
}

/**
 * Several plugin lifecycle hooks failed (`onDestroy` runs every plugin's
 * hook even when one fails). Each failure is a {@linkcode PluginError} in
 * `errors`.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginError, PluginLifecycleError } from "@kysera/kysera/executor";
 *
 * const error = new PluginLifecycleError([new PluginError({ plugin: "a", hook: "onDestroy" })]);
 * assert.equal(error.errors.length, 1);
 * ```
 */
export class PluginLifecycleError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "PluginLifecycleError";
  /** Every failure, in the order the hooks ran. */
  readonly errors: readonly Error[];

  /**
   * Creates a {@linkcode PluginLifecycleError}.
   *
   * @param errors The failures, in the order the hooks ran.
   */
  constructor(errors: readonly Error[]) {
    super(
      `Plugin lifecycle hooks failed: ${errors.map((e) => e.message).join("; ")}`,
      "PLUGIN_LIFECYCLE",
      { cause: errors[0] },
    );
    this.errors = Object.freeze([...errors]);
  }
}

/** What a {@linkcode PluginSchemaError} found missing. */
export type PluginSchemaProblem = "missing-table" | "missing-column";

/** The facts of a {@linkcode PluginSchemaError}. */
export interface PluginSchemaErrorDetails extends KyseraErrorOptions {
  /** The plugin's name. */
  readonly plugin: string;
  /** What is missing. */
  readonly problem: PluginSchemaProblem;
  /** The table the plugin names (or covers). */
  readonly table: string;
  /** The missing column, for `"missing-column"`. */
  readonly column?: string | undefined;
}

/**
 * A plugin's configuration does not match the database: a table it lists
 * does not exist, or a table it covers lacks a column it needs (a soft-delete
 * plugin over a table without `deleted_at`, say). Thrown by
 * {@linkcode createExecutor} from a plugin's `verifySchema` hook, before any
 * query runs; `createExecutorSync` cannot look and skips the check.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginSchemaError } from "@kysera/kysera/executor";
 *
 * const error = new PluginSchemaError({ plugin: "soft-delete", problem: "missing-table", table: "post" });
 * assert.equal(error.code, "PLUGIN_SCHEMA");
 * assert.equal(error.table, "post");
 * ```
 */
export class PluginSchemaError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "PluginSchemaError";
  /** The plugin's name. */
  readonly plugin: string;
  /** What is missing. */
  readonly problem: PluginSchemaProblem;
  /** The table the plugin names (or covers). */
  readonly table: string;
  /** The missing column, for `"missing-column"`. */
  readonly column: string | undefined;

  /**
   * Creates a {@linkcode PluginSchemaError}.
   *
   * @param details The plugin, what is missing, the table and the column.
   */
  constructor(details: PluginSchemaErrorDetails) {
    super(
      details.problem === "missing-table"
        ? `Plugin '${details.plugin}' lists table '${details.table}', which does not exist in the database`
        : `Plugin '${details.plugin}' covers table '${details.table}', which has no column '${details.column}': list only tables that have it (or exclude this one)`,
      "PLUGIN_SCHEMA",
      details,
    );
    this.plugin = details.plugin;
    this.problem = details.problem;
    this.table = details.table;
    this.column = details.column;
  }
}

/**
 * Tells whether a value is a {@linkcode PluginSchemaError}.
 *
 * @param value Anything caught.
 * @returns `true` for a plugin schema error.
 *
 * @example Recognising a PluginSchemaError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPluginSchemaError } from "@kysera/kysera/executor";
 *
 * assert.equal(isPluginSchemaError(new Error("x")), false);
 * ```
 */
export function isPluginSchemaError(value: unknown): value is PluginSchemaError {
  return value instanceof PluginSchemaError;
}

/**
 * A query was sent through an executor (or a repository or ORM that is not
 * bound to the transaction) while a transaction callback of the same
 * executor runs: it would run outside the transaction (on PostgreSQL and
 * MySQL it commits on its own and survives a rollback; on SQLite it waits
 * for ever for the transaction's connection). Use the transaction's
 * handle: the `trx` the callback receives, `repo.bind(trx)` or
 * `orm.bind(trx)`, or the `repo`/`orm` that `transaction(fn)` passes in.
 * No SQL was sent. See the executor option `outsideTransaction` and
 * `allowOutsideTransaction()`.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutsideTransactionError } from "@kysera/kysera/executor";
 *
 * assert.equal(new OutsideTransactionError().code, "OUTSIDE_TRANSACTION");
 * ```
 */
export class OutsideTransactionError extends KyseraError<"OUTSIDE_TRANSACTION"> {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "OutsideTransactionError";

  /** Creates an {@linkcode OutsideTransactionError}. */
  constructor() {
    super(
      "Cannot run a query outside the running transaction of the same executor: use the transaction's handle " +
        "(the callback's trx, repo.bind(trx), orm.bind(trx)), or wrap the call in allowOutsideTransaction() if it must run on its own",
      "OUTSIDE_TRANSACTION",
    );
  }
}

/**
 * Tells whether a value is an {@linkcode OutsideTransactionError}.
 *
 * @param value Anything caught.
 * @returns `true` when a query was refused for bypassing a running transaction.
 *
 * @example Recognising an OutsideTransactionError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isOutsideTransactionError, OutsideTransactionError } from "@kysera/kysera/executor";
 *
 * assert.ok(isOutsideTransactionError(new OutsideTransactionError()));
 * ```
 */
export function isOutsideTransactionError(value: unknown): value is OutsideTransactionError {
  return value instanceof OutsideTransactionError;
}
