/**
 * The plugins' table lists: required where a default over every table would
 * break tables without the plugin's columns, and checked against the
 * database by `createExecutor` (`verifySchema`), so a misspelt or wrong
 * table fails at start-up with a typed error naming it.
 */
import assert from "node:assert/strict";
import type { Generated, Kysely } from "kysely";
import { addIdColumn, dbSuite, plainRows, rejection, type TestDatabase } from "../_test/harness.ts";
import { createExecutor, createExecutorSync, isPluginSchemaError, type PluginSchemaError } from "../executor/mod.ts";
import { createAuditTable } from "./audit/mod.ts";
import { defineRLSSchema, filter, rlsContext, rlsPlugin } from "./rls/mod.ts";
import { softDeletePlugin } from "./soft_delete/mod.ts";
import { timestampsPlugin } from "./timestamps/mod.ts";

interface DB {
  users: {
    id: Generated<number>;
    tenant_id: number;
    name: string;
    deleted_at: string | null;
    created_at: unknown;
    updated_at: unknown;
  };
  countries: { code: string; name: string };
  audit_logs: { id: Generated<number>; table_name: string };
}

const STAMP = { sqlite: "text", postgres: "timestamptz", mariadb: "datetime(3)" } as const;

// deno-lint-ignore no-explicit-any
async function tables(db: Kysely<any>, database: TestDatabase): Promise<void> {
  await addIdColumn(db.schema.createTable("users"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("name", "varchar(50)", (c) => c.notNull())
    .addColumn("deleted_at", STAMP[database])
    .addColumn("created_at", STAMP[database])
    .addColumn("updated_at", STAMP[database])
    .execute();
  await db.schema.createTable("countries").addColumn("code", "varchar(2)", (c) => c.primaryKey())
    .addColumn("name", "varchar(50)", (c) => c.notNull()).execute();
  await db.insertInto("users").values([
    { tenant_id: 1, name: "ada", deleted_at: null },
    { tenant_id: 1, name: "bob", deleted_at: database === "sqlite" ? "2026-01-01T00:00:00.000Z" : new Date(0) },
  ]).execute();
}

const suite = dbSuite<DB>(import.meta, { tables });

function schemaError(error: unknown, expected: Partial<PluginSchemaError>): void {
  assert.ok(isPluginSchemaError(error), `expected a PluginSchemaError, got ${error}`);
  assert.equal(error.code, "PLUGIN_SCHEMA");
  for (const [key, value] of Object.entries(expected)) {
    assert.equal((error as unknown as Record<string, unknown>)[key], value, key);
  }
}

Deno.test("softDeletePlugin() and timestampsPlugin() require 'tables'", () => {
  for (const create of [softDeletePlugin, timestampsPlugin] as const) {
    assert.throws(() => create({} as never), {
      name: "TypeError",
      message: /'tables' must list the tables that have the .* columns?, or be "all": current value is undefined$/,
    });
    assert.throws(() => create({ tables: [] }), { name: "TypeError", message: /current value is \[\]$/ });
    assert.throws(() => (create as (o?: unknown) => unknown)(), TypeError);
  }
});

suite.test("createExecutor refuses a soft-delete table that does not exist, naming it", async ({ db }) => {
  const error = await rejection(createExecutor(db, [softDeletePlugin({ tables: ["users", "user" as "users"] })]));
  schemaError(error, { plugin: "soft-delete", problem: "missing-table", table: "user", column: undefined });
  assert.equal(
    (error as Error).message,
    "Plugin 'soft-delete' lists table 'user', which does not exist in the database",
  );
});

suite.test("createExecutor refuses a covered table without the deletion column", async ({ db }) => {
  const error = await rejection(createExecutor(db, [softDeletePlugin({ tables: ["users", "countries"] })]));
  schemaError(error, { plugin: "soft-delete", problem: "missing-column", table: "countries", column: "deleted_at" });
  const ok = await createExecutor(db, [softDeletePlugin<DB>({ tables: ["users"] })]);
  assert.deepEqual(plainRows(await ok.selectFrom("users").select("name").execute()), [{ name: "ada" }]);
  assert.deepEqual(plainRows(await ok.selectFrom("countries").select("code").execute()), []);
});

suite.test(`tables: "all" must be meant: every table not excluded needs the column`, async ({ db }) => {
  const all = await rejection(createExecutor(db, [softDeletePlugin({ tables: "all" })]));
  schemaError(all, { problem: "missing-column", table: "countries", column: "deleted_at" });
  const executor = await createExecutor(db, [softDeletePlugin({ tables: "all", excludeTables: ["countries"] })]);
  assert.deepEqual(plainRows(await executor.selectFrom("users").select("name").execute()), [{ name: "ada" }]);
});

suite.test("soft delete over every table and the audit table: refused at start-up, not at the first audit read", async ({ db }) => {
  await createAuditTable(db);
  const error = await rejection(
    createExecutor(db, [softDeletePlugin({ tables: "all", excludeTables: ["countries"] })]),
  );
  schemaError(error, { problem: "missing-column", table: "audit_logs", column: "deleted_at" });
  const executor = await createExecutor(db, [
    softDeletePlugin({ tables: "all", excludeTables: ["countries", "audit_logs"] }),
  ]);
  assert.deepEqual(await executor.selectFrom("audit_logs").select("id").execute(), []);
});

suite.test("createExecutor refuses a timestamps table without the columns", async ({ db }) => {
  const error = await rejection(createExecutor(db, [timestampsPlugin({ tables: ["users", "countries"] })]));
  schemaError(error, { plugin: "timestamps", problem: "missing-column", table: "countries", column: "created_at" });
  const missing = await rejection(createExecutor(db, [timestampsPlugin({ tables: ["userz" as "users"] })]));
  schemaError(missing, { plugin: "timestamps", problem: "missing-table", table: "userz" });
  await createExecutor(db, [timestampsPlugin<DB>({ tables: ["users"] })]);
});

suite.test("createExecutor refuses an RLS schema naming a table that does not exist", async ({ db }) => {
  const tenant = filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }));
  const misspelt = defineRLSSchema<DB>({ ["user" as "users"]: { policies: [tenant] } });
  const error = await rejection(createExecutor(db, [rlsPlugin({ schema: misspelt })]));
  schemaError(error, { plugin: "rls", problem: "missing-table", table: "user" });
  const executor = await createExecutor(db, [
    rlsPlugin({ schema: defineRLSSchema<DB>({ users: { policies: [tenant] } }) }),
  ]);
  const names = await rlsContext.runAsync(
    { auth: { userId: 1, tenantId: 1, roles: [] } },
    () => executor.selectFrom("users").select("name").orderBy("name").execute(),
  );
  assert.deepEqual(plainRows(names), [{ name: "ada" }, { name: "bob" }]);
});

suite.test("createExecutorSync cannot look: it skips the check (documented)", ({ db }) => {
  const executor = createExecutorSync(db, [softDeletePlugin({ tables: ["user" as "users"] })]);
  assert.equal(typeof executor.selectFrom, "function");
  return Promise.resolve();
});
