import type { CompiledQuery, InsertQueryNode, QueryResult, RootOperationNode, UpdateQueryNode } from "kysely";
import { sql } from "kysely";
import {
  type AnyKysely,
  deleteTargets,
  type KyseraPlugin,
  tableLookup,
  type WriteExecution,
} from "../../executor/mod.ts";
import { type DialectName, getDialect } from "../../core/mod.ts";
import { type AuditEntry, type AuditReader, auditReader } from "./audit_reader.ts";
import { UnauditableWriteError } from "./errors.ts";
import { verifyTables } from "../_schema_check.ts";
import { primaryKeyOf } from "./_keys.ts";
import { type StoreSettings, writeEntries } from "./_store.ts";
import { auditDelete, auditInsert, auditUpdateAfter, auditUpdateReturning, type Capture } from "./_capture.ts";
import { keyUpdates, targetName, writeOperation, writesInWith, writeTarget, writeTargets } from "./_targets.ts";
import type { DeleteQueryNode } from "kysely";

/**
 * Options of {@linkcode auditPlugin}.
 *
 * @typeParam T The database's table names (see `auditPlugin<DB>`).
 */
export interface AuditOptions<T extends string = string> {
  /** The audit table. @default "audit_logs" */
  readonly table?: string;
  /**
   * Only these tables are audited (all others are not). `createExecutor`
   * checks once that each exists (a misspelt name would audit nothing) and
   * throws `PluginSchemaError` otherwise (`createExecutorSync` cannot look).
   * @default every table (but the audit table)
   */
  readonly tables?: readonly T[];
  /** Tables never audited (the audit table itself never is). @default [] */
  readonly excludeTables?: readonly T[];
  /**
   * The primary key column(s): one for every table, or per table (tables
   * not listed use `"id"`; a write to a table that has no such column is
   * refused with {@linkcode UnauditableWriteError}). @default "id"
   */
  readonly primaryKey?: string | readonly string[] | Readonly<Record<string, string | readonly string[]>>;
  /** Record the row before an update or delete. @default true */
  readonly captureOldValues?: boolean;
  /** Record the row after an insert or update. @default true */
  readonly captureNewValues?: boolean;
  /** The acting user of the current call, read once per write. @default () => null */
  readonly actor?: () => string | null;
  /** Extra data stored with every audit row of the current call. @default () => ({}) */
  readonly metadata?: () => object;
  /**
   * The tenant an audit row belongs to (stored as text in `tenant_id`),
   * called once per audit row with the audited row (after the change; before
   * it, for a delete) and its table. Return the row's tenant column
   * (`(row) => row.tenant_id`) so that every audit row carries the tenant of
   * the data it records, even when a system context writes several tenants'
   * rows; or the context's tenant (`() => rlsContext.getTenantId() ?? null`)
   * for tables without one. Under row-level security the audit table is
   * then filtered on `tenant_id` like any other table (see
   * {@linkcode auditReader}). The column's value is returned as is (no
   * cast): a string, number or bigint is stored as text, `null` or
   * `undefined` as `NULL`; anything else refuses the write (`TypeError`).
   * @default () => null
   */
  readonly tenant?: (row: Readonly<Record<string, unknown>>, table: string) => unknown;
  /**
   * Secret columns that never reach the audit table: one list for every
   * audited table, or lists per table. A redacted column is left out of
   * `old_values` and `new_values` (no placeholder a restore could write
   * back), while `changed_fields` still names it when it changed. A restore
   * therefore leaves it alone: an update keeps its current value, a
   * re-inserted row gets the column's default. A primary key column cannot
   * be redacted.
   * @default []
   */
  readonly redact?: readonly string[] | Readonly<Record<string, readonly string[]>>;
  /** The clock for `changed_at`, read once per write after its rows are locked and written. @default () => new Date() */
  readonly clock?: () => Date;
}

/** The audit plugin, with its repository methods. */
export interface AuditPlugin extends KyseraPlugin {
  /** Checks, at `createExecutor`, that the tables in `tables` exist. */
  verifySchema(executor: AnyKysely): Promise<void>;
  /** Adds `getAuditHistory`, `asOf` and `restoreFromAudit` for the repository's table. */
  extendRepository(repository: object): AuditRepositoryMethods;
}

/**
 * Methods the audit plugin adds to a repository (config form: `tableName`,
 * `executor`). They read through the repository's executor (or
 * transaction), so row-level security on the audit table applies to them.
 * A repository made by a factory (`orm.createRepository((executor) =>
 * ...)`) without `tableName` and `executor` gets methods that reject with a
 * `TypeError` when called.
 */
export interface AuditRepositoryMethods {
  /** The audit entries of one row of this repository's table, oldest first. */
  getAuditHistory(id: unknown): Promise<AuditEntry[]>;
  /** The row as it was at `time` (`undefined` if it did not exist). */
  asOf(id: unknown, time: Date): Promise<Record<string, unknown> | undefined>;
  /** Restores a row from an audit entry (see {@linkcode AuditReader.restoreFromAudit}). */
  restoreFromAudit(auditId: number | string, options?: { force?: boolean }): Promise<void>;
}

const NO_COLUMNS: ReadonlySet<string> = new Set();

/** The redacted columns of each table, checked against the primary keys once. */
function redactionOf(options: AuditOptions): (table: string) => ReadonlySet<string> {
  const option = options.redact;
  if (option === undefined) return () => NO_COLUMNS;
  const check = (table: string | undefined, columns: readonly string[]): ReadonlySet<string> => {
    if (!Array.isArray(columns)) {
      throw new TypeError(
        `Cannot create the audit plugin: 'redact' must list column names: current value is ${JSON.stringify(columns)}`,
      );
    }
    const keys = table === undefined
      ? [
        ...primaryKeyOf(options.primaryKey, ""),
        ...(typeof options.primaryKey === "object" && !Array.isArray(options.primaryKey)
          ? Object.values(options.primaryKey as Record<string, string | readonly string[]>).flat()
          : []),
      ]
      : primaryKeyOf(options.primaryKey, table);
    for (const column of columns) {
      if (keys.includes(column)) {
        throw new TypeError(
          `Cannot create the audit plugin: a primary key column cannot be redacted: current value is '${column}'${
            table === undefined ? "" : ` of '${table}'`
          }`,
        );
      }
    }
    return new Set(columns);
  };
  if (Array.isArray(option)) {
    const all = check(undefined, option as readonly string[]);
    return () => all;
  }
  const perTable = new Map<string, ReadonlySet<string>>();
  for (const [table, columns] of Object.entries(option as Readonly<Record<string, readonly string[]>>)) {
    perTable.set(table, check(table, columns));
  }
  return (table) => perTable.get(table) ?? NO_COLUMNS;
}

/** The table names the options spell out (`tables`, `excludeTables`, per-table `primaryKey` and `redact`). */
function namedTables(options: AuditOptions): string[] {
  const perTable = (option: unknown): string[] =>
    typeof option === "object" && option !== null && !Array.isArray(option) ? Object.keys(option) : [];
  return [
    ...(options.tables ?? []),
    ...(options.excludeTables ?? []),
    ...perTable(options.primaryKey),
    ...perTable(options.redact),
  ];
}

/**
 * Creates the audit plugin: every INSERT, UPDATE and DELETE through the
 * executor (repository, DAL, plain builders, multi-row, upsert,
 * `insert ... select`) writes one row per affected row into the audit table,
 * on the write's own connection and transaction. A lone write gets an
 * implicit transaction; inside a transaction the plugin uses a savepoint, so
 * a failed audit insert undoes the write and fails it. Old rows are read in
 * one `SELECT ... FOR UPDATE` (PostgreSQL, MariaDB) before the write, and
 * the UPDATE or DELETE is restricted to the keys read (so under READ
 * COMMITTED a row that starts matching in between is left alone, as if the
 * write had run at the read, and never changed unaudited); new rows come
 * from `RETURNING` (inserts everywhere, updates on PostgreSQL and SQLite) or
 * from one `SELECT` after the write (updates on MariaDB); the audit rows are
 * inserted in one statement. An upsert that may update (`ON CONFLICT ... DO
 * UPDATE`, `ON DUPLICATE KEY UPDATE`) first locks its conflict keys
 * (PostgreSQL advisory locks, MariaDB/MySQL `GET_LOCK`) and reads the rows
 * it may update on those keys, whichever unique key it conflicts on, so
 * concurrent upserts of one key keep the old → new chain. An upsert racing a
 * plain INSERT of its key under READ COMMITTED fails with
 * `SerializationError` on PostgreSQL (retry it); on MariaDB/MySQL it is
 * covered at the default REPEATABLE READ (the locking read's gap lock),
 * not under READ COMMITTED, where it can be recorded as an insert. Create the table
 * first with {@linkcode createAuditTable}; nothing is created for you.
 *
 * Writes the plugin cannot record exactly are refused with
 * {@linkcode UnauditableWriteError} before any SQL is sent: `REPLACE` (and
 * SQLite's `INSERT OR REPLACE`) and `MERGE` into an audited table, a write
 * whose target is raw SQL (`sql.table("posts").as("p")`), a MariaDB/MySQL
 * multi-table UPDATE or DELETE that lists an audited table, an upsert from
 * a SELECT or with a key column set by SQL, and on MariaDB/MySQL an
 * `UPDATE` that sets a primary key column to an SQL expression. A write to
 * a table without the key columns (`"id"` unless `primaryKey` names them)
 * is refused and rolled back. Raw SQL statements through the executor are
 * refused with `RawSqlRefusedError` (no hook can read which table they
 * write), unless the call runs in `allowRawSql()`, the explicit opt-in for
 * statements known not to write audited tables.
 *
 * On SQLite, which reads `POSTS` as `posts`, a table is recorded under one
 * spelling whatever case a query uses: the one the options use (`tables`,
 * `primaryKey`, `redact`), otherwise lower case; the reader finds it under
 * any case there.
 *
 * Secret columns listed in `redact` never reach the audit table. Under
 * row-level security, `tenant` puts the tenant on every audit row, and the
 * RLS schema filters the audit table with `filter("read",
 * auditTenantFilter())`, so each tenant reads only its own audit rows (see
 * {@linkcode auditReader} and {@linkcode auditTenantFilter}).
 *
 * @typeParam DB The database type, to check `tables` and `excludeTables` against its table names.
 * @typeParam T The database's table names.
 * @param options What to audit, what to leave out, and where the actor, tenant and metadata come from.
 * @returns The plugin, to pass to `createExecutor` or `createORM`.
 * @throws {TypeError} When `redact` names a primary key column.
 *
 * @example Auditing a builder update
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createExecutorSync } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { auditPlugin, createAuditTable, auditReader } from "@kysera/kysera/audit"; // npm: "kysera/audit"
 *
 * // deno-lint-ignore no-explicit-any
 * const db = new Kysely<any>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await createAuditTable(db);
 * await db.schema.createTable("posts").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("title", "text").execute();
 * const executor = createExecutorSync(db, [auditPlugin({ actor: () => "ada" })]);
 * await executor.insertInto("posts").values({ id: 1, title: "draft" }).execute();
 * await executor.updateTable("posts").set({ title: "final" }).where("id", "=", 1).execute();
 * const history = await auditReader(db).getAuditHistory("posts", 1);
 * assert.deepEqual(history.map((e) => [e.operation, e.changedFields]), [["insert", ["id", "title"]], ["update", ["title"]]]);
 * await db.destroy();
 * ```
 *
 * @example Redacting a secret column
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createExecutorSync } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { auditPlugin, auditReader, createAuditTable } from "@kysera/kysera/audit"; // npm: "kysera/audit"
 *
 * // deno-lint-ignore no-explicit-any
 * const db = new Kysely<any>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await createAuditTable(db);
 * await db.schema.createTable("users").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("email", "text").addColumn("password_hash", "text").execute();
 * const executor = createExecutorSync(db, [auditPlugin({ redact: { users: ["password_hash"] } })]);
 * await executor.insertInto("users").values({ id: 1, email: "a@x.io", password_hash: "h1" }).execute();
 * await executor.updateTable("users").set({ password_hash: "h2" }).where("id", "=", 1).execute();
 * const [, changed] = await auditReader(db).getAuditHistory("users", 1);
 * assert.deepEqual(changed?.changedFields, ["password_hash"]);
 * assert.deepEqual(changed?.newValues, { id: 1, email: "a@x.io" }); // the hash is left out
 * await db.destroy();
 * ```
 */
export function auditPlugin<DB = Record<string, unknown>, T extends keyof DB & string = keyof DB & string>(
  options: AuditOptions<T> = {},
): AuditPlugin {
  const auditTable = options.table ?? "audit_logs";
  const only = options.tables === undefined ? undefined : new Set<string>(options.tables);
  const excluded = new Set<string>([...(options.excludeTables ?? []), auditTable]);
  const redactedIn = redactionOf(options);
  const clock = options.clock ?? (() => new Date());
  const settings: StoreSettings = {
    auditTable,
    captureOld: options.captureOldValues ?? true,
    captureNew: options.captureNewValues ?? true,
    tenant: options.tenant,
  };

  const audited = (table: string | undefined): table is string =>
    table !== undefined && !excluded.has(table) && (only === undefined || only.has(table));
  // A table spelled in another case is recorded under one name, so its
  // history stays in one place and its options (redact, primaryKey) apply:
  // a listed table under its listed name (every dialect: the cautious
  // reading), and on SQLite, which reads POSTS as posts, any other table in
  // lower case.
  const listed = only === undefined ? undefined : tableLookup(only);
  const named = tableLookup([...namedTables(options), auditTable]);
  const canonical = (table: string | undefined, dialect: DialectName): string | undefined => {
    if (table === undefined) return undefined;
    if (listed !== undefined) {
      const found = listed(table);
      if (found !== undefined) return found;
    }
    if (dialect !== "sqlite") return table;
    return named(table) ?? table.toLowerCase();
  };

  /** Refuses, before any SQL, a write this plugin cannot record exactly. */
  function refuseUnauditable(node: RootOperationNode, dialect: DialectName): void {
    for (const write of writesInWith(node)) {
      const target = canonical(writeTarget(write), dialect);
      if (audited(target)) {
        throw new UnauditableWriteError(
          writeOperation(write)!,
          target,
          "a write inside a WITH clause cannot be audited; write to the table in a statement of its own",
        );
      }
    }
    const operation = writeOperation(node);
    if (operation === undefined) return;
    const targets = writeTargets(node);
    for (const item of targets) {
      const { table, raw } = targetName(item);
      const name = canonical(table, dialect);
      if (raw && (name === undefined || audited(name))) {
        throw new UnauditableWriteError(
          operation,
          name ?? "(raw SQL)",
          "a write whose target is raw SQL cannot be audited (its table cannot be read reliably); name the table",
        );
      }
    }
    if (targets.length > 1 && targets.some((item) => audited(canonical(targetName(item).table, dialect)))) {
      const table = targets.map((item) => canonical(targetName(item).table, dialect)).find(audited)!;
      throw new UnauditableWriteError(
        operation,
        table,
        "a multi-table UPDATE or DELETE cannot be audited; write to the audited table in a statement of its own",
      );
    }
    // MySQL's `delete p from posts as p ...` (`deleteFrom("p").using("posts as p")`) names its
    // target through USING: the same multi-table form, with one table.
    if (node.kind === "DeleteQueryNode") {
      const via = deleteTargets(node as DeleteQueryNode).find((t) => t.viaUsing);
      const table = via === undefined ? undefined : canonical(targetName(via.item).table, dialect);
      if (table !== undefined && audited(table)) {
        throw new UnauditableWriteError(
          operation,
          table,
          "a DELETE naming its table through USING cannot be audited; delete from the table itself",
        );
      }
    }
  }

  async function around(
    execution: WriteExecution,
    next: (query?: CompiledQuery) => Promise<QueryResult<unknown>>,
  ): Promise<QueryResult<unknown>> {
    const { rawDb } = execution;
    const dialect = getDialect(rawDb);
    const node = execution.query.query as RootOperationNode;
    refuseUnauditable(node, dialect);
    const table = canonical(execution.table, dialect);
    const kind = node.kind;
    if (!audited(table)) return await next();
    const pk = primaryKeyOf(options.primaryKey, table);
    // Refused before anything is sent: nothing to undo.
    if (kind === "MergeQueryNode") {
      throw new UnauditableWriteError(
        "merge",
        table,
        "the rows a MERGE inserts cannot be read back; use INSERT ... ON CONFLICT, UPDATE and DELETE",
      );
    }
    if (
      kind === "InsertQueryNode" &&
      ((node as InsertQueryNode).replace === true || (node as InsertQueryNode).orAction?.action === "replace")
    ) {
      throw new UnauditableWriteError(
        "replace",
        table,
        "REPLACE deletes every row that conflicts on any unique key unseen; use an upsert (ON DUPLICATE KEY UPDATE / ON CONFLICT)",
      );
    }
    if (kind !== "InsertQueryNode" && kind !== "UpdateQueryNode" && kind !== "DeleteQueryNode") return await next();
    if (
      kind === "UpdateQueryNode" && dialect === "mysql" &&
      keyUpdates(node as UpdateQueryNode, pk).expressions.length > 0
    ) {
      throw new UnauditableWriteError(
        "update",
        table,
        "MariaDB/MySQL has no UPDATE ... RETURNING to find rows whose primary key an SQL expression sets; set the key to a value",
      );
    }
    const actor = options.actor?.() ?? null;
    const metadata = options.metadata?.() ?? null;
    const scope = await openScope(execution, dialect);
    let capture: Capture | undefined;
    try {
      if (kind === "InsertQueryNode") {
        capture = await auditInsert(execution, node as InsertQueryNode, table, pk, dialect, next);
      } else if (kind === "UpdateQueryNode") {
        capture = await (dialect === "mysql" ? auditUpdateAfter : auditUpdateReturning)(
          execution,
          node as UpdateQueryNode,
          table,
          pk,
          dialect,
          next,
        );
      } else {
        capture = await auditDelete(execution, node as DeleteQueryNode, table, pk, dialect, next);
      }
      // The time is read once the rows are locked and written, so a row's history sorts in the order its
      // writes took the row (a write that waited for another's lock gets the later time).
      const context = { actor, metadata, at: clock() };
      await writeEntries(rawDb, settings, table, pk, redactedIn(table), dialect, capture.entries, context);
      await capture.release?.();
      await scope.commit();
      return capture.result;
    } catch (error) {
      await capture?.release?.().catch(() => {});
      await scope.rollback().catch(() => {});
      throw error;
    }
  }

  return {
    name: "audit",
    version: "1.0.0",
    verifySchema: (executor: AnyKysely): Promise<void> =>
      only === undefined
        ? Promise.resolve()
        : verifyTables(executor, { plugin: "audit", tables: [...only], covers: audited, columns: [] }),
    // Runs innermost among aroundWrite hooks, next to the write itself.
    priority: -1000,
    // Raw SQL cannot be read for the table it writes: refused unless the
    // call runs in allowRawSql().
    rawSql: "refuse",
    aroundWrite: around,
    extendRepository(repository: object): AuditRepositoryMethods {
      const repo = repository as { tableName?: unknown; executor?: unknown };
      const tableName = typeof repo.tableName === "string" ? repo.tableName : undefined;
      const executor = repo.executor as AnyKysely | undefined;
      if (tableName === undefined || executor === undefined || executor === null) {
        // A factory's repository (orm.createRepository((executor) => ...)) need not say its table.
        const missing = (): Promise<never> =>
          Promise.reject(
            new TypeError(
              "Cannot read the audit log through this repository: it has no 'tableName' and 'executor' (use auditReader(executor))",
            ),
          );
        return { getAuditHistory: missing, asOf: missing, restoreFromAudit: missing };
      }
      const reader = (): AuditReader =>
        auditReader(executor, {
          table: auditTable,
          ...(options.primaryKey === undefined ? {} : { primaryKey: options.primaryKey }),
        });
      return {
        getAuditHistory: (id) => reader().getAuditHistory(tableName, id),
        asOf: (id, time) => reader().asOf(tableName, id, time),
        restoreFromAudit: (auditId, restoreOptions) => reader().restoreFromAudit(auditId, restoreOptions),
      };
    },
  } satisfies AuditPlugin;
}

interface Scope {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

const SAVEPOINT = "kysera_audit";
const BEGIN: Record<DialectName, string> = {
  sqlite: "begin immediate",
  postgres: "begin",
  mysql: "start transaction",
  mssql: "begin transaction",
};

/**
 * Opens an implicit transaction for a lone write, or a savepoint inside the
 * transaction the write runs in (as the executor tracks it), so the write
 * and its audit rows commit or roll back together.
 */
async function openScope(execution: WriteExecution, dialect: DialectName): Promise<Scope> {
  const run = async (text: string) => void await sql.raw(text).execute(execution.rawDb);
  if (execution.inTransaction) {
    await run(`savepoint ${SAVEPOINT}`);
    return {
      commit: () => run(`release savepoint ${SAVEPOINT}`),
      rollback: async () => {
        await run(`rollback to savepoint ${SAVEPOINT}`);
        await run(`release savepoint ${SAVEPOINT}`);
      },
    };
  }
  await run(BEGIN[dialect]);
  return { commit: () => run("commit"), rollback: () => run("rollback") };
}
