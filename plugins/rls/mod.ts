/**
 * Row-level security that holds on every query path. Define policies once
 * with `defineRLSSchema` (`filter`, `allow`, `deny`, `validate`,
 * `defaultDeny`), register `rlsPlugin({ schema })` with the executor, and
 * run requests inside `rlsContext.runAsync({ auth }, fn)`:
 *
 * - every reference to a covered table (any alias, joins of every kind,
 *   subqueries, CTEs, unions, counts, `exists`, UPDATE/DELETE targets,
 *   upserts) is filtered in the same statement;
 * - inserts and updates that forge a tenant or move a row to another tenant
 *   throw `RLSPolicyViolation` before anything is sent;
 * - no context throws `RLSContextError`; an `undefined` filter value
 *   matches nothing; raw SQL is refused outside a system context;
 * - `rlsContext.asSystemAsync(fn)`, `bypassRoles` and the repository's
 *   `withoutRLS(fn)` are the only ways around.
 *
 * For defence in depth on PostgreSQL, `generateNativePolicies(schema)`
 * writes `ENABLE`/`FORCE ROW LEVEL SECURITY` and `CREATE POLICY` from the
 * same filters; `nativeRLSPlugin({ checkTables })` sets the context with
 * `set_config(..., true)` in every transaction of the executor (a lone
 * statement gets one of its own) and refuses to start for a role that would
 * bypass the policies (`NativeRLSError`). `rlsTransaction(db, fn)`,
 * `applyNativeContext(trx)` and `checkNativeRLS(db, tables)` do the same by
 * hand on any Kysely.
 *
 * @example A tenant-isolated repository
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createORM } from "@kysera/kysera/repository"; // npm: "kysera/repository"
 * import { defineRLSSchema, filter, rlsContext, rlsPlugin } from "@kysera/kysera/rls"; // npm: "kysera/rls"
 *
 * interface DB { posts: { id: number; tenant_id: number; title: string } }
 * const handle = new DatabaseSync(":memory:");
 * handle.exec("create table posts (id integer primary key, tenant_id integer not null, title text)");
 * handle.exec("insert into posts values (1, 1, 'mine'), (2, 2, 'theirs')");
 * const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
 * const rls = rlsPlugin({
 *   schema: defineRLSSchema<DB>({ posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] } }),
 * });
 * const posts = createORM(db, [rls]).createRepository({ tableName: "posts", primaryKey: "id" });
 *
 * await rlsContext.runAsync({ auth: { userId: 1, tenantId: 1, roles: [] } }, async () => {
 *   assert.equal(await posts.count(), 1);
 *   assert.equal(await posts.findById(2), undefined); // another tenant's row
 *   assert.equal(await posts.canAccess("read", { id: 2, tenant_id: 2 }), false);
 *   assert.equal(await posts.withoutRLS(() => posts.count()), 2);
 * });
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./context.ts";
export * from "./schema.ts";
export * from "./rls_plugin.ts";
export * from "./native.ts";
export * from "./health_probe.ts";
