/**
 * The built-in plugins compose with each other and with any other plugin, in
 * either order (issue 7, item 7; issue 9): soft delete, timestamps, audit and
 * a tenant scope on one executor, through repositories and builders, on every
 * database; and audit under row-level security keeps each tenant to its own
 * audit rows (RLS-21, AU-04); keyset pagination walks exactly a tenant's
 * live rows through RLS and soft delete (PP-07).
 */
import assert from "node:assert/strict";
import type { Generated, Kysely } from "kysely";
import { isInvalidCursorError, isKyseraError, isNotFoundError, paginateCursor } from "../core/mod.ts";
import { addIdColumn, type AnyDB, dbSuite, plainRows, rejection, type TestDatabase } from "../_test/harness.ts";
import { createExecutorSync, getRawDb, type KyseraPlugin } from "../executor/mod.ts";
import { createORM } from "../repository/mod.ts";
import { softDeletePlugin, withDeleted } from "./soft_delete/mod.ts";
import { timestampsPlugin } from "./timestamps/mod.ts";
import { type AuditEntry, auditPlugin, auditReader, auditTenantFilter, createAuditTable } from "./audit/mod.ts";
import { defineRLSSchema, deny, filter, isRLSPolicyViolation, rlsContext, rlsPlugin } from "./rls/mod.ts";

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
    const softDelete = softDeletePlugin({ tables: ["posts"], clock });
    const timestamps = timestampsPlugin({ tables: ["posts"], clock });
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

    const restored = await posts.restore(a.id);
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

suite.test("RLS-21/AU-04: under RLS a tenant sees only its own audit rows on every reader path", async ({ db }) => {
  await createAuditTable(db);
  const rls = rlsPlugin({
    schema: defineRLSSchema<DB & { audit_logs: Record<string, unknown> }>({
      posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
      audit_logs: { policies: [filter("read", auditTenantFilter()), deny(["create", "update", "delete"])] },
    }),
  });
  const audit = auditPlugin({
    tables: ["posts"],
    actor: () => String(rlsContext.getUserId()),
    tenant: (row) => row.tenant_id as number,
  });
  const plugins = [rls, audit] as const;
  const executor = createExecutorSync(db, [...plugins]);
  const posts = createORM(executor, [...plugins]).createRepository({ tableName: "posts" });
  // Untyped views for the audit table, which DB does not declare.
  const rawAny = db as Kysely<AnyDB>;
  const anyExecutor = executor as Kysely<AnyDB>;
  const A = { auth: { userId: "ada", tenantId: 1, roles: [] } };
  const B = { auth: { userId: "bob", tenantId: 2, roles: [] } };
  const canary = `CANARY-B-${crypto.randomUUID()}`;

  const [kept, gone] = await rlsContext.runAsync(B, async () => {
    const kept = await posts.create({ tenant_id: 2, title: canary });
    await posts.update(kept.id, { title: `${canary}-2` });
    const gone = await posts.create({ tenant_id: 2, title: `${canary}-3` });
    await posts.delete(gone.id);
    return [kept, gone];
  });
  const own = await rlsContext.runAsync(A, async () => {
    const own = await posts.create({ tenant_id: 1, title: "a" });
    await executor.updateTable("posts").set({ title: "a2" }).where("id", "=", own.id).execute();
    return own;
  });
  // A system job touching both tenants' rows: each audit row carries the tenant of its row.
  await rlsContext.asSystemAsync(() => executor.updateTable("posts").set({ created_at: null }).execute());

  // AU-04: every audit row written under an RLS context carries its tenant.
  const stored = await rawAny.selectFrom("audit_logs").selectAll().execute() as Record<string, unknown>[];
  assert.equal(stored.length, 8);
  assert.equal(stored.filter((r) => r.tenant_id === null).length, 0, "0 null tenant_ids");
  assert.deepEqual(stored.map((r) => r.tenant_id).sort(), ["1", "1", "1", "2", "2", "2", "2", "2"]);
  const ofB = stored.filter((r) => r.tenant_id === "2").map((r) => Number(r.id));
  assert.ok(JSON.stringify(stored).includes(canary), "the raw table holds B's canary (the detector can fire)");

  const later = new Date(Date.now() + 86_400_000);
  const asTenant = (context: typeof A, restore: boolean) =>
    rlsContext.runAsync(context, async () => {
      const reader = auditReader(executor);
      const seen: unknown[] = [];
      const refused: unknown[] = [];
      const read = <T>(value: T): T => (seen.push(value), value);
      const history = read(await reader.getAuditHistory("posts", kept.id));
      const deleted = read(await reader.getAuditHistory("posts", gone.id));
      const table = read(await reader.getTableAuditLogs("posts"));
      const byBob = read(await reader.getUserChanges("bob"));
      const asOf = read(await reader.asOf("posts", kept.id, later));
      const repoHistory = read(await posts.getAuditHistory(kept.id));
      const repoAsOf = read(await posts.asOf(kept.id, later));
      const byId = read(
        plainRows(await anyExecutor.selectFrom("audit_logs").selectAll().where("id", "in", ofB).execute()),
      );
      const plain = read(plainRows(await anyExecutor.selectFrom("audit_logs").selectAll().execute()));
      for (const id of restore ? ofB : []) {
        refused.push(await rejection(reader.restoreFromAudit(id)));
        refused.push(await rejection(posts.restoreFromAudit(id)));
      }
      return { seen, refused, history, deleted, table, byBob, asOf, repoHistory, repoAsOf, byId, plain };
    });

  const a = await asTenant(A, true);
  assert.deepEqual([a.history, a.deleted, a.byBob, a.repoHistory, a.byId], [[], [], [], [], []]);
  assert.deepEqual([a.asOf, a.repoAsOf], [undefined, undefined]);
  assert.deepEqual(a.table.map((e: AuditEntry) => [e.entityId, e.operation, e.tenantId]), [
    [String(own.id), "insert", "1"],
    [String(own.id), "update", "1"],
    [String(own.id), "update", "1"],
  ]);
  assert.equal(a.plain.length, 3);
  assert.ok(a.refused.every((e) => isNotFoundError(e)), "restoring B's entries: not found, as for a missing entry");
  const leaked = JSON.stringify([a.seen, a.refused.map(String)]);
  assert.ok(!leaked.includes(canary), "0 B canaries visible to A");
  assert.ok(!leaked.includes('"tenantId":"2"') && !leaked.includes('"tenant_id":"2"'), "0 B audit rows visible to A");
  // The refused restores changed nothing and wrote no audit row.
  assert.equal((await rawAny.selectFrom("audit_logs").selectAll().execute()).length, 8);
  assert.equal(
    (await db.selectFrom("posts").select("title").where("id", "=", kept.id).executeTakeFirst())?.title,
    `${canary}-2`,
  );

  // The control: B sees its own rows through the same paths.
  const b = await asTenant(B, false);
  assert.deepEqual(b.history.map((e: AuditEntry) => e.operation), ["insert", "update", "update"]);
  assert.equal(b.byId.length, 5);
  assert.ok(JSON.stringify(b.seen).includes(canary));
  assert.equal(b.asOf?.title, `${canary}-2`);

  // The audit table is append-only for the application, and a tenant restores its own entries.
  await rlsContext.runAsync(A, async () => {
    assert.ok(isRLSPolicyViolation(await rejection(anyExecutor.deleteFrom("audit_logs").execute())));
    const update = anyExecutor.updateTable("audit_logs").set({ actor: "x" });
    assert.ok(isKyseraError(await rejection(update.execute())));
    const [, renamed] = await posts.getAuditHistory(own.id);
    await posts.restoreFromAudit(renamed!.id, { force: true });
  });
  assert.equal((await db.selectFrom("posts").select("title").where("id", "=", own.id).executeTakeFirst())?.title, "a");
});

// PP-07: keyset pagination through RLS and soft delete, forward and back,
// with signed cursors bound to the tenant.
suite.test("PP-07: a keyset walk under RLS and soft delete returns exactly the tenant's live rows", async ({ db }) => {
  // 240 rows: tenants 1..3, titles with ties, every fifth row deleted.
  const rows = Array.from({ length: 240 }, (_, i) => ({
    tenant_id: (i % 3) + 1,
    title: `t${String(i % 17).padStart(2, "0")}`,
    deleted_at: i % 5 === 0 ? new Date(Date.UTC(2026, 0, 1)).toISOString().replace("T", " ").slice(0, 19) : null,
  }));
  for (let i = 0; i < rows.length; i += 60) await db.insertInto("posts").values(rows.slice(i, i + 60)).execute();
  const schema = defineRLSSchema<DB>({
    posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
  });
  const ex = createExecutorSync(db, [rlsPlugin({ schema }), softDeletePlugin({ tables: "all" })]);
  const oracle = (await db.selectFrom("posts").select(["id", "title"]).where("tenant_id", "=", 1)
    .where("deleted_at", "is", null).orderBy("title", "desc").orderBy("id", "desc").execute()).map((r) => r.id);
  assert.equal(oracle.length, 64);
  const secret = "composition-secret-of-at-least-32-bytes!";
  const page = (
    ctx: { auth: { userId: number; tenantId: number; roles: string[] } },
    cursor: { after?: string; before?: string; fromEnd?: boolean },
  ) =>
    rlsContext.runAsync(ctx, () =>
      paginateCursor(ex.selectFrom("posts").select(["id", "title"]), {
        db: ex,
        orderBy: [{ column: "title", direction: "desc" }],
        limit: 7,
        secret,
        bind: `tenant:${ctx.auth.tenantId}`,
        ...cursor,
      }));
  const t1 = { auth: { userId: 1, tenantId: 1, roles: [] as string[] } };
  const forward: number[] = [];
  let next: string | null = null;
  let first = true;
  while (first || next !== null) {
    const p = await page(t1, next === null ? {} : { after: next });
    forward.push(...p.data.map((r) => r.id));
    next = p.nextCursor;
    first = false;
  }
  assert.deepEqual(forward, oracle);
  const backward: number[][] = [];
  let prev: string | null = null;
  first = true;
  while (first || prev !== null) {
    const p = await page(t1, prev === null ? { fromEnd: true } : { before: prev });
    backward.unshift(p.data.map((r) => r.id));
    prev = p.prevCursor;
    first = false;
  }
  assert.deepEqual(backward.flat(), oracle);
  // A cursor served to tenant 1 is refused to tenant 2 (CP-02).
  const served = (await page(t1, {})).nextCursor!;
  const t2 = { auth: { userId: 2, tenantId: 2, roles: [] as string[] } };
  assert.ok(isInvalidCursorError(await rejection(page(t2, { after: served }))));
});
