import { type DbContext, type DbInput, toContext } from "./context.ts";
import { TransactionRequiredError } from "./errors.ts";

/**
 * A DAL query function: call it with a Kysely instance, an executor, a
 * transaction or a context, then its own arguments.
 *
 * @typeParam DB The database type.
 * @typeParam A The arguments after the database.
 * @typeParam R The result.
 */
export type QueryFunction<DB, A extends unknown[], R> = (db: DbInput<DB>, ...args: A) => Promise<R>;

/**
 * Makes a typed query function from a function of a context. The function
 * runs on whatever it is called with, so the same query works inside and
 * outside transactions, and every plugin of an executor applies (once).
 *
 * @param fn The query: `(ctx, ...args) => result`.
 * @returns The query function.
 *
 * @example A reusable query
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createQuery, type DbContext } from "@kysera/kysera/dal"; // npm: "kysera/dal"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * interface DB { users: { id: number; email: string } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("email", "text").execute();
 * await db.insertInto("users").values({ id: 1, email: "ada@example.com" }).execute();
 *
 * const findByEmail = createQuery((ctx: DbContext<DB>, email: string) =>
 *   ctx.db.selectFrom("users").select("id").where("email", "=", email).executeTakeFirst()
 * );
 * assert.equal((await findByEmail(db, "ada@example.com"))?.id, 1);
 * await db.destroy();
 * ```
 */
export function createQuery<DB, A extends unknown[], R>(
  fn: (ctx: DbContext<DB>, ...args: A) => R | Promise<R>,
): QueryFunction<DB, A, R> {
  return async (db, ...args) => await fn(toContext(db), ...args);
}

/**
 * Makes a query function that only runs inside a transaction: called with
 * anything else it throws {@linkcode TransactionRequiredError} and sends no
 * SQL. For multi-statement work that must be atomic.
 *
 * @param fn The query: `(ctx, ...args) => result`; `ctx.db` is a transaction.
 * @param name The name errors give (default: the function's name).
 * @returns The query function.
 *
 * @example A query that must run in a transaction
 * ```ts
 * import { createTransactionalQuery, type DbContext } from "@kysera/kysera/dal"; // npm: "kysera/dal"
 *
 * interface DB { accounts: { id: number; balance: number } }
 * const transfer = createTransactionalQuery(async (ctx: DbContext<DB>, from: number, to: number, amount: number) => {
 *   await ctx.db.updateTable("accounts").set((eb) => ({ balance: eb("balance", "-", amount) }))
 *     .where("id", "=", from).execute();
 *   await ctx.db.updateTable("accounts").set((eb) => ({ balance: eb("balance", "+", amount) }))
 *     .where("id", "=", to).execute();
 * }, "transfer");
 * ```
 */
export function createTransactionalQuery<DB, A extends unknown[], R>(
  fn: (ctx: DbContext<DB>, ...args: A) => R | Promise<R>,
  name: string = fn.name || "query",
): QueryFunction<DB, A, R> {
  return async (db, ...args) => {
    const ctx = toContext(db);
    if (!ctx.isTransaction) throw new TransactionRequiredError(name);
    return await fn(ctx, ...args);
  };
}
