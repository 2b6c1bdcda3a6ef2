import { type ControlledTransaction, type IsolationLevel, type Kysely, sql, type Transaction } from "kysely";
import { allowRawSql, inTransactionScope } from "../executor/mod.ts";
import { type DbContext, type DbInput, toContext } from "./context.ts";

/** Options of {@linkcode transaction}. */
export interface TransactionOptions {
  /** The isolation level of a new transaction. Not allowed on a nested call. */
  isolationLevel?: IsolationLevel;
  /** The access mode of a new transaction. Not allowed on a nested call. */
  accessMode?: "read only" | "read write";
}

let savepoints = 0;

/**
 * Runs `fn` in a transaction and commits when it resolves, or rolls back
 * when it throws (and rethrows).
 *
 * - On a Kysely instance or executor: a new transaction, with the isolation
 *   level and access mode asked for. An executor's plugins apply to every
 *   query of the transaction, exactly once.
 * - Inside a transaction (a transaction or a context of one): a savepoint, on
 *   every dialect. If `fn` throws, the work since the savepoint is rolled
 *   back alone and the error propagates; the outer transaction goes on.
 * - If COMMIT fails (a deferred constraint, a serialization failure), the
 *   transaction is rolled back, its connection goes back to the pool, and
 *   the commit's error is thrown.
 * - If rolling back fails too, the original error is the one thrown; the
 *   rollback failure is attached to it as `rollbackError` when the error
 *   object allows it.
 * - On an executor, `fn` runs as the transaction's callback: a query it
 *   sends through the executor itself instead of `ctx.db` (an unbound
 *   repository, say) is refused with `OutsideTransactionError` (see the
 *   executor's `outsideTransaction` option).
 *
 * @param db A Kysely instance, an executor, a transaction or a context.
 * @param fn The work, given a context whose `db` is the transaction.
 * @param options The isolation level and access mode of a new transaction.
 * @returns What `fn` returns.
 * @throws {TypeError} When a nested call asks for an isolation level or access mode.
 *
 * @example Nested work rolled back alone
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { transaction } from "@kysera/kysera/dal"; // npm: "kysera/dal"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<{ log: { msg: string } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("log").addColumn("msg", "text").execute();
 * await transaction(db, async (ctx) => {
 *   await ctx.db.insertInto("log").values({ msg: "kept" }).execute();
 *   await transaction(ctx, async (inner) => {
 *     await inner.db.insertInto("log").values({ msg: "undone" }).execute();
 *     throw new Error("inner failure");
 *   }).catch(() => {});
 * });
 * const log = await db.selectFrom("log").select("msg").execute();
 * assert.deepEqual(log.map((l) => l.msg), ["kept"]);
 * await db.destroy();
 * ```
 */
export async function transaction<DB, R>(
  db: DbInput<DB>,
  fn: (ctx: DbContext<DB>) => Promise<R>,
  options: TransactionOptions = {},
): Promise<R> {
  const outer = toContext(db);
  if (outer.isTransaction) {
    if (options.isolationLevel !== undefined || options.accessMode !== undefined) {
      throw new TypeError(
        "Cannot start a nested transaction with 'isolationLevel' or 'accessMode': a savepoint inherits the transaction's settings",
      );
    }
    return await inSavepoint(outer.db as Transaction<DB>, fn);
  }
  let builder = (outer.db as Kysely<DB>).startTransaction();
  if (options.isolationLevel !== undefined) builder = builder.setIsolationLevel(options.isolationLevel);
  if (options.accessMode !== undefined) builder = builder.setAccessMode(options.accessMode);
  const trx = await builder.execute();
  let result: R;
  try {
    result = await inTransactionScope(trx, () => fn({ db: trx, isTransaction: true }));
  } catch (error) {
    await trx.rollback().execute().catch((rollbackError) => attach(error, rollbackError));
    throw error;
  }
  try {
    await trx.commit().execute();
  } catch (error) {
    // COMMIT failed (a deferred constraint, a serialization failure): Kysely
    // releases the connection only on its own abort error, so roll back to
    // end the transaction (SQLite keeps it open after a failed COMMIT) and
    // give the connection back to the pool.
    if (!trx.isCommitted && !trx.isRolledBack) {
      await trx.rollback().execute().catch((rollbackError) => attach(error, rollbackError));
    }
    throw error;
  }
  return result;
}

/**
 * The former name of {@linkcode transaction}.
 *
 * @deprecated Use {@linkcode transaction}: `withTransaction` runs a transaction, unlike
 * `repo.withTransaction(trx)` / `orm.withTransaction(trx)`, which only bound to one (now `bind`).
 */
export const withTransaction: typeof transaction = transaction;

async function inSavepoint<DB, R>(trx: Transaction<DB>, fn: (ctx: DbContext<DB>) => Promise<R>): Promise<R> {
  const name = `kysera_sp_${++savepoints}`;
  if (isControlled(trx)) {
    // Kysely's own savepoints, on the controlled transaction's connection.
    const inner = await trx.savepoint(name).execute();
    let result: R;
    try {
      result = await inTransactionScope(inner, () => fn({ db: inner, isTransaction: true }));
    } catch (error) {
      await inner.rollbackToSavepoint(name).execute().catch((rollbackError) => attach(error, rollbackError));
      throw error;
    }
    await inner.releaseSavepoint(name).execute();
    return result;
  }
  // A transaction of `db.transaction().execute(...)` offers no savepoint API:
  // issue the statements on it. They are transaction control, not data
  // access, so an executor's raw-SQL policy lets them through.
  const id = sql.id(name);
  await allowRawSql(() => sql`savepoint ${id}`.execute(trx));
  let result: R;
  try {
    result = await inTransactionScope(trx, () => fn({ db: trx, isTransaction: true }));
  } catch (error) {
    await allowRawSql(() => sql`rollback to savepoint ${id}`.execute(trx))
      .catch((rollbackError) => attach(error, rollbackError));
    throw error;
  }
  await allowRawSql(() => sql`release savepoint ${id}`.execute(trx));
  return result;
}

function isControlled<DB>(trx: Transaction<DB>): trx is ControlledTransaction<DB> {
  return typeof (trx as unknown as { savepoint?: unknown }).savepoint === "function";
}

function attach(error: unknown, rollbackError: unknown): void {
  if (typeof error === "object" && error !== null && Object.isExtensible(error)) {
    Object.defineProperty(error, "rollbackError", { value: rollbackError, configurable: true });
  }
}
