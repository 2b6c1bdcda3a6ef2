/**
 * Type-level tests of the plugins' public API (checked by `deno check`;
 * each `@ts-expect-error` line must fail to compile, or the check fails).
 * The functions are never called: only their types matter.
 */
import assert from "node:assert/strict";
import type { Generated, Kysely, Selectable } from "kysely";
import { createORM } from "../repository/mod.ts";
import { softDeletePlugin } from "./soft_delete/mod.ts";
import { timestampsPlugin } from "./timestamps/mod.ts";
import { type AuditLogTable, auditPlugin } from "./audit/mod.ts";
import { allow, defineRLSSchema, deny, filter, type FilterExpressionContext, rlsContext, validate } from "./rls/mod.ts";
import type { AnyExpressionBuilder } from "../executor/mod.ts";

interface DB {
  users: { id: Generated<number>; name: string; deleted_at: string | null; created_at: string | null };
  posts: { id: Generated<number>; tenant_id: number; title: string; deleted_at: string | null };
  memberships: { user_id: number; group_id: number; deleted_at: string | null; updated_at: string | null };
  countries: { code: string; name: string };
}

function softDeleteTables(): void {
  softDeletePlugin<DB>({ tables: ["users", "posts"] });
  softDeletePlugin<DB>({ tables: "all", excludeTables: ["countries"] });
  // @ts-expect-error: a table the database does not have
  softDeletePlugin<DB>({ tables: ["post"] });
  // @ts-expect-error: `tables` is required (a default over every table breaks tables without the column)
  softDeletePlugin<DB>({});
  // @ts-expect-error: `tables` is required
  softDeletePlugin();
}

function softDeleteMethods(db: Kysely<DB>): void {
  const orm = createORM(db, [softDeletePlugin({ tables: ["users", "memberships"] })]);
  const users = orm.createRepository({ tableName: "users", primaryKey: "id" });
  const posts = orm.createRepository({ tableName: "posts", primaryKey: "id" });
  const memberships = orm.createRepository({ tableName: "memberships", primaryKey: ["user_id", "group_id"] });

  const done: Promise<void> = users.softDelete(1);
  const restored: Promise<Selectable<DB["users"]>> = users.restore(1);
  const found: Promise<Selectable<DB["users"]> | undefined> = users.findWithDeleted(1);
  const deleted: Promise<Selectable<DB["users"]>[]> = users.findDeleted({ where: { name: "ada" } });
  const all: Promise<Selectable<DB["users"]>[]> = users.findAllWithDeleted();
  const many: Promise<number> = memberships.softDeleteMany([{ user_id: 1, group_id: 2 }]);
  void [done, restored, found, deleted, all, many];

  // @ts-expect-error: the key of users is a number
  void users.softDelete("1");
  // @ts-expect-error: a composite key is an object of its columns
  void memberships.restore(1);
  // @ts-expect-error: a composite key needs every column
  void memberships.hardDelete({ user_id: 1 });
  // @ts-expect-error: softDeleteMany takes a list of keys
  void users.softDeleteMany(1);
  // @ts-expect-error: the restored row is the repository's row type
  const wrong: Promise<{ nope: string }> = users.restore(1);
  // @ts-expect-error: findDeleted takes the repository's own find options
  void users.findDeleted({ where: { nme: "ada" } });
  // @ts-expect-error: posts is not covered by the plugin
  void posts.softDelete(1);
  // @ts-expect-error: posts is not covered by the plugin
  void posts.findDeleted();
  // @ts-expect-error: no such method without the plugin
  void createORM(db).createRepository({ tableName: "users" }).softDelete(1);
  void wrong;
}

function softDeleteWithDbType(db: Kysely<DB>): void {
  // With `<DB>` the names are checked as typed; every table of DB is then
  // accepted by the methods' types (the run time still refuses uncovered ones).
  const users = createORM(db, [softDeletePlugin<DB>({ tables: ["users"] })]).createRepository({ tableName: "users" });
  void users.softDelete(1);
  // @ts-expect-error: still typed by the key
  void users.softDelete(true);
}

function timestamps(db: Kysely<DB>): void {
  timestampsPlugin<DB>({ tables: ["memberships"] });
  // @ts-expect-error: a table the database does not have
  timestampsPlugin<DB>({ tables: ["membership"] });
  // @ts-expect-error: `tables` is required
  timestampsPlugin({ clock: "database" });
  const orm = createORM(db, [timestampsPlugin({ tables: ["users"] })]);
  const users = orm.createRepository({ tableName: "users", primaryKey: "id" });
  const countries = orm.createRepository({ tableName: "countries", primaryKey: "code" });
  void users.touch(1);
  const since: Promise<Selectable<DB["users"]>[]> = users.findUpdatedSince(new Date());
  void since;
  // @ts-expect-error: the key of users is a number
  void users.touch("1");
  // @ts-expect-error: countries is not covered by the plugin
  void countries.touch("fr");
}

function audit(): void {
  auditPlugin<DB>({ tables: ["posts"], excludeTables: ["countries"], tenant: (row) => row["tenant_id"] });
  // @ts-expect-error: a table the database does not have
  auditPlugin<DB>({ tables: ["post"] });
  // @ts-expect-error: a table the database does not have
  auditPlugin<DB>({ excludeTables: ["country"] });
  const logs: keyof AuditLogTable = "tenant_id";
  // @ts-expect-error: the audit table has no column tenant
  const wrong: keyof AuditLogTable = "tenant";
  void [logs, wrong];
}

function rls(): void {
  defineRLSSchema<DB>({
    posts: {
      policies: [
        filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId })),
        filter(
          ["read", "all"],
          (eb: AnyExpressionBuilder, ctx: FilterExpressionContext<DB["posts"]>) => eb(ctx.column("title"), "!=", ""),
        ),
        allow(["read", "update"], () => true),
        deny("delete"),
        validate(["create", "update"], (ctx) => ctx.data?.["title"] !== ""),
      ],
    },
  });
  defineRLSSchema<DB>({
    // @ts-expect-error: posts has no column tenantId
    posts: { policies: [filter("all", (ctx) => ({ tenantId: ctx.auth.tenantId }))] },
  });
  defineRLSSchema<DB>({
    // @ts-expect-error: a table the database does not have
    post: { policies: [] },
  });
  // A filter declared on its own takes the row type.
  const tenant = filter<DB["posts"]>("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }));
  defineRLSSchema<DB>({ posts: { policies: [tenant] } });
  // @ts-expect-error: posts has no column tenantId
  filter<DB["posts"]>("all", (ctx) => ({ tenantId: ctx.auth.tenantId }));
  filter<DB["posts"]>("read", (eb: AnyExpressionBuilder, ctx: FilterExpressionContext<DB["posts"]>) =>
    // @ts-expect-error: posts has no column owner_id
    eb(ctx.column("owner_id"), "=", ctx.auth.userId));
  // @ts-expect-error: a filter does not apply to deletes
  filter(["read", "delete"], () => ({}));

  const userId: string | number | undefined = rlsContext.userId();
  const tenantId: string | number | undefined = rlsContext.tenantId();
  // @ts-expect-error: undefined outside an RLS context
  const strict: string | number = rlsContext.userId();
  void [userId, tenantId, strict];
}

Deno.test("the plugins' types are checked by deno check", () => {
  assert.equal(
    [softDeleteTables, softDeleteMethods, softDeleteWithDbType, timestamps, audit, rls].every((f) =>
      typeof f === "function"
    ),
    true,
  );
});
