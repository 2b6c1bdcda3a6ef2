/**
 * AU-05: with the grants `createAuditTable` documents (the application's
 * role has only SELECT and INSERT on the audit table), audited writes work
 * and no tampering statement succeeds: not through the executor, not as raw
 * SQL. Runs as a throwaway role on PostgreSQL and a throwaway user on
 * MariaDB; SQLite has no roles.
 */
import assert from "node:assert/strict";
import { type Kysely, sql } from "kysely";
import {
  addIdColumn,
  connectAsRole,
  dbSuite,
  rejection,
  type RoleConnection,
  type TestDatabase,
} from "../../_test/harness.ts";
import { allowRawSql, createExecutorSync } from "../../executor/mod.ts";
import { auditPlugin, auditReader, createAuditTable } from "./mod.ts";

// deno-lint-ignore no-explicit-any
type DB = any;

const suite = dbSuite<DB>(import.meta, {
  async tables(db: Kysely<DB>, database: TestDatabase) {
    await createAuditTable(db);
    await addIdColumn(db.schema.createTable("posts"), database)
      .addColumn("title", "varchar(50)", (c) => c.notNull())
      .execute();
  },
});

/** A role with SELECT, INSERT, UPDATE, DELETE on posts and SELECT, INSERT on audit_logs; a Kysely connected as it. */
function appRole(db: Kysely<DB>, database: TestDatabase): Promise<RoleConnection<DB>> {
  return connectAsRole(db, database, (role, schema) =>
    database === "postgres"
      ? [
        `grant select, insert, update, delete on posts to ${role}`,
        `grant select, insert on audit_logs to ${role}`,
        `grant usage, select on all sequences in schema "${schema}" to ${role}`,
      ]
      : [
        `grant select, insert, update, delete on \`${schema}\`.posts to ${role}`,
        `grant select, insert on \`${schema}\`.audit_logs to ${role}`,
      ]);
}

suite.test(
  "AU-05: with SELECT and INSERT only on the audit table, writes are audited and no tampering succeeds",
  async ({ db, database }) => {
    const { app, drop } = await appRole(db, database);
    try {
      const ex = createExecutorSync(app, [auditPlugin({ tables: ["posts"] })]);
      await ex.insertInto("posts").values({ title: "a" }).execute();
      await ex.updateTable("posts").set({ title: "b" }).execute();
      await ex.deleteFrom("posts").execute();
      const trail = await auditReader(ex).getTableAuditLogs("posts");
      assert.deepEqual(trail.map((e) => e.operation), ["insert", "update", "delete"]);
      const attempts = [
        () => ex.updateTable("audit_logs").set({ actor: "forged" }).execute(),
        () => ex.deleteFrom("audit_logs").execute(),
        () => allowRawSql(() => sql`update audit_logs set actor = 'forged'`.execute(ex)),
        () => allowRawSql(() => sql`delete from audit_logs`.execute(ex)),
        () => allowRawSql(() => sql`truncate table audit_logs`.execute(ex)),
      ];
      let succeeded = 0;
      for (const attempt of attempts) {
        const error = await rejection(attempt()).catch(() => undefined);
        if (error === undefined) succeeded++;
        else assert.match(String(error), /permission denied|command denied/i, String(error));
      }
      assert.equal(succeeded, 0);
      const after = await auditReader(db).getTableAuditLogs("posts");
      assert.deepEqual(after.map((e) => [e.operation, e.actor]), trail.map((e) => [e.operation, e.actor]));
    } finally {
      await drop();
    }
  },
  { databases: ["postgres", "mariadb"] },
);
