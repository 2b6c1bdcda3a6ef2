/**
 * Kysera's core: typed errors and their per-dialect translation from driver
 * errors, dialect detection, offset and keyset (cursor) pagination, the logger
 * interface and shared types.
 *
 * @example Translating a driver error
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { getDialect, isNotNullError, parseDatabaseError } from "@kysera/kysera/core"; // npm: "kysera/core"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<{ users: { email: string | null } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("email", "text", (c) => c.notNull()).execute();
 * const error = await db.insertInto("users").values({ email: null }).execute()
 *   .then(() => undefined, (raw) => parseDatabaseError(raw, getDialect(db)));
 * assert.ok(isNotNullError(error));
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./dialect.ts";
export * from "./errors.ts";
export * from "./parse_database_error.ts";
export * from "./logger.ts";
export * from "./paginate.ts";
export * from "./paginate_cursor.ts";
export * from "./order_input.ts";
export * from "./cursor_codec.ts";
export type * from "./types.ts";
