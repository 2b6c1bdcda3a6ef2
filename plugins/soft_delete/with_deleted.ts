import { SOFT_DELETE_CONTEXT } from "./_context.ts";

/** Which deleted rows a call opts in to: `"with"` live and deleted rows, `"only"` deleted rows. */
export type DeletedRowsMode = "with" | "only";

/**
 * The soft-delete plugin's context value: the opt-in of the current call
 * (see {@linkcode withDeleted} and {@linkcode onlyDeleted}).
 */
export interface SoftDeleteScope {
  /** Which rows the covered tables show. */
  readonly mode: DeletedRowsMode;
  /** The tables the opt-in applies to; every covered table when `undefined`. */
  readonly tables: ReadonlySet<string> | undefined;
}

/** Options of {@linkcode withDeleted} and {@linkcode onlyDeleted}. */
export interface DeletedRowsOptions {
  /**
   * The tables the opt-in applies to; the other covered tables keep hiding
   * their deleted rows. @default {every covered table}
   */
  readonly tables?: readonly string[];
}

function run<R>(mode: DeletedRowsMode, fn: () => R, options: DeletedRowsOptions): R {
  const tables = options.tables === undefined ? undefined : new Set(options.tables);
  return SOFT_DELETE_CONTEXT.run({ mode, tables }, fn);
}

/**
 * Runs `fn` with soft-deleted rows visible: every query `fn` runs (awaited or
 * not) through an executor with {@linkcode softDeletePlugin} sees live and
 * deleted rows of the covered tables (or of `options.tables`). Every other
 * plugin stays in force; only the soft-delete filter is lifted. Queries
 * outside `fn`, concurrent ones included, are not affected.
 *
 * The opt-in is read when a query is compiled, which `execute()` does.
 *
 * @param fn The call.
 * @param options The tables to opt in (default: every covered table).
 * @returns What `fn` returns.
 *
 * @example Reading deleted rows for one query
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 * import { createExecutorSync } from "@kysera/kysera/executor";
 * import { softDeletePlugin, withDeleted } from "@kysera/kysera/soft-delete";
 *
 * interface DB { users: { id: number; deleted_at: string | null } }
 * const handle = new DatabaseSync(":memory:");
 * handle.exec("create table users (id integer primary key, deleted_at text)");
 * handle.exec("insert into users values (1, null), (2, '2026-01-01T00:00:00.000Z')");
 * const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
 * const executor = createExecutorSync(db, [softDeletePlugin<DB>({ tables: ["users"] })]);
 *
 * const live = await executor.selectFrom("users").select("id").execute();
 * const all = await withDeleted(() => executor.selectFrom("users").select("id").orderBy("id").execute());
 * assert.equal(live.length, 1);
 * assert.equal(all.length, 2);
 * await db.destroy();
 * ```
 */
export function withDeleted<R>(fn: () => R, options: DeletedRowsOptions = {}): R {
  return run("with", fn, options);
}

/**
 * Runs `fn` with only soft-deleted rows visible: every query `fn` runs
 * through an executor with {@linkcode softDeletePlugin} sees only the
 * deleted rows of the covered tables (or of `options.tables`; the other
 * covered tables keep showing only live rows). Every other plugin stays in
 * force.
 *
 * @param fn The call.
 * @param options The tables to opt in (default: every covered table).
 * @returns What `fn` returns.
 *
 * @example Listing the deleted posts of live users
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 * import { createExecutorSync } from "@kysera/kysera/executor";
 * import { onlyDeleted, softDeletePlugin } from "@kysera/kysera/soft-delete";
 *
 * interface DB {
 *   users: { id: number; name: string; deleted_at: string | null };
 *   posts: { id: number; user_id: number; title: string; deleted_at: string | null };
 * }
 * const handle = new DatabaseSync(":memory:");
 * handle.exec("create table users (id integer primary key, name text, deleted_at text)");
 * handle.exec("create table posts (id integer primary key, user_id integer, title text, deleted_at text)");
 * handle.exec("insert into users values (1, 'ada', null), (2, 'bob', '2026-01-01')");
 * handle.exec("insert into posts values (1, 1, 'live', null), (2, 1, 'gone', '2026-01-02'), (3, 2, 'bobs', '2026-01-02')");
 * const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
 * const executor = createExecutorSync(db, [softDeletePlugin<DB>({ tables: ["users", "posts"] })]);
 *
 * const query = executor.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id")
 *   .select(["p.title", "u.name"]);
 * const rows = await onlyDeleted(() => query.execute(), { tables: ["posts"] });
 * assert.deepEqual(rows.map((r) => [r.title, r.name]), [["gone", "ada"]]);
 * await db.destroy();
 * ```
 */
export function onlyDeleted<R>(fn: () => R, options: DeletedRowsOptions = {}): R {
  return run("only", fn, options);
}
