import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { assertSql, dbSuite, plainRows } from "../../_test/harness.ts";
import { createExecutorSync, type KyseraPlugin } from "../../executor/mod.ts";
import { createORM } from "../../repository/mod.ts";
import { onlyDeleted, softDeletePlugin, withDeleted } from "./mod.ts";
import { clock, type DB, sqlOf, tables, tenantScope } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

const plugin = softDeletePlugin({ tables: "all", clock, excludeTables: ["notes"] });

function joined(db: Kysely<DB>) {
  return db.selectFrom("posts as p").leftJoin("users as u", "u.id", "p.user_id").select(["p.title", "u.name"])
    .orderBy("p.title");
}

suite.test("withDeleted() shows deleted rows everywhere for one call only", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [plugin]);
  const rows = await withDeleted(() => {
    assertSql(
      ctx,
      joined(executor),
      sqlOf(
        'select "p"."title", "u"."name" from "posts" as "p" left join "users" as "u" on "u"."id" = "p"."user_id" order by "p"."title"',
      ),
    );
    return joined(executor).execute();
  });
  assert.deepEqual(plainRows(rows), [
    { title: "a1", name: "ada" },
    { title: "a2", name: "ada" },
    { title: "b1", name: "bob" },
    { title: "c1", name: "cy" },
  ]);
  assert.equal((await joined(executor).execute()).length, 3, "the next query is filtered again");
});

suite.test("onlyDeleted() shows deleted rows only; `tables` narrows the opt-in", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [plugin]);
  const users = await onlyDeleted(() => executor.selectFrom("users").select("name").execute());
  assert.deepEqual(plainRows(users), [{ name: "bob" }]);
  // deleted posts, joined to live users only
  const q = () => joined(executor);
  const rows = await onlyDeleted(() => {
    assertSql(
      ctx,
      q(),
      sqlOf(
        'select "p"."title", "u"."name" from "posts" as "p" left join "users" as "u" on "u"."id" = "p"."user_id" ' +
          'and "u"."deleted_at" is null where "p"."deleted_at" is not null order by "p"."title"',
      ),
    );
    return q().execute();
  }, { tables: ["posts"] });
  assert.deepEqual(plainRows(rows), [{ title: "a2", name: "ada" }]);
  // live posts of users with or without deletion
  const all = await withDeleted(() => q().execute(), { tables: ["users"] });
  assert.deepEqual(plainRows(all).map((r) => r.name), ["ada", "bob", "cy"]);
});

suite.test("the innermost opt-in wins and each ends with its call", async ({ db }) => {
  const executor = createExecutorSync(db, [plugin]);
  const count = async () =>
    Number((await executor.selectFrom("users").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);
  const seen = await withDeleted(async () => [await count(), await onlyDeleted(count), await count()]);
  assert.deepEqual(seen, [3, 1, 3]);
  assert.equal(await count(), 2);
});

for (
  const [order, plugins] of [
    ["soft delete first", [plugin, tenantScope]],
    ["tenant scope first", [tenantScope, plugin]],
  ] as const
) {
  suite.test(`composes with a tenant scope (${order}); withDeleted() keeps the tenant filter`, async ({ db }) => {
    const executor = createExecutorSync(db, plugins as readonly KyseraPlugin[]);
    assert.deepEqual(plainRows(await joined(executor).execute()), [{ title: "a1", name: "ada" }, {
      title: "b1",
      name: null,
    }]);
    const all = await withDeleted(() => joined(executor).execute());
    assert.deepEqual(plainRows(all).map((r) => r.title), ["a1", "a2", "b1"], "no tenant-2 row under withDeleted");
    const gone = await onlyDeleted(() => executor.selectFrom("users").select("name").execute());
    assert.deepEqual(plainRows(gone), [{ name: "bob" }]);
    const users = createORM(executor).createRepository({ tableName: "users", primaryKey: "id" });
    assert.deepEqual(plainRows(await users.findAll()).map((u) => u.name), ["ada"]);
  });
}

suite.test("concurrent calls: withDeleted() never bleeds into other queries", async ({ db, database }) => {
  const executor = createExecutorSync(db, [plugin]);
  const calls = database === "sqlite" ? 1000 : 200;
  const count = () => executor.selectFrom("users").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
  const results = await Promise.all(
    Array.from(
      { length: calls },
      (_, i) =>
        i % 3 === 0
          ? withDeleted(async () => ["with", Number((await count()).n)] as const)
          : i % 3 === 1
          ? onlyDeleted(async () => ["only", Number((await count()).n)] as const)
          : count().then((r) => ["live", Number(r.n)] as const),
    ),
  );
  const expected = { with: 3, only: 1, live: 2 };
  const wrong = results.filter(([mode, n]) => n !== expected[mode]);
  assert.deepEqual(wrong, []);
});

Deno.test("withDeleted() and onlyDeleted() return what the call returns", async () => {
  assert.equal(withDeleted(() => 1), 1);
  assert.equal(await onlyDeleted(() => Promise.resolve(2)), 2);
});
