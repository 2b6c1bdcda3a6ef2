import assert from "node:assert/strict";
import { type Kysely, sql } from "kysely";
import { isNotFoundError, isUniqueConstraintError } from "../../core/mod.ts";
import { assertSql, dbSuite, plainRows, rejection } from "../../_test/harness.ts";
import { createExecutorSync, getRawDb } from "../../executor/mod.ts";
import { createORM, isUnfilteredWriteError } from "../../repository/mod.ts";
import { type SoftDeleteOptions, softDeletePlugin, type SoftDeleteRepositoryMethods } from "./mod.ts";
import { clock, type DB, instant, NOW, sqlOf, tables } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

function setup(db: Kysely<DB>, options: Partial<SoftDeleteOptions> = {}) {
  const plugin = softDeletePlugin({ tables: "all", clock, excludeTables: ["notes"], ...options });
  const executor = createExecutorSync(db, [plugin]);
  const orm = createORM(executor, [plugin]);
  return {
    executor,
    raw: getRawDb(executor),
    users: orm.createRepository({ tableName: "users", primaryKey: "id" }),
    posts: orm.createRepository({ tableName: "posts", primaryKey: "id" }),
    notes: orm.createRepository({ tableName: "notes", primaryKey: "id" }),
  };
}

async function deletedAt(raw: Kysely<DB>, table: "users" | "posts", id: number): Promise<string | null | undefined> {
  const row = await raw.selectFrom(table).select("deleted_at").where("id", "=", id).executeTakeFirst();
  return row === undefined ? undefined : instant(row.deleted_at);
}

Deno.test("softDeletePlugin() refuses a table both covered and excluded", () => {
  assert.throws(() => softDeletePlugin({ tables: ["users"], excludeTables: ["users"] }), TypeError);
});

Deno.test("softDeletePlugin() types the added repository methods", () => {
  // Checked by `deno check`, never run.
  const typed = (db: Kysely<DB>) => {
    const users = createORM(db, [softDeletePlugin<DB>({ tables: ["users"] })]).createRepository({ tableName: "users" });
    const count: Promise<number> = users.softDeleteMany([1, 2]);
    const row: Promise<{ name: string } | undefined> = users.findWithDeleted(1);
    // @ts-expect-error: softDeleteMany takes a list of keys
    void users.softDeleteMany(1);
    // @ts-expect-error: no such method without the plugin
    void createORM(db).createRepository({ tableName: "users" }).softDelete(1);
    const methods: SoftDeleteRepositoryMethods = users;
    return [count, row, methods];
  };
  assert.equal(typeof typed, "function");
});

suite.test("repository reads see live rows only; counts exclude deleted rows", async ({ db }) => {
  const { users, posts } = setup(db);
  assert.equal(await users.findById(2), undefined);
  assert.deepEqual((await users.findAll({ orderBy: "id" })).map((u) => u.name), ["ada", "cy"]);
  assert.equal(await users.count(), 2);
  assert.equal(await users.exists({ name: "bob" }), false);
  assert.equal(await posts.count({ user_id: 1 }), 1);
  const page = await users.paginate({ page: 1, limit: 10, orderBy: "id", withTotal: true });
  assert.deepEqual(page.data.map((u) => u.name), ["ada", "cy"]);
});

suite.test("delete(id) soft-deletes with the clock's time", async (ctx) => {
  const { users, raw } = setup(ctx.db);
  await users.delete(1);
  assert.equal(await deletedAt(raw, "users", 1), NOW.toISOString());
  assert.equal(await users.findById(1), undefined);
  assert.equal(await users.count(), 1);
  // a second delete finds no live row
  assert.ok(isNotFoundError(await rejection(users.delete(1))));
  assert.ok(isNotFoundError(await rejection(users.softDelete(2))));
});

suite.test("deleteMany(where) soft-deletes the matching live rows", async (ctx) => {
  const { posts, raw } = setup(ctx.db);
  assert.equal(await posts.deleteMany({ user_id: 1 }), 1);
  assert.equal(await deletedAt(raw, "posts", 1), NOW.toISOString());
  // a2 keeps its original deletion time
  assert.notEqual(await deletedAt(raw, "posts", 3), NOW.toISOString());
  // A where with no condition is refused, as the repository's own deleteMany refuses it.
  for (const where of [undefined, {}, { user_id: undefined }]) {
    assert.ok(isUnfilteredWriteError(await rejection(posts.deleteMany(where as never))), JSON.stringify(where));
  }
  assert.equal(await posts.count(), 2);
  assert.equal(await posts.deleteAll(), 2);
  assert.equal(await posts.count(), 0);
  assert.equal((await raw.selectFrom("posts").select("id").execute()).length, 4);
});

suite.test("excludeTables matches a table named in another case (SQLite reads NOTES as notes)", async ({ db }) => {
  const { executor, notes } = setup(db);
  await notes.create({ body: "n" });
  const query = executor.selectFrom("NOTES" as "notes").select("body");
  assertSql({ dialect: "sqlite" }, query, { sqlite: { sql: `select "body" from "NOTES"`, parameters: [] } });
  assert.deepEqual(plainRows(await query.execute()), [{ body: "n" }]);
  assert.equal(softDeletePlugin({ tables: "all", excludeTables: ["notes"] }).covers("NOTES", "sqlite"), false);
  // On PostgreSQL "NOTES" is another table: covered.
  assert.equal(softDeletePlugin({ tables: "all", excludeTables: ["notes"] }).covers("NOTES", "postgres"), true);
}, { databases: ["sqlite"] }); // PostgreSQL and MariaDB (lower_case_table_names=0) have no table NOTES to query

suite.test("repositoryDelete: 'hard' keeps delete() a real delete of live rows", async ({ db }) => {
  const { users, raw } = setup(db, { repositoryDelete: "hard" });
  await users.delete(1);
  assert.equal(await deletedAt(raw, "users", 1), undefined);
  assert.ok(isNotFoundError(await rejection(users.delete(2))));
  assert.equal(await deletedAt(raw, "users", 2) !== undefined, true);
});

suite.test("softDeleteMany, restore and restoreMany", async (ctx) => {
  const { users, posts, raw } = setup(ctx.db);
  assert.equal(await posts.softDeleteMany([1, 2, 3]), 2);
  assert.equal(await posts.count(), 1);
  assert.equal(await posts.softDeleteMany([]), 0);
  const bob = await users.restore(2);
  assert.equal(bob.name, "bob");
  assert.equal(bob.deleted_at, null);
  assert.equal(await deletedAt(raw, "users", 2), null);
  assert.ok(isNotFoundError(await rejection(users.restore(1))), "restoring a live row");
  assert.ok(isNotFoundError(await rejection(users.restore(99))));
  assert.equal(await posts.restoreMany([1, 2, 3, 4]), 3);
  assert.equal(await posts.count(), 4);
});

suite.test("restore SQL scopes the target to deleted rows", async (ctx) => {
  const { executor } = setup(ctx.db);
  const { onlyDeleted } = await import("./mod.ts");
  const q = onlyDeleted(() => executor.updateTable("users").set({ deleted_at: null }).where("id", "=", 2).compile());
  assert.match(q.sql, /"?deleted_at"? is not null|`deleted_at` is not null/);
  assertSql(
    ctx,
    { compile: () => q },
    sqlOf('update "users" set "deleted_at" = ? where "id" = ? and "users"."deleted_at" is not null', [null, 2]),
  );
});

suite.test("hardDelete removes live and deleted rows for real", async (ctx) => {
  const { users, raw } = setup(ctx.db);
  await users.hardDelete(2);
  await users.hardDelete(1);
  assert.deepEqual(plainRows(await raw.selectFrom("users").select("id").execute()), [{ id: 3 }]);
  assert.ok(isNotFoundError(await rejection(users.hardDelete(2))));
});

suite.test("findWithDeleted, findAllWithDeleted, findDeleted", async ({ db }) => {
  const { users, posts } = setup(db);
  assert.equal((await users.findWithDeleted(2))?.name, "bob");
  assert.equal(await users.findWithDeleted(99), undefined);
  assert.deepEqual((await users.findAllWithDeleted({ orderBy: "id" })).map((u) => u.name), [
    "ada",
    "bob",
    "cy",
  ]);
  assert.deepEqual((await posts.findDeleted()).map((p) => p.title), ["a2"]);
  assert.deepEqual(await posts.findDeleted({ where: { user_id: 2 } }), []);
  // the opt-in ends with the call
  assert.equal(await users.count(), 2);
});

suite.test("updates of a soft-deleted row affect nothing", async (ctx) => {
  const { users, executor, raw } = setup(ctx.db);
  assert.ok(isNotFoundError(await rejection(users.update(2, { name: "bobby" }))));
  assert.equal(await users.updateMany({ tenant_id: 1 }, { name: "z" }), 1);
  const q = executor.updateTable("users").set({ name: "w" }).where("id", "=", 2);
  assertSql(ctx, q, sqlOf('update "users" set "name" = ? where "id" = ? and "users"."deleted_at" is null', ["w", 2]));
  assert.equal((await q.executeTakeFirst()).numUpdatedRows, 0n);
  const bob = await raw.selectFrom("users").select(["name", "deleted_at"]).where("id", "=", 2)
    .executeTakeFirstOrThrow();
  assert.equal(bob.name, "bob");
  assert.notEqual(bob.deleted_at, null, "no resurrection");
});

suite.test("soft deletes in a rolled-back repository transaction leave no trace", async ({ db }) => {
  const { users } = setup(db);
  await assert.rejects(users.transaction(async (trx) => {
    await trx.softDelete(1);
    assert.equal(await trx.count(), 1);
    throw new Error("roll back");
  }));
  assert.equal(await users.count(), 2);
  await users.transaction((trx) => trx.delete(1));
  assert.equal(await users.count(), 1);
});

suite.test("an uncovered table keeps real deletes and refuses the soft-delete methods", async ({ db }) => {
  const { notes, executor } = setup(db);
  const note = await notes.create({ body: "n" });
  await assert.rejects(notes.softDelete(note.id), TypeError);
  await notes.delete(note.id);
  assert.equal((await executor.selectFrom("notes").selectAll().execute()).length, 0);
});

suite.test("composite keys", async ({ db }) => {
  const plugin = softDeletePlugin({ tables: "all", clock, excludeTables: ["notes"] });
  const orm = createORM(db, [plugin]);
  const posts = orm.createRepository({ tableName: "posts", primaryKey: ["id", "user_id"] });
  await posts.softDelete({ id: 1, user_id: 1 });
  assert.equal(await posts.softDeleteMany([{ id: 2, user_id: 2 }, { id: 4, user_id: 99 }]), 1);
  assert.deepEqual((await posts.findAll()).map((p) => p.title), ["c1"]);
  // @ts-expect-error: a composite key is an object of its columns
  await assert.rejects(posts.softDelete(4), TypeError);
});

suite.test("unique constraints: a new row reuses a deleted row's email; restoring it conflicts", async (ctx) => {
  const { db, database } = ctx;
  if (database === "mariadb") {
    // MariaDB has no partial index: a generated column, NULL for deleted rows, carries the unique index.
    await sql`alter table users add email_live varchar(100) as (if(deleted_at is null, email, null)) stored`
      .execute(db);
    await sql`create unique index users_email_live on users (email_live)`.execute(db);
  } else {
    await db.schema.createIndex("users_email_live").on("users").column("email").unique()
      .where(sql.ref("deleted_at"), "is", null).execute();
  }
  const { users } = setup(db);
  // two live rows cannot share an email
  assert.ok(
    isUniqueConstraintError(await rejection(users.create({ tenant_id: 1, email: "ada@example.com", name: "x" }))),
  );
  // bob is deleted: his email is free
  const again = await users.create({ tenant_id: 1, email: "bob@example.com", name: "bob 2" });
  assert.equal(again.name, "bob 2");
  assert.ok(isUniqueConstraintError(await rejection(users.restore(2))));
  await users.delete(again.id);
  assert.equal((await users.restore(2)).name, "bob");
});

suite.test("upsert onto a soft-deleted row's unique key does not resurrect it", async ({ db }) => {
  await db.schema.createIndex("users_email").on("users").column("email").unique().execute();
  const { users, raw } = setup(db);
  // The upsert's update path is scoped to live rows: the deleted row is left
  // alone, and the caller hears that the key is taken by a row out of scope.
  const refused = await users.upsert({ tenant_id: 1, email: "bob@example.com", name: "bob 2" }, {
    conflict: ["email"],
  }).then(() => undefined, (error) => error);
  assert.ok(isUniqueConstraintError(refused), String(refused));
  assert.deepEqual(refused.columns, ["email"]);
  const bob = await raw.selectFrom("users").select(["name", "deleted_at"]).where("id", "=", 2)
    .executeTakeFirstOrThrow();
  assert.equal(bob.name, "bob");
  assert.notEqual(bob.deleted_at, null);
  assert.equal(await users.count(), 2);
});

suite.test("cursor pagination across a deletion between pages: no deleted row, no duplicate", async ({ db }) => {
  const { posts } = setup(db);
  const first = await posts.paginateCursor({ limit: 1 });
  assert.deepEqual(first.data.map((p) => p.title), ["a1"]);
  await posts.delete(2);
  const second = await posts.paginateCursor({ limit: 1, after: first.nextCursor! });
  assert.deepEqual(second.data.map((p) => p.title), ["c1"]);
  assert.equal(second.hasNext, false);
});
