/** Shared fixtures of the RLS tests (private). */
import assert from "node:assert/strict";
import type { Generated, Kysely } from "kysely";
import type { TestDatabase } from "../../_test/harness.ts";
import { addIdColumn, plainRows } from "../../_test/harness.ts";
import { defineRLSSchema, filter } from "./schema.ts";
import type { RLSContext } from "./context.ts";

export interface DB {
  users: { id: Generated<number>; tenant_id: Generated<number>; name: string };
  posts: { id: Generated<number>; tenant_id: Generated<number>; user_id: number; title: string; body: string };
  tags: { id: Generated<number>; post_id: number; label: string };
}

/** Every row of tenant 2 carries this marker; it must never reach tenant 1. */
export const MARK = "CANARY-B-7f3a91";

/** Tenant 1's user. */
export const T1: RLSContext = { auth: { userId: 1, tenantId: 1, roles: ["user"] } };
/** Tenant 2's user. */
export const T2: RLSContext = { auth: { userId: 3, tenantId: 2, roles: ["user"] } };

/**
 * users 1 ada (t1), 2 bo (t1), 3 MARK (t2);
 * posts 1 a1 (t1, ada), 2 a2 (t1, user 3 of tenant 2: a planted cross-tenant FK), 3 MARK (t2, user 3);
 * tags (not covered): 1 on post 1, 2 on post 3 (tenant 2's post).
 */
// deno-lint-ignore no-explicit-any
export async function tables(db: Kysely<any>, database: TestDatabase): Promise<void> {
  await addIdColumn(db.schema.createTable("users"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("name", "varchar(100)", (c) => c.notNull())
    .execute();
  await addIdColumn(db.schema.createTable("posts"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("user_id", "integer", (c) => c.notNull())
    .addColumn("title", "varchar(100)", (c) => c.notNull())
    .addColumn("body", "varchar(100)", (c) => c.notNull())
    .execute();
  await addIdColumn(db.schema.createTable("tags"), database)
    .addColumn("post_id", "integer", (c) => c.notNull())
    .addColumn("label", "varchar(100)", (c) => c.notNull())
    .execute();
  await db.insertInto("users").values([
    { tenant_id: 1, name: "ada" },
    { tenant_id: 1, name: "bo" },
    { tenant_id: 2, name: MARK },
  ]).execute();
  await db.insertInto("posts").values([
    { tenant_id: 1, user_id: 1, title: "a1", body: "one" },
    { tenant_id: 1, user_id: 3, title: "a2", body: "two" },
    { tenant_id: 2, user_id: 3, title: MARK, body: MARK },
  ]).execute();
  await db.insertInto("tags").values([{ post_id: 1, label: "x" }, { post_id: 3, label: "y" }]).execute();
}

/** Tenant isolation on users and posts; tags are not covered. */
export const tenantSchema = defineRLSSchema<DB>({
  users: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
  posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
});

/** Tenant 2's rows, read without any plugin, as JSON (for "byte-for-byte unchanged"). */
// deno-lint-ignore no-explicit-any
export async function tenant2Snapshot(raw: Kysely<any>): Promise<string> {
  const users = await raw.selectFrom("users").selectAll().where("tenant_id", "=", 2).orderBy("id").execute();
  const posts = await raw.selectFrom("posts").selectAll().where("tenant_id", "=", 2).orderBy("id").execute();
  return JSON.stringify([plainRows(users), plainRows(posts)]);
}

/** Asserts that nothing of tenant 2 appears in `value` (rows or an error). */
export function assertNoLeak(value: unknown, what = "result"): void {
  const text = value instanceof Error
    ? `${value.message} ${String(value.cause ?? "")}`
    : JSON.stringify(value, jsonSafe);
  assert.ok(!text.includes(MARK), `${what} leaks tenant 2: ${text}`);
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? String(value) : value;
}

/** Rows with numeric-looking values as numbers (counts come back as strings on some drivers). */
export function normal(rows: readonly object[]): Record<string, unknown>[] {
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [
        k,
        typeof v === "bigint" || typeof v === "boolean" || (typeof v === "string" && /^-?\d+$/.test(v)) ? Number(v) : v,
      ]),
    )
  );
}
