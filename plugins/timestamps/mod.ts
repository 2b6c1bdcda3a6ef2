/**
 * The timestamps plugin: `created_at`/`updated_at` set on every INSERT and
 * UPDATE through a Kysera executor (repository, DAL, plain builders, any
 * transaction), including multi-row inserts, `insert ... select` and both
 * paths of an upsert. Values the caller wrote win; the plugin works on the
 * query tree after input validation, so a schema that does not declare the
 * timestamp columns cannot strip them. App clock (injectable) or database
 * clock; `Date`, ISO string or epoch formats. Repositories gain `touch`,
 * `findCreatedBetween`, `findUpdatedSince` and `createWithoutTimestamps`.
 *
 * @example Repository timestamps with a zod schema that does not declare them
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { type Generated, Kysely, SqliteDialect } from "kysely";
 * import { z } from "zod";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createORM } from "@kysera/kysera/repository"; // npm: "kysera/repository"
 * import { timestampsPlugin } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * interface DB {
 *   users: { id: Generated<number>; email: string; created_at: string | null; updated_at: string | null };
 * }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("email", "text").addColumn("created_at", "text").addColumn("updated_at", "text").execute();
 *
 * let now = new Date("2024-05-01T12:00:00.000Z");
 * const orm = createORM(db, [timestampsPlugin<DB>({ tables: ["users"], clock: () => now })]);
 * const users = orm.createRepository({
 *   tableName: "users",
 *   primaryKey: "id",
 *   schemas: { create: z.object({ email: z.string() }) },
 * });
 * const ada = await users.create({ email: "ada@example.com" });
 * assert.equal(ada.created_at, "2024-05-01T12:00:00.000Z");
 * now = new Date("2024-05-03T00:00:00.000Z");
 * await users.touch(ada.id);
 * const updated = await users.findUpdatedSince(new Date("2024-05-02T00:00:00.000Z"));
 * assert.deepEqual(updated.map((u) => u.email), ["ada@example.com"]);
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./timestamps_plugin.ts";
