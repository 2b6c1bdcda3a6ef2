/**
 * Opt-in infrastructure for transactions that survive real faults:
 * {@linkcode retryTransaction} runs a whole transaction again on deadlocks,
 * serialization failures, lock timeouts, SQLITE_BUSY and connections lost
 * before COMMIT, with exponential backoff and jitter.
 *
 * @example Retrying a transaction
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { retryTransaction } from "@kysera/kysera/infra"; // npm: "kysera/infra"
 *
 * const db = new Kysely<{ t: { v: number } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("t").addColumn("v", "integer").execute();
 * await retryTransaction(db, (ctx) => ctx.db.insertInto("t").values({ v: 1 }).execute(), { maxAttempts: 3 });
 * assert.equal((await db.selectFrom("t").selectAll().execute()).length, 1);
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./retry_transaction.ts";
export * from "./errors.ts";
