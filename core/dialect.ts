import { type DialectAdapter, type Kysely, MssqlAdapter, MysqlAdapter, PostgresAdapter, SqliteAdapter } from "kysely";

/**
 * The SQL dialects Kysera knows. MariaDB uses `"mysql"`.
 */
export type DialectName = "postgres" | "mysql" | "sqlite" | "mssql";

const ADAPTER_NAMES: Record<string, DialectName> = {
  PostgresAdapter: "postgres",
  MysqlAdapter: "mysql",
  SqliteAdapter: "sqlite",
  MssqlAdapter: "mssql",
};

/**
 * Learns the dialect of a Kysely instance (or transaction) from its adapter,
 * never from SQL text.
 *
 * Adapters are recognised by class (Kysely's four built-in adapters and any
 * subclass, such as those of third-party dialects built on them) and, when a
 * second copy of Kysely is loaded, by the class name.
 *
 * @param db A Kysely instance, a transaction or anything exposing `getExecutor()`.
 * @returns The dialect name.
 * @throws {TypeError} When the adapter is none of Kysely's built-in ones.
 *
 * @example Detecting the dialect of a Kysely instance
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { getDialect } from "@kysera/kysera/core";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * assert.equal(getDialect(db), "sqlite");
 * await db.destroy();
 * ```
 */
export function getDialect(db: Pick<Kysely<never>, "getExecutor">): DialectName {
  return dialectOfAdapter(db.getExecutor().adapter);
}

/**
 * Names the dialect of a Kysely `DialectAdapter`.
 *
 * @param adapter The adapter, as `db.getExecutor().adapter` returns it.
 * @returns The dialect name.
 * @throws {TypeError} When the adapter is none of Kysely's built-in ones.
 *
 * @example Detecting the dialect of an adapter
 * ```ts
 * import assert from "node:assert/strict";
 * import { PostgresAdapter } from "kysely";
 * import { dialectOfAdapter } from "@kysera/kysera/core";
 *
 * assert.equal(dialectOfAdapter(new PostgresAdapter()), "postgres");
 * ```
 */
export function dialectOfAdapter(adapter: DialectAdapter): DialectName {
  if (adapter instanceof PostgresAdapter) return "postgres";
  if (adapter instanceof MysqlAdapter) return "mysql";
  if (adapter instanceof SqliteAdapter) return "sqlite";
  if (adapter instanceof MssqlAdapter) return "mssql";
  // A second copy of kysely (JSR and npm in one process): match by class name
  // along the prototype chain.
  for (
    let proto: unknown = Object.getPrototypeOf(adapter);
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    const dialect = name === undefined ? undefined : ADAPTER_NAMES[name];
    if (dialect !== undefined) return dialect;
  }
  const name = (adapter as { constructor?: { name?: string } }).constructor?.name;
  throw new TypeError(
    `Cannot determine the dialect: the adapter is not one of Kysely's built-in adapters: current adapter is ${
      name ?? typeof adapter
    }`,
  );
}

/**
 * The slot through which an executor tells {@linkcode dialectOfQuery} the
 * dialect of a query built from it (Kysely keeps a query builder's executor
 * private). While `active`, an executor that sees the query's tree being
 * built (in `transformQuery`) sets `dialect`. Kysera's executors do; a
 * custom `QueryExecutor` may.
 */
export interface QueryDialectProbe {
  /** Whether a query's dialect is being asked for. */
  active: boolean;
  /** The answer, set by the query's executor. */
  dialect: DialectName | undefined;
}

/**
 * The one {@linkcode QueryDialectProbe}, shared by executors and
 * {@linkcode dialectOfQuery}.
 *
 * @example An executor answering the probe
 * ```ts
 * import assert from "node:assert/strict";
 * import { dialectOfQuery, QUERY_DIALECT_PROBE } from "@kysera/kysera/core";
 *
 * const query = { toOperationNode: () => { if (QUERY_DIALECT_PROBE.active) QUERY_DIALECT_PROBE.dialect = "postgres"; } };
 * assert.equal(dialectOfQuery(query), "postgres");
 * ```
 */
export const QUERY_DIALECT_PROBE: QueryDialectProbe = { active: false, dialect: undefined };

/**
 * The dialect of a query built from a Kysera executor (or from anything
 * derived from one: a transaction, `withSchema()`), found without the
 * Kysely instance: building the query's tree lets its executor answer
 * through {@linkcode QUERY_DIALECT_PROBE}.
 *
 * @param query A query builder.
 * @returns The dialect, or `undefined` for a query of a plain Kysely instance or of an unknown adapter.
 *
 * @example The dialect of an executor's query
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { dialectOfQuery } from "@kysera/kysera/core";
 * import { createExecutorSync } from "@kysera/kysera/executor";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<{ t: { id: number } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * assert.equal(dialectOfQuery(createExecutorSync(db, []).selectFrom("t").select("id")), "sqlite");
 * assert.equal(dialectOfQuery(db.selectFrom("t").select("id")), undefined);
 * await db.destroy();
 * ```
 */
export function dialectOfQuery(query: { toOperationNode(): unknown }): DialectName | undefined {
  const probe = QUERY_DIALECT_PROBE;
  probe.dialect = undefined;
  probe.active = true;
  try {
    query.toOperationNode();
  } finally {
    probe.active = false;
  }
  const dialect = probe.dialect;
  probe.dialect = undefined;
  return dialect;
}
