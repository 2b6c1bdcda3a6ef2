import type { SqliteDatabase, SqliteStatement } from "kysely";

/**
 * A prepared statement of a synchronous SQLite driver, as `node:sqlite`
 * (`StatementSync`) and `bun:sqlite` (`Statement`) both provide it.
 *
 * Declared structurally so this module needs neither driver's types and loads
 * on every runtime.
 */
export interface SyncSqliteStatementLike {
  /** Runs the statement and returns every row. */
  all(...parameters: never[]): unknown[];
  /** Runs the statement and returns the change count and last row id. */
  run(...parameters: never[]): {
    changes: number | bigint;
    lastInsertRowid: number | bigint;
  };
  /** Runs the statement and iterates the rows. */
  iterate(...parameters: never[]): Iterable<unknown>;
  /** `node:sqlite`: the result columns of the statement. */
  columns?: () => readonly unknown[];
  /** `bun:sqlite`: the result column names of the statement. */
  readonly columnNames?: readonly string[];
}

/**
 * A synchronous SQLite database handle: `node:sqlite`'s `DatabaseSync` or
 * `bun:sqlite`'s `Database`.
 */
export interface SyncSqliteDatabaseLike {
  /** Compiles a statement. */
  prepare(sql: string): SyncSqliteStatementLike;
  /** Closes the database. */
  close(): void;
}

/**
 * Adapts a synchronous SQLite handle (`node:sqlite` under Deno and Node 22+,
 * `bun:sqlite` under Bun) to the database interface of Kysely's
 * `SqliteDialect`, which was written for `better-sqlite3`.
 *
 * `better-sqlite3` does not load in Deno or Bun; this adapter is how Kysera
 * runs on SQLite there. Parameters are passed to the driver unchanged, so the
 * driver's own binding rules apply (numbers, bigints, strings, `Uint8Array`
 * and `null`; booleans and `Date`s must be converted by the caller).
 *
 * @param database An open `DatabaseSync` (node:sqlite) or `Database` (bun:sqlite).
 * @returns The database to hand to `new SqliteDialect({ database })`.
 *
 * @example Kysely on node:sqlite
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<{ person: { id: number; name: string } }>({
 *   dialect: new SqliteDialect({
 *     database: wrapSyncSqlite(new DatabaseSync(":memory:")),
 *   }),
 * });
 * await db.schema.createTable("person")
 *   .addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("name", "text").execute();
 * await db.insertInto("person").values({ id: 1, name: "Ada" }).execute();
 * const rows = await db.selectFrom("person").selectAll().execute();
 * assert.deepEqual(rows.map((r) => ({ ...r })), [{ id: 1, name: "Ada" }]); // node:sqlite rows have a null prototype
 * await db.destroy();
 * ```
 */
export function wrapSyncSqlite(database: SyncSqliteDatabaseLike): SqliteDatabase {
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteStatement {
      const statement = database.prepare(sql);
      const columnCount = statement.columns ? statement.columns().length : statement.columnNames?.length ?? 0;
      const args = (parameters: ReadonlyArray<unknown>) => parameters as never[];
      return {
        reader: columnCount > 0,
        all: (parameters) => statement.all(...args(parameters)),
        run: (parameters) => statement.run(...args(parameters)),
        iterate: (parameters) => statement.iterate(...args(parameters))[Symbol.iterator]() as IterableIterator<unknown>,
      };
    },
  };
}
