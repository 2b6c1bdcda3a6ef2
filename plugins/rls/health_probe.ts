import type { Kysely } from "kysely";
import { getDialect, parseDatabaseError } from "../../core/mod.ts";

/**
 * A health probe that an RLS executor accepts: `select 1 as "ok"` sent as a
 * builder query with no table (`selectNoFrom`), so no policy applies and no
 * context is needed, where `` sql`select 1` `` is raw SQL, which the RLS
 * plugin refuses (`RawSqlRefusedError`) outside a system context. Works on
 * any Kysely instance or executor, with or without plugins. (Raw SQL on
 * purpose: wrap it in the executor's `allowRawSql(fn)`.)
 *
 * @typeParam DB The database type.
 * @param db The executor (or Kysely instance) to probe.
 * @returns When the database answered.
 * @throws {DatabaseError} When it did not (a `ConnectionError`, say), translated for the dialect.
 *
 * @example A readiness check under RLS
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, sql, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 * import { createExecutorSync, isRawSqlRefusedError } from "@kysera/kysera/executor";
 * import { defineRLSSchema, filter, healthProbe, rlsPlugin } from "@kysera/kysera/rls";
 *
 * interface DB { posts: { id: number; tenant_id: number } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * const schema = defineRLSSchema<DB>({ posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] } });
 * const executor = createExecutorSync(db, [rlsPlugin({ schema })]);
 *
 * await healthProbe(executor); // no RLS context needed
 * await assert.rejects(sql`select 1`.execute(executor), isRawSqlRefusedError);
 * await db.destroy();
 * ```
 */
export async function healthProbe<DB>(db: Kysely<DB>): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const any = db as Kysely<any>;
  try {
    await any.selectNoFrom((eb) => eb.lit(1).as("ok")).execute();
  } catch (error) {
    throw parseDatabaseError(error, getDialect(any));
  }
}
