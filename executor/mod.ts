/**
 * Kysera's executor: `createExecutor(db, plugins)` returns a `Kysely<DB>`
 * whose every query (builder, raw SQL, inside and outside transactions,
 * controlled transactions and savepoints, `connection()`, `withSchema()`,
 * `withPlugin()`, `withoutPlugins()`) passes the plugins.
 *
 * Plugins work on Kysely's operation-node tree: row scopes
 * (`scopeRows`) are ANDed onto every reference to a table, under any alias,
 * in FROM, joins, subqueries, CTEs, set operations, UPDATE/DELETE targets,
 * `UPDATE ... FROM`, `DELETE ... USING` and `INSERT ... SELECT`; write hooks
 * (`onWrite`) see and amend inserts and updates; `aroundWrite` runs around
 * each write on its connection; `interceptQuery` gets a builder over the
 * top-level statement; `rawSql` says what to do with SQL no hook can read.
 *
 * @example Scoping every reference to a table
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync, type KyseraPlugin } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * interface DB { posts: { id: number; tenant_id: number; author: string } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * const tenant: KyseraPlugin = {
 *   name: "tenant",
 *   scopeRows: (ref, eb) => ref.table === "posts" ? eb(ref.column("tenant_id"), "=", 1) : undefined,
 * };
 * const executor = createExecutorSync(db, [tenant]);
 * const query = executor.selectFrom("posts as a")
 *   .where("a.id", "in", (eb) => eb.selectFrom("posts as b").select("b.id"))
 *   .select("a.author");
 * assert.equal(
 *   query.compile().sql,
 *   'select "a"."author" from "posts" as "a" where "a"."id" in (select "b"."id" from "posts" as "b" where "b"."tenant_id" = ?) and "a"."tenant_id" = ?',
 * );
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./create_executor.ts";
export * from "./order_plugins.ts";
export * from "./plugin_context.ts";
export * from "./transaction_scope.ts";
export * from "./plugin_error.ts";
export * from "./kysera_plugin.ts";
export * from "./table_lookup.ts";
export * from "./query_tree.ts";
