/** Shared fixtures of the executor tests (private). */
import type { Generated, Kysely } from "kysely";
import type { ExpectedSql, TestDatabase } from "../_test/harness.ts";
import { addIdColumn } from "../_test/harness.ts";
import type { KyseraPlugin } from "./mod.ts";

export interface DB {
  users: { id: Generated<number>; tenant_id: number; name: string; manager_id: number | null };
  posts: { id: Generated<number>; tenant_id: number; user_id: number; title: string };
  audit: { id: Generated<number>; note: string };
}

/** users 1 ada (t1), 2 bob (t2, manager 1), 3 cy (t1, manager 1); posts a1 (t1, ada), b1 (t2, bob), x (t1, bob), y (t2, ada). */
// deno-lint-ignore no-explicit-any
export async function tables(db: Kysely<any>, database: TestDatabase): Promise<void> {
  await addIdColumn(db.schema.createTable("users"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("name", "varchar(50)", (c) => c.notNull())
    .addColumn("manager_id", "integer")
    .execute();
  await addIdColumn(db.schema.createTable("posts"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("user_id", "integer", (c) => c.notNull())
    .addColumn("title", "varchar(50)", (c) => c.notNull().unique())
    .execute();
  await addIdColumn(db.schema.createTable("audit"), database)
    .addColumn("note", "varchar(200)", (c) => c.notNull())
    .execute();
  await db.insertInto("users").values([
    { tenant_id: 1, name: "ada", manager_id: null },
    { tenant_id: 2, name: "bob", manager_id: 1 },
    { tenant_id: 1, name: "cy", manager_id: 1 },
  ]).execute();
  await db.insertInto("posts").values([
    { tenant_id: 1, user_id: 1, title: "a1" },
    { tenant_id: 2, user_id: 2, title: "b1" },
    { tenant_id: 1, user_id: 2, title: "x" },
    { tenant_id: 2, user_id: 1, title: "y" },
  ]).execute();
}

/** A row scope `tenant_id = 1` on users and posts. */
export const tenantScope: KyseraPlugin = {
  name: "tenant",
  scopeRows: (ref, eb) =>
    ref.table === "users" || ref.table === "posts" ? eb(ref.column("tenant_id"), "=", 1) : undefined,
};

/**
 * Expected SQL written once with `"` quotes and `?` placeholders: MySQL gets
 * backticks, PostgreSQL `$n`.
 */
export function sqlOf(sql: string, parameters: readonly unknown[]): ExpectedSql {
  let n = 0;
  return {
    sqlite: { sql, parameters },
    mysql: { sql: sql.replaceAll('"', "`"), parameters },
    postgres: { sql: sql.replace(/\?/g, () => `$${++n}`), parameters },
  };
}
