/**
 * The built-in plugins compose with each other and with any other plugin, in
 * either order (issue 7, item 7; issue 9): soft delete, timestamps, audit and
 * a tenant scope on one executor, through repositories and builders, on every
 * database.
 */
import assert from "node:assert/strict";
import type { Generated, Kysely } from "kysely";
import { isNotFoundError } from "../core/mod.ts";
import { addIdColumn, dbSuite, plainRows, rejection, type TestDatabase } from "../_test/harness.ts";
import { createExecutorSync, getRawDb, type KyseraPlugin } from "../executor/mod.ts";
import { createORM } from "../repository/mod.ts";
import { softDeletePlugin, withDeleted } from "./soft_delete/mod.ts";
import { timestampsPlugin } from "./timestamps/mod.ts";
import { auditPlugin, auditReader, createAuditTable } from "./audit/mod.ts";

interface DB {
  posts: {
    id: Generated<number>;
    tenant_id: number;
    title: string;
    created_at: Generated<unknown>;
    updated_at: Generated<unknown>;
    deleted_at: unknown;
  };
}

const timestamp = (database: TestDatabase) =>
  database === "postgres" ? "timestamptz" : database === "mariadb" ? "datetime(3)" : "text";

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("posts"), database)
      .addColumn("tenant_id", "integer", (c) => c.notNull())
      .addColumn("title", "varchar(50)", (c) => c.notNull())
      .addColumn("created_at", timestamp(database))
      .addColumn("updated_at", timestamp(database))
      .addColumn("deleted_at", timestamp(database))
      .execute();
  },
});

const T1 = new Date("2026-05-01T10:00:00.000Z");
const T2 = new Date("2026-05-02T10:00:00.000Z");
const T3 = new Date("2026-05-03T10:00:00.000Z");

/** A stored timestamp as epoch milliseconds: a Date (PostgreSQL, MariaDB) or an ISO string (SQLite). */
function ms(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.getTime() : Date.parse(String(value));
}

const tenantOne: KyseraPlugin = {
  name: "tenant",
  scopeRows: (ref, eb) => ref.table === "posts" ? eb(ref.column("tenant_id"), "=", 1) : undefined,
};

for (const order of ["soft delete, then timestamps", "timestamps, then soft delete"] as const) {
  suite.test(`soft delete, timestamps and a tenant scope compose (${order})`, async ({ db }) => {
    let now = T1;
    const clock = () => now;
    const softDelete = softDeletePlugin({ clock });
    const timestamps = timestampsPlugin({ clock });
    const plugins = order.startsWith("soft")
      ? [softDelete, timestamps, tenantOne] as const
      : [tenantOne, timestamps, softDelete] as const;
    const executor = createExecutorSync(db, [...plugins]);
    const raw = getRawDb(executor) as Kysely<DB>;
    const posts = createORM(executor, [...plugins]).createRepository({ tableName: "posts" });

    const a = await posts.create({ tenant_id: 1, title: "a" });
    await posts.create({ tenant_id: 1, title: "b" });
    await raw.insertInto("posts").values({ tenant_id: 2, title: "other tenant" }).execute();
    assert.deepEqual((await posts.findAll()).map((p) => p.title).sort(), ["a", "b"], "tenant scope");
    const created = await raw.selectFrom("posts").selectAll().where("id", "=", a.id).executeTakeFirstOrThrow();
    assert.equal(ms(created.created_at), T1.getTime(), "created_at from the clock");
    assert.equal(ms(created.updated_at), T1.getTime());

    now = T2;
    await posts.softDelete(a.id);
    const deleted = await raw.selectFrom("posts").selectAll().where("id", "=", a.id).executeTakeFirstOrThrow();
    assert.equal(ms(deleted.deleted_at), T2.getTime(), "deleted_at from the clock");
    assert.equal(ms(deleted.updated_at), T2.getTime(), "the soft delete is an update: updated_at moves");
    assert.deepEqual((await posts.findAll()).map((p) => p.title), ["b"], "the deleted row is hidden");

    // A builder update cannot touch the deleted row, so its updated_at stays.
    now = T3;
    const updated = await executor.updateTable("posts").set({ title: "renamed" }).where("id", "=", a.id)
      .executeTakeFirstOrThrow();
    assert.equal(updated.numUpdatedRows, 0n);
    const untouched = await raw.selectFrom("posts").selectAll().where("id", "=", a.id).executeTakeFirstOrThrow();
    assert.equal(untouched.title, "a");
    assert.equal(ms(untouched.updated_at), T2.getTime());
    assert.ok(isNotFoundError(await rejection(posts.update(a.id, { title: "renamed" }))));

    // Opting in to deleted rows keeps the tenant scope.
    const all = await withDeleted(() => executor.selectFrom("posts").select("title").orderBy("title").execute());
    assert.deepEqual(plainRows(all), [{ title: "a" }, { title: "b" }]);

    const restored = await posts.restore<{ title: string }>(a.id);
    assert.equal(restored.title, "a");
    const back = await raw.selectFrom("posts").selectAll().where("id", "=", a.id).executeTakeFirstOrThrow();
    assert.equal(back.deleted_at, null);
    assert.equal(ms(back.updated_at), T3.getTime(), "the restore is an update too");
  });
}

for (const order of ["audit first", "audit last"] as const) {
  suite.test(`audit records the writes of soft delete and timestamps (${order})`, async ({ db }) => {
    await createAuditTable(db);
    let now = T1;
    const clock = () => now;
    const others = [softDeletePlugin({ clock, tables: ["posts"] }), timestampsPlugin({ clock, tables: ["posts"] })];
    const audit = auditPlugin({ clock, tables: ["posts"], actor: () => "ada" });
    const plugins = order === "audit first" ? [audit, ...others] as const : [...others, audit] as const;
    const executor = createExecutorSync(db, [...plugins]);
    const posts = createORM(executor, [...plugins]).createRepository({ tableName: "posts" });

    const post = await posts.create({ tenant_id: 1, title: "a" });
    now = T2;
    await posts.softDelete(post.id);
    now = T3;
    await posts.restore(post.id);
    await posts.hardDelete(post.id);

    const history = await auditReader(db).getAuditHistory("posts", post.id);
    assert.deepEqual(history.map((e) => e.operation), ["insert", "update", "update", "delete"]);
    assert.ok(history.every((e) => e.actor === "ada"));
    const [created, softDeleted, restored] = history;
    assert.equal(ms(created!.newValues?.created_at), T1.getTime(), "the audit row holds the stamped insert");
    assert.deepEqual([...softDeleted!.changedFields].sort(), ["deleted_at", "updated_at"]);
    assert.equal(softDeleted!.oldValues?.deleted_at, null);
    assert.equal(ms(softDeleted!.newValues?.deleted_at), T2.getTime());
    assert.deepEqual([...restored!.changedFields].sort(), ["deleted_at", "updated_at"]);
    assert.equal(restored!.newValues?.deleted_at, null);
  });
}
