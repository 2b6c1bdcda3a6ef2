import type { Kysely, Transaction } from "kysely";
import type { Executor } from "../core/mod.ts";

/**
 * What a DAL query function runs on: the database (a Kysely instance, an
 * executor or a transaction) and whether it is a transaction.
 *
 * @example A query function's context
 * ```ts
 * import type { DbContext } from "@kysera/kysera/dal";
 *
 * interface DB { users: { id: number; email: string } }
 * const byEmail = (ctx: DbContext<DB>, email: string) =>
 *   ctx.db.selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst();
 * ```
 */
export interface DbContext<DB> {
  /** The database to query: a Kysely instance, an executor or a transaction. */
  readonly db: Executor<DB>;
  /** Whether `db` is a transaction. */
  readonly isTransaction: boolean;
}

/** Anything a DAL query function accepts: a Kysely instance, executor, transaction or context. */
export type DbInput<DB> = Kysely<DB> | Transaction<DB> | DbContext<DB>;

/**
 * Turns a Kysely instance, executor, transaction or context into a context.
 *
 * @param input What the caller passed.
 * @returns The context (the same object when `input` is one).
 * @throws {TypeError} When `input` is none of these.
 *
 * @example A context from a Kysely instance
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { toContext } from "@kysera/kysera/dal";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * assert.equal(toContext(db).isTransaction, false);
 * await db.destroy();
 * ```
 */
export function toContext<DB>(input: DbInput<DB>): DbContext<DB> {
  if (isKyselyLike<DB>(input)) return { db: input, isTransaction: input.isTransaction };
  if (typeof input === "object" && input !== null && isKyselyLike((input as DbContext<DB>).db)) {
    const ctx = input as DbContext<DB>;
    // Trust the database, not the flag: a context cannot claim a transaction.
    return ctx.isTransaction === ctx.db.isTransaction ? ctx : { db: ctx.db, isTransaction: ctx.db.isTransaction };
  }
  throw new TypeError(
    `Cannot run the query: expected a Kysely instance, executor, transaction or context: current value is ${
      input === null ? "null" : typeof input
    }`,
  );
}

function isKyselyLike<DB>(value: unknown): value is Kysely<DB> {
  return typeof value === "object" && value !== null &&
    typeof (value as Kysely<DB>).selectFrom === "function" &&
    typeof (value as Kysely<DB>).getExecutor === "function";
}
