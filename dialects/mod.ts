/**
 * Database adapters that Kysely does not ship.
 *
 * - {@linkcode wrapSyncSqlite}: Kysely's `SqliteDialect` on `node:sqlite`
 *   (Deno, Node 22+) or `bun:sqlite` (Bun), where `better-sqlite3` does not load.
 * - {@linkcode guardPostgresPool}: a `pg.Pool` whose backend killed between two
 *   statements of a transaction rejects the next statement instead of crashing
 *   the process.
 *
 * @example SQLite in Deno
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./guard_postgres_pool.ts";
export * from "./sync_sqlite.ts";
