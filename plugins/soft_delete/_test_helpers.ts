/** Shared fixtures of the soft-delete tests (private). */
import type { Generated, Kysely } from "kysely";
import type { ExpectedSql, TestDatabase } from "../../_test/harness.ts";
import { addIdColumn } from "../../_test/harness.ts";
import type { KyseraPlugin } from "../../executor/mod.ts";

export interface DB {
  users: { id: Generated<number>; tenant_id: number; email: string; name: string; deleted_at: unknown };
  posts: { id: Generated<number>; tenant_id: number; user_id: number; title: string; deleted_at: unknown };
  notes: { id: Generated<number>; body: string };
}

/** The instant soft deletes are stamped with in the tests. */
export const NOW = new Date("2026-03-04T05:06:07.000Z");
/** A fake clock at {@linkcode NOW}. */
export const clock = (): Date => NOW;

/** The column type of `deleted_at` on each database. */
export function timestampType(database: TestDatabase): "timestamptz" | "datetime(3)" | "text" {
  return database === "postgres" ? "timestamptz" : database === "mariadb" ? "datetime(3)" : "text";
}

/**
 * users 1 ada (t1, live), 2 bob (t1, DELETED), 3 cy (t2, live);
 * posts a1 (ada, t1, live), b1 (bob, t1, live), a2 (ada, t1, DELETED), c1 (cy, t2, live);
 * notes: empty, not covered (no deleted_at column).
 */
// deno-lint-ignore no-explicit-any
export async function tables(db: Kysely<any>, database: TestDatabase): Promise<void> {
  await addIdColumn(db.schema.createTable("users"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("email", "varchar(100)", (c) => c.notNull())
    .addColumn("name", "varchar(50)", (c) => c.notNull())
    .addColumn("deleted_at", timestampType(database))
    .execute();
  await addIdColumn(db.schema.createTable("posts"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("user_id", "integer", (c) => c.notNull())
    .addColumn("title", "varchar(50)", (c) => c.notNull())
    .addColumn("deleted_at", timestampType(database))
    .execute();
  await addIdColumn(db.schema.createTable("notes"), database)
    .addColumn("body", "varchar(100)", (c) => c.notNull())
    .execute();
  const gone = "2026-01-01 00:00:00";
  await db.insertInto("users").values([
    { tenant_id: 1, email: "ada@example.com", name: "ada", deleted_at: null },
    { tenant_id: 1, email: "bob@example.com", name: "bob", deleted_at: gone },
    { tenant_id: 2, email: "cy@example.com", name: "cy", deleted_at: null },
  ]).execute();
  await db.insertInto("posts").values([
    { tenant_id: 1, user_id: 1, title: "a1", deleted_at: null },
    { tenant_id: 1, user_id: 2, title: "b1", deleted_at: null },
    { tenant_id: 1, user_id: 1, title: "a2", deleted_at: gone },
    { tenant_id: 2, user_id: 3, title: "c1", deleted_at: null },
  ]).execute();
}

/** A row scope `tenant_id = 1` on users and posts (stands in for RLS). */
export const tenantScope: KyseraPlugin = {
  name: "tenant",
  scopeRows: (ref, eb) =>
    ref.table === "users" || ref.table === "posts" ? eb(ref.column("tenant_id"), "=", 1) : undefined,
};

/** Expected SQL written once with `"` quotes and `?` placeholders. */
export function sqlOf(sql: string, parameters: readonly unknown[] = []): ExpectedSql {
  let n = 0;
  return {
    sqlite: { sql, parameters },
    mysql: { sql: sql.replaceAll('"', "`"), parameters },
    postgres: { sql: sql.replace(/\?/g, () => `$${++n}`), parameters },
  };
}

/** A `deleted_at` value read back, as an ISO string (or `null`). */
export function instant(value: unknown): string | null {
  if (value === null) return null;
  return new Date(value instanceof Date ? value : String(value)).toISOString();
}
