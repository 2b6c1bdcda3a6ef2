import type { Kysely } from "kysely";
import { familyOfQueryExecutor } from "./_kysera_query_executor.ts";
import { enterScope, exitScopes } from "./_scope.ts";

/**
 * What an executor does with a query sent through it (not through the
 * transaction) while a transaction callback of the same executor runs:
 *
 * - `"throw"`: refuse it with {@linkcode OutsideTransactionError}, before any SQL is sent;
 * - `"warn"`: let it run, and `console.warn` the same message;
 * - `"allow"`: let it run (an independent connection, on purpose).
 */
export type OutsideTransactionPolicy = "throw" | "warn" | "allow";

/**
 * Runs `fn` as the callback of `trx`, a transaction of an executor that
 * `fn` may not bypass: a query `fn` sends through the executor itself (or a
 * repository not bound to `trx`) instead of through `trx` is refused with
 * {@linkcode OutsideTransactionError} (see the executor's
 * `outsideTransaction` option). `executor.transaction().execute(fn)` and the
 * DAL's `transaction()` do this already; call it around the work of a
 * transaction you start with `startTransaction()` yourself. On a
 * transaction of a plain Kysely instance it just runs `fn`.
 *
 * @param trx The transaction.
 * @param fn The work, which should use `trx`.
 * @returns What `fn` returns.
 *
 * @example A controlled transaction, guarded
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync, inTransactionScope, isOutsideTransactionError } from "@kysera/kysera/executor";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<{ t: { v: number } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("t").addColumn("v", "integer").execute();
 * const executor = createExecutorSync(db, []);
 * const trx = await executor.startTransaction().execute();
 * await inTransactionScope(trx, async () => {
 *   await trx.insertInto("t").values({ v: 1 }).execute();
 *   const error = await executor.selectFrom("t").selectAll().execute().catch((e) => e);
 *   assert.ok(isOutsideTransactionError(error));
 * });
 * await trx.commit().execute();
 * const rows = await executor.selectFrom("t").select("v").execute();
 * assert.deepEqual(rows.map((r) => r.v), [1]);
 * await db.destroy();
 * ```
 */
export function inTransactionScope<R>(trx: Pick<Kysely<never>, "getExecutor">, fn: () => Promise<R>): Promise<R> {
  const family = familyOfQueryExecutor(trx.getExecutor());
  return family === undefined ? fn() : enterScope(family, fn);
}

/**
 * Runs `fn` outside any transaction callback: its queries on an executor
 * run on their own connection even while a transaction of that executor
 * is open around the call (an audit line that must survive a rollback, a
 * counter kept outside the transaction). On SQLite, whose Kysely driver has
 * one connection, such a query waits for the transaction to end: do not
 * await it inside the transaction there.
 *
 * @param fn The call whose queries are independent of the transaction.
 * @returns What `fn` returns.
 *
 * @example An independent write from inside a transaction (PostgreSQL, MySQL)
 * ```ts ignore
 * await orm.transaction(async (tx) => {
 *   await allowOutsideTransaction(() => orm.executor.insertInto("attempts").values({ at: new Date() }).execute());
 *   await tx.repository("orders").create(order);
 * });
 * ```
 */
export function allowOutsideTransaction<R>(fn: () => R): R {
  return exitScopes(fn);
}
