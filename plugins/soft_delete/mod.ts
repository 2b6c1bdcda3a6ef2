/**
 * Soft delete that never leaks: `softDeletePlugin({ tables })` hides rows whose
 * `deleted_at` is set from every query through a Kysera executor, wherever
 * the table appears (any alias, joins — outer joins keep their outer rows —,
 * subqueries, CTEs, unions, counts, `exists`, UPDATE and DELETE targets).
 * `withDeleted(fn)` / `onlyDeleted(fn)` opt one call in to deleted rows
 * without lifting any other plugin. Repositories gain `softDelete`,
 * `softDeleteMany`, `restore`, `restoreMany`, `hardDelete`,
 * `findWithDeleted`, `findAllWithDeleted` and `findDeleted`, and their
 * `delete` soft-deletes.
 *
 * Unique columns: a plain unique index would stop a new row from reusing a
 * deleted row's email. Index live rows only:
 *
 * - PostgreSQL and SQLite: a partial unique index,
 *   `create unique index users_email_live on users (email) where deleted_at is null`.
 * - MariaDB / MySQL (no partial indexes): a generated column that is the
 *   email for live rows and `NULL` for deleted ones, with a unique index on
 *   it (unique indexes allow many `NULL`s):
 *   `alter table users add email_live varchar(255) as (if(deleted_at is null, email, null)) virtual`,
 *   `create unique index users_email_live on users (email_live)`.
 *
 * Restoring a row whose email a live row took meanwhile then fails with
 * core's `UniqueConstraintError` on every database.
 *
 * @example Hiding deleted rows in a join
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createExecutorSync } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { softDeletePlugin } from "@kysera/kysera/soft-delete"; // npm: "kysera/soft-delete"
 *
 * interface DB {
 *   users: { id: number; name: string; deleted_at: string | null };
 *   posts: { id: number; user_id: number; title: string; deleted_at: string | null };
 * }
 * const handle = new DatabaseSync(":memory:");
 * handle.exec("create table users (id integer primary key, name text, deleted_at text)");
 * handle.exec("create table posts (id integer primary key, user_id integer, title text, deleted_at text)");
 * handle.exec("insert into users values (1, 'ada', null), (2, 'bob', '2026-01-01')");
 * handle.exec("insert into posts values (1, 1, 'a', null), (2, 2, 'b', null)");
 * const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
 * const executor = createExecutorSync(db, [softDeletePlugin<DB>({ tables: ["users", "posts"] })]);
 *
 * const query = executor.selectFrom("posts as p").leftJoin("users as u", "u.id", "p.user_id")
 *   .select(["p.title", "u.name"]).orderBy("p.title");
 * assert.equal(
 *   query.compile().sql,
 *   'select "p"."title", "u"."name" from "posts" as "p" left join "users" as "u" on "u"."id" = "p"."user_id" and "u"."deleted_at" is null where "p"."deleted_at" is null order by "p"."title"',
 * );
 * const rows = await query.execute();
 * assert.deepEqual(rows.map((r) => [r.title, r.name]), [["a", "ada"], ["b", null]]);
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./soft_delete_plugin.ts";
export * from "./with_deleted.ts";
