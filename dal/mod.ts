/**
 * The functional data-access layer: query functions that run on a Kysely
 * instance, an executor, a transaction or a context, so the same code works
 * inside and outside transactions with every executor plugin applied once.
 *
 * - {@linkcode createQuery}, {@linkcode createTransactionalQuery}
 * - {@linkcode transaction}: transactions, and savepoints when nested
 * - {@linkcode compose}, {@linkcode chain}, {@linkcode parallel},
 *   {@linkcode conditional}, {@linkcode mapResult}
 *
 * @example Quick start
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createQuery, type DbContext, transaction } from "@kysera/kysera/dal"; // npm: "kysera/dal"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * interface DB { notes: { body: string } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("notes").addColumn("body", "text").execute();
 * const addNote = createQuery((ctx: DbContext<DB>, body: string) =>
 *   ctx.db.insertInto("notes").values({ body }).execute()
 * );
 * await transaction(db, (ctx) => addNote(ctx, "hello"));
 * const notes = await db.selectFrom("notes").select("body").execute();
 * assert.deepEqual(notes.map((n) => n.body), ["hello"]);
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./context.ts";
export * from "./create_query.ts";
export * from "./with_transaction.ts";
export * from "./compose.ts";
export * from "./errors.ts";
