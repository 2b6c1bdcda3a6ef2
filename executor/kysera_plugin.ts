import type {
  CompiledQuery,
  Expression,
  ExpressionBuilder,
  KyselyPlugin,
  OperationNode,
  QueryId,
  QueryResult,
  SqlBool,
} from "kysely";
import type { Kysely } from "kysely";
import type { PluginContext } from "./plugin_context.ts";
import type { DialectName } from "../core/mod.ts";

/** A Kysely instance over any database type, as plugin hooks receive it. */
// deno-lint-ignore no-explicit-any
export type AnyKysely = Kysely<any>;
/** An expression builder over any tables, as {@linkcode KyseraPlugin.scopeRows} receives it. */
// deno-lint-ignore no-explicit-any
export type AnyExpressionBuilder = ExpressionBuilder<any, any>;

/** The kind of statement a query is. `replace` is MySQL's `REPLACE INTO`. */
export type QueryOperation = "select" | "insert" | "update" | "delete" | "replace" | "merge";

/** What {@linkcode KyseraPlugin.interceptQuery} learns about a query. */
export interface InterceptContext {
  /** The statement's operation. */
  readonly operation: QueryOperation;
  /**
   * The statement's top-level table, alias stripped: the first FROM item of
   * a select or delete, the target of an insert, update or merge.
   * `undefined` when that is not a table (a subquery, no FROM).
   */
  readonly table: string | undefined;
  /** The alias of that table, if it has one. */
  readonly alias: string | undefined;
  /** The schema of that table, if the query names one (or `withSchema` set it). */
  readonly schema: string | undefined;
  /** A bag shared by every plugin's hooks for this one query. */
  readonly metadata: Record<string, unknown>;
  /** Kysely's id of the query. */
  readonly queryId: QueryId;
}

/**
 * Where a table reference sits in its query. `"conflict-update"` is the
 * existing row an INSERT's `ON CONFLICT DO UPDATE` / `ON DUPLICATE KEY
 * UPDATE` would change (with operation `"update"`).
 */
export type TableReferencePosition = "from" | "join" | "target" | "using" | "conflict-update";

/**
 * One reference to a table in a query, as {@linkcode KyseraPlugin.scopeRows}
 * sees it. A table referenced three times (a self-join, a subquery) is seen
 * three times, each with its own alias.
 *
 * @typeParam C The plugin's context value type.
 */
export interface TableReference<C = unknown> {
  /** The table name. */
  readonly table: string;
  /** The alias, if the reference has one. */
  readonly alias: string | undefined;
  /** The schema, if the reference names one. */
  readonly schema: string | undefined;
  /** The operation of the query the reference sits in (`select` inside a subquery of a delete). */
  readonly operation: QueryOperation;
  /** The operation of the whole statement. */
  readonly statement: QueryOperation;
  /** Where the reference sits. */
  readonly position: TableReferencePosition;
  /** The plugin's context value (see {@linkcode KyseraPlugin.context}), read for this query. */
  readonly context: C | undefined;
  /**
   * A column of this reference, qualified the way the query names the table
   * (by its alias when it has one), for use in the returned predicate.
   */
  column(name: string): Expression<unknown>;
}

/**
 * A value in {@linkcode WriteInfo.rows} that is an SQL expression, not a
 * literal: `onWrite` sees the expression's operation node, not a value.
 *
 * @example Telling expressions from literal values
 * ```ts
 * import assert from "node:assert/strict";
 * import { sql } from "kysely";
 * import { WriteExpression } from "@kysera/kysera/executor";
 *
 * const value: unknown = new WriteExpression(sql`current_timestamp`.toOperationNode());
 * assert.ok(value instanceof WriteExpression);
 * assert.equal(value.node.kind, "RawNode");
 * ```
 */
export class WriteExpression {
  /** The expression's operation node. */
  readonly node: OperationNode;
  /**
   * Creates a {@linkcode WriteExpression}.
   *
   * @param node The expression's operation node.
   */
  constructor(node: OperationNode) {
    this.node = node;
  }
}

/** Which part of a write {@linkcode KyseraPlugin.onWrite} is looking at. */
export type WriteKind = "values" | "select" | "raw" | "set" | "upsert-set";

/**
 * One INSERT/UPDATE as {@linkcode KyseraPlugin.onWrite} sees it.
 *
 * @typeParam C The plugin's context value type.
 */
export interface WriteInfo<C = unknown> {
  /** `insert`, `replace` or `update`. */
  readonly operation: "insert" | "replace" | "update";
  /** The written table. */
  readonly table: string;
  /** Its schema, if named. */
  readonly schema: string | undefined;
  /**
   * `values`: the rows of `insert ... values`; `select`: `insert ... select`
   * (rows is empty; the columns are known); `raw`: an INSERT whose source is
   * raw SQL (`.expression(sql\`values (...)\`)`; rows is empty, the values
   * cannot be read, and a change returned for it is refused: a plugin that
   * needs the values must refuse the write); `set`: an UPDATE's SET (one
   * row); `upsert-set`: the SET of `onConflict(...doUpdateSet)` or
   * `onDuplicateKeyUpdate` (one row).
   */
  readonly kind: WriteKind;
  /**
   * The columns written, as the statement spells them. On a dialect that
   * reads column names case-insensitively (SQLite, MySQL; see
   * `foldsColumnNames`) compare them the same way: a write that names one
   * column twice in two spellings never reaches a hook.
   */
  readonly columns: readonly string[];
  /**
   * The rows written, column to value. Literal values appear as is; SQL
   * expressions appear as {@linkcode WriteExpression}; a column left to its
   * default is absent. On a dialect that reads column names
   * case-insensitively, a row answers `row.tenant_id` and
   * `Object.hasOwn(row, "tenant_id")` for a value written as `TENANT_ID`,
   * as the database would; its keys (spread, `Object.keys`) are spelled as
   * written.
   */
  readonly rows: readonly Readonly<Record<string, unknown>>[];
  /** The plugin's context value, read for this query. */
  readonly context: C | undefined;
  /**
   * The executor's SQL dialect (`"mysql"` for MariaDB), for values whose
   * form depends on it; `undefined` when the adapter is not one of Kysely's
   * built-in ones.
   */
  readonly dialect: DialectName | undefined;
}

/** What {@linkcode KyseraPlugin.onWrite} may change. */
export interface WriteChange {
  /**
   * Columns to set on every row (replacing a value the caller gave): a
   * literal, or an `Expression` such as `sql\`now()\``.
   */
  readonly set?: Readonly<Record<string, unknown>>;
  /**
   * For `kind: "values"` only: columns to set per row, `rows[i]` on the
   * i-th row (applied after `set`; `undefined` leaves a row alone). A column
   * the statement did not write yet is added, and rows that do not set it
   * get `DEFAULT`. Lets a plugin fill a column only in the rows where the
   * caller did not set it.
   */
  readonly rows?: readonly (Readonly<Record<string, unknown>> | undefined)[];
}

/**
 * A write being executed, as {@linkcode KyseraPlugin.aroundWrite} sees it.
 *
 * @typeParam C The plugin's context value type.
 */
export interface WriteExecution<C = unknown> {
  /** The statement's operation. */
  readonly operation: QueryOperation;
  /** The target table, alias stripped (`undefined` if not a plain table). */
  readonly table: string | undefined;
  /** The compiled query about to run. */
  readonly query: CompiledQuery;
  /** The plugin's context value, read for this query. */
  readonly context: C | undefined;
  /**
   * A Kysely bound to the connection (and transaction) the write runs on,
   * with every Kysera plugin in force. Writes through it pass `aroundWrite`
   * again; use `rawDb` for a plugin's own bookkeeping writes.
   */
  readonly db: AnyKysely;
  /** A Kysely bound to the same connection, without Kysera's plugins. */
  readonly rawDb: AnyKysely;
  /**
   * Whether the write runs inside a transaction on its connection (opened by
   * Kysely's `transaction()` / `startTransaction()`, by a `begin` sent
   * through the executor, or by an earlier `aroundQuery` hook). Read when
   * the hook looks, so it reflects a transaction the hook opened itself.
   */
  readonly inTransaction: boolean;
  /**
   * The open transaction's identity: one object per transaction, for
   * per-transaction caches in a `WeakMap`; `undefined` outside a transaction.
   */
  readonly transaction: object | undefined;
}

/**
 * A query being executed, as {@linkcode KyseraPlugin.aroundQuery} sees it:
 * every statement of the executor (reads, writes, raw SQL, streams), on the
 * connection it runs on.
 *
 * @typeParam C The plugin's context value type.
 */
export interface QueryExecution<C = unknown> {
  /** The statement's operation; `undefined` for raw SQL and other statements. */
  readonly operation: QueryOperation | undefined;
  /** The compiled query about to run. */
  readonly query: CompiledQuery;
  /**
   * `"execute"`, or `"stream"` for `stream()`: then `next()` resolves (to
   * an empty result) once the caller has finished reading the stream.
   */
  readonly mode: "execute" | "stream";
  /** The plugin's context value, read for this query. */
  readonly context: C | undefined;
  /** A Kysely bound to the query's connection, with every Kysera plugin in force. */
  readonly db: AnyKysely;
  /** A Kysely bound to the same connection, without Kysera's plugins (for the plugin's own statements). */
  readonly rawDb: AnyKysely;
  /** As {@linkcode WriteExecution.inTransaction}. */
  readonly inTransaction: boolean;
  /** As {@linkcode WriteExecution.transaction}. */
  readonly transaction: object | undefined;
}

/** What a plugin says about raw SQL it cannot rewrite. */
export type RawSqlPolicy = "allow" | "refuse";

/**
 * A per-statement raw-SQL decision: `true` allows. Declared as a method type
 * so a plugin with a specific context type is still a `KyseraPlugin`.
 */
export type RawSqlDecision<C> = { decide(info: RawSqlInfo<C>): boolean }["decide"];

/** What {@linkcode KyseraPlugin.rawSql} is told about a raw statement. */
export interface RawSqlInfo<C = unknown> {
  /**
   * What is raw: `"raw query"` (a `sql` statement), `"precompiled query"`
   * (`executeQuery` of a query compiled elsewhere, or compiled earlier and
   * kept: its scopes are those of the context it was compiled in, another
   * tenant's, say; `execute()` compiles and runs at once), `"raw table
   * source"`, `"raw SET target"`, `"raw
   * SQL fragment"` (a `sql` fragment inside a builder query that is not
   * inert: it could read a table, end the statement or comment out what
   * follows), `"function that runs SQL from a string"` (`query_to_xml` and
   * the like) or `"DDL with a query"` (`create table ... as select`, `create
   * view`).
   */
  readonly source: string;
  /** The plugin's context value, read for this query. */
  readonly context: C | undefined;
}

/** What a transaction statement did: see {@linkcode TransactionEvent}. */
export type TransactionEventKind = "begin" | "savepoint" | "release" | "rollback-to" | "commit" | "rollback";

/**
 * One transaction statement, as `KyseraPlugin.onTransaction` sees it, after
 * it ran (or failed).
 */
export interface TransactionEvent<C = unknown> {
  /** What the statement does. */
  readonly kind: TransactionEventKind;
  /**
   * The transaction's id: one per top-level transaction (unique in the
   * process); its savepoints carry it too.
   */
  readonly transactionId: number;
  /**
   * 0 for the transaction's `begin`, `commit` and `rollback`; for a
   * savepoint command, the savepoint's depth (1 for the outermost).
   */
  readonly depth: number;
  /**
   * The isolation level (`"serializable"`, `"read committed"`, ...) when one
   * was set for the transaction (PostgreSQL's `start transaction isolation
   * level ...`, MySQL's `set transaction isolation level ...` before `begin`).
   */
  readonly isolationLevel: string | undefined;
  /** The savepoint's name, for savepoint commands. */
  readonly savepoint: string | undefined;
  /** The statement as sent. */
  readonly sql: string;
  /** How long the statement took, in milliseconds. */
  readonly durationMs: number;
  /** The statement's error when it failed (e.g. a COMMIT refused by a deferred constraint); `undefined` otherwise. */
  readonly error: unknown;
  /** The value of the plugin's context, if it has one. */
  readonly context: C | undefined;
}

/**
 * A Kysera plugin. Every member but `name` is optional; a plugin uses the
 * hooks it needs.
 *
 * Hooks that rewrite queries run on Kysely's operation-node tree of every
 * query of the executor and of every transaction, controlled transaction,
 * connection, `withSchema`/`withPlugin`/`withoutPlugins` instance derived
 * from it, after the user's own Kysely plugins, in this order:
 * `transformQuery`, `interceptQuery`, `onWrite`, `scopeRows`.
 * `transformQuery` runs as Kysely's own plugins do, whenever a builder
 * becomes nodes (a subquery too); the other three run once, on the whole
 * statement as it is compiled for execution, so a query built outside a
 * context (or in another one) gets the context it runs in, and each table
 * reference gets its predicate once.
 *
 * @typeParam C The type of the value in the plugin's {@linkcode PluginContext}.
 *
 * @example A tenant scope
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KyseraPlugin } from "@kysera/kysera/executor";
 *
 * const tenantScope: KyseraPlugin = {
 *   name: "tenant",
 *   scopeRows: (ref, eb) => ref.table === "posts" ? eb(ref.column("tenant_id"), "=", 1) : undefined,
 * };
 * assert.equal(tenantScope.name, "tenant");
 * ```
 */
export interface KyseraPlugin<C = unknown> {
  /** A unique name. */
  readonly name: string;
  /** The plugin's version, for messages. */
  readonly version?: string;
  /** Higher runs earlier, after dependencies. @default 0 */
  readonly priority?: number;
  /** Names of plugins that must be registered and run before this one. */
  readonly dependencies?: readonly string[];
  /** Names of plugins that cannot be registered with this one. */
  readonly conflictsWith?: readonly string[];
  /** The plugin's per-call context; its value is handed to every hook. */
  readonly context?: PluginContext<C>;
  /**
   * What the plugin does with raw SQL, which no hook can rewrite: `"allow"`
   * (the default), `"refuse"` (throw {@linkcode RawSqlRefusedError} unless the
   * call runs in `allowRawSql`), or a function deciding per statement
   * (return `true` to allow; e.g. allow in a system context).
   */
  readonly rawSql?: RawSqlPolicy | RawSqlDecision<C>;

  /**
   * Checks the database once when the executor is created with
   * {@linkcode createExecutor}, before the plugin's `onInit` (e.g. that the
   * tables the plugin lists exist and have its columns; throw
   * `PluginSchemaError`). Unlike `onInit` it is optional:
   * `createExecutorSync` cannot wait and skips it.
   */
  verifySchema?(executor: AnyKysely): Promise<void>;
  /** Runs once when the executor is created with {@linkcode createExecutor}, in plugin order. */
  onInit?(executor: AnyKysely): void | Promise<void>;
  /** Runs once in {@linkcode destroyExecutor}, in reverse plugin order. */
  onDestroy?(executor: AnyKysely): void | Promise<void>;

  /**
   * The builder hook: receives a query builder over the whole statement and
   * returns one of the same kind (e.g. with an added `where`). Sees only the
   * top-level statement: a table inside a join or subquery is not its
   * `context.table`. Use `scopeRows` for guarantees that must hold for every
   * reference.
   */
  interceptQuery?<QB>(qb: QB, context: InterceptContext): QB;

  /**
   * A row scope: for one table reference, a predicate to AND onto it (in
   * WHERE for FROM items and UPDATE/DELETE targets, in ON for joins, so
   * outer joins keep their outer rows), or `undefined` to leave it alone.
   */
  scopeRows?(ref: TableReference<C>, eb: AnyExpressionBuilder): Expression<SqlBool> | undefined;

  /**
   * A write hook: sees each INSERT/UPDATE's table and values before the
   * query is compiled; may return columns to set, or throw to reject the
   * write (no SQL is sent).
   */
  onWrite?(write: WriteInfo<C>): WriteChange | undefined | void;

  /**
   * Runs around the execution of every write (insert, update, delete,
   * replace, merge), and of any statement whose WITH clause writes
   * (PostgreSQL's data-modifying CTEs; `operation` and `table` are then the
   * statement's own), on the connection it runs on. Call `next()` exactly once
   * and return its result (or a result derived from it). `next(query)` runs
   * a replacement for `execution.query` (the same statement, amended, e.g.
   * with a `RETURNING` clause the plugin needs; compile it with
   * `execution.rawDb`), and later plugins see the replacement.
   */
  aroundWrite?(
    execution: WriteExecution<C>,
    next: (query?: CompiledQuery) => Promise<QueryResult<unknown>>,
  ): Promise<QueryResult<unknown>>;

  /**
   * Runs around the execution of every statement (reads, writes, raw SQL,
   * streams) on the connection it runs on, before `aroundWrite`. Call
   * `next()` exactly once and return its result. For session state a
   * statement needs (e.g. transaction-local settings): `execution.rawDb`
   * runs the plugin's own statements on the same connection, and
   * `inTransaction` / `transaction` say whether one is open. An executor
   * with such a plugin takes a connection per statement through this hook,
   * so use it only where it is needed.
   */
  aroundQuery?(
    execution: QueryExecution<C>,
    next: () => Promise<QueryResult<unknown>>,
  ): Promise<QueryResult<unknown>>;

  /**
   * Sees every transaction statement of the executor and of everything
   * derived from it, on every dialect, after it ran: `begin` (also with an
   * isolation level), `savepoint`, `release`, `rollback-to`, `commit` and
   * `rollback`, whether sent by `transaction()`, `startTransaction()` and its
   * savepoints, the DAL's `transaction()`, a `begin` sent through
   * `connection()`, or a plugin's own statements. Statements Kysely never sees
   * (MySQL's implicit commit after DDL) and savepoint commands outside a
   * transaction Kysera saw open are not reported. The hook is synchronous
   * (a returned promise is not awaited) and costs nothing when no plugin has
   * it.
   *
   * A hook that throws: every other hook still sees the event, then the
   * first error is thrown as a `PluginError` (hook `"onTransaction"`) from
   * the statement, unless the statement failed (its own error is thrown).
   * The statement's effect stands, except after `begin`: the transaction is
   * rolled back first (and a `rollback` reported), so a throwing hook never
   * leaves one open. After a `commit` the transaction is committed though
   * the call throws, and the `rollback` Kysely then sends is not sent.
   *
   * @example Counting open transactions
   * ```ts
   * import assert from "node:assert/strict";
   * import type { KyseraPlugin, TransactionEvent } from "@kysera/kysera/executor";
   *
   * const events: TransactionEvent[] = [];
   * const watcher: KyseraPlugin = {
   *   name: "tx-watcher",
   *   onTransaction: (event) => void events.push(event),
   * };
   * assert.equal(watcher.name, "tx-watcher");
   * ```
   */
  onTransaction?(event: TransactionEvent<C>): void;

  /** Kysely's own plugin hook, run on the tree before the Kysera hooks. */
  transformQuery?: KyselyPlugin["transformQuery"];
  /** Kysely's own plugin hook, run on every result. */
  transformResult?: KyselyPlugin["transformResult"];

  /**
   * Adds methods to a repository: receives the repository being built (bound
   * to its executor or transaction; config-form repositories carry
   * `tableName` and `executor`) and returns an object whose properties are
   * added to it. Runs again for every transaction-bound copy, so methods that
   * close over `repository` use the transaction. Declare the plugin with
   * `satisfies KyseraPlugin` to keep the added methods on the repository's type.
   */
  extendRepository?(repository: object): object;
}
