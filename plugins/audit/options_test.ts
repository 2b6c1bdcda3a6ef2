/** The audit plugin's options and SQL as a user meets them (issue 15): checked tables, the tenant callback, one RETURNING *. */
import assert from "node:assert/strict";
import type { Generated, Kysely } from "kysely";
import { addIdColumn, dbSuite, recordStatements, rejection, type TestDatabase } from "../../_test/harness.ts";
import { createExecutor, createExecutorSync, isPluginError, isPluginSchemaError } from "../../executor/mod.ts";
import { createORM } from "../../repository/mod.ts";
import { type AuditLogTable, auditPlugin, auditReader, createAuditTable } from "./mod.ts";

interface DB {
  posts: { id: Generated<number>; tenant_id: number; title: string };
  audit_logs: AuditLogTable;
}

// deno-lint-ignore no-explicit-any
async function tables(db: Kysely<any>, database: TestDatabase): Promise<void> {
  await createAuditTable(db);
  await addIdColumn(db.schema.createTable("posts"), database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("title", "varchar(50)", (c) => c.notNull())
    .execute();
}

const suite = dbSuite<DB>(import.meta, { tables });

suite.test("auditPlugin({ tables }) with a misspelt table fails at createExecutor, not silently", async ({ db }) => {
  const error = await rejection(createExecutor(db, [auditPlugin({ tables: ["post" as "posts"] })]));
  assert.ok(isPluginSchemaError(error));
  assert.deepEqual([error.plugin, error.problem, error.table], ["audit", "missing-table", "post"]);
  const executor = await createExecutor(db, [auditPlugin<DB>({ tables: ["posts"] })]);
  await executor.insertInto("posts").values({ tenant_id: 1, title: "a" }).execute();
  assert.equal((await auditReader(db).getTableAuditLogs("posts")).length, 1);
});

suite.test("tenant returns the row's column as is: stored as text, no cast needed", async ({ db }) => {
  const executor = createExecutorSync(db, [auditPlugin({ tables: ["posts"], tenant: (row) => row["tenant_id"] })]);
  await executor.insertInto("posts").values([{ tenant_id: 4, title: "a" }, { tenant_id: 5, title: "b" }]).execute();
  const rows = await db.selectFrom("audit_logs").select("tenant_id").orderBy("id").execute();
  assert.deepEqual(rows.map((r) => r.tenant_id), ["4", "5"]);
});

suite.test("a tenant that is not a value refuses the write, nothing written", async ({ db }) => {
  const executor = createExecutorSync(db, [auditPlugin({ tables: ["posts"], tenant: () => ({ id: 4 }) })]);
  const error = await rejection(executor.insertInto("posts").values({ tenant_id: 4, title: "a" }).execute());
  // A plugin hook's TypeError reaches the caller as a PluginError naming the plugin, with the TypeError as cause.
  assert.ok(isPluginError(error), String(error));
  assert.equal(error.plugin, "audit");
  assert.ok(error.cause instanceof TypeError);
  assert.equal(
    error.cause.message,
    `Cannot audit a write to 'posts': 'tenant' must return a string, a number or null: current value is {"id":4}`,
  );
  assert.deepEqual(await db.selectFrom("posts").select("id").execute(), []);
  assert.deepEqual(await db.selectFrom("audit_logs").select("id").execute(), []);
});

suite.test("an audited insert returning * sends * once (not returning *, *)", async ({ db, database }) => {
  const executor = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  const posts = createORM(executor).createRepository({ tableName: "posts", primaryKey: "id" });
  const recorder = await recordStatements(db);
  let created;
  try {
    created = await posts.create({ tenant_id: 1, title: "a" });
  } finally {
    recorder.stop();
  }
  assert.deepEqual({ ...created }, { id: 1, tenant_id: 1, title: "a" });
  const inserts = recorder.sql.filter((s) => s.startsWith("insert into") && !s.includes("audit_logs"));
  assert.equal(inserts.length, 1, inserts.join("\n"));
  assert.match(inserts[0]!, / returning \*$/, database);
  assert.doesNotMatch(inserts[0]!, /returning \*, \*/);
});
