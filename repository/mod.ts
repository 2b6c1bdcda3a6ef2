/**
 * Kysera's repositories: `createORM(executor, plugins)` and
 * `orm.createRepository(config | factory)` give typed CRUD over a table with
 * a where-DSL, batch writes, upserts on every dialect (ON CONFLICT, ON
 * DUPLICATE KEY UPDATE, MERGE), counting, offset and cursor pagination
 * (core's shapes), composite keys, Standard Schema validation and
 * transactions that keep every plugin and extension method. Database
 * errors come out as core's typed errors.
 *
 * @example CRUD with validation
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { type Generated, Kysely, SqliteDialect } from "kysely";
 * import { z } from "zod";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createORM, isValidationError } from "@kysera/kysera/repository"; // npm: "kysera/repository"
 *
 * interface DB { users: { id: Generated<number>; email: string } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("email", "text", (c) => c.notNull()).execute();
 *
 * const users = createORM(db).createRepository({
 *   tableName: "users",
 *   schemas: { create: z.object({ email: z.email() }) },
 * });
 * const error = await users.create({ email: "nope" }).catch((e) => e);
 * assert.ok(isValidationError(error));
 * assert.equal(await users.count(), 0); // nothing written
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./create_orm.ts";
export type * from "./repository.ts";
export type * from "./repository_handle.ts";
export * from "./where.ts";
export * from "./errors.ts";
export type * from "./standard_schema.ts";
