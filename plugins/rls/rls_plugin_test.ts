/** Policy semantics of the RLS plugin: allow/deny/defaultDeny, validate, expression filters, repository methods. */
import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { assertSql, dbSuite, plainRows, rejection } from "../../_test/harness.ts";
import { type AnyExpressionBuilder, createExecutorSync } from "../../executor/mod.ts";
import { createORM } from "../../repository/mod.ts";
import { softDeletePlugin } from "../soft_delete/mod.ts";
import { sqlOf } from "../soft_delete/_test_helpers.ts";
import {
  allow,
  defineRLSSchema,
  deny,
  filter,
  type FilterExpressionContext,
  isRLSContextError,
  isRLSPolicyViolation,
  type RLSContext,
  rlsContext,
  rlsPlugin,
  RLSPolicyViolation,
  validate,
} from "./mod.ts";
import { type DB, MARK, T1, T2, tables, tenantSchema } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });
const tenant = filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }));
const as = (roles: string[], tenantId: number | undefined = 1): RLSContext => ({
  auth: { userId: 1, tenantId, roles },
});

Deno.test("filter() tells the column-map form from the expression form by its parameters", () => {
  const map = filter("read", (ctx) => ({ tenant_id: ctx.auth.tenantId }));
  const expr = filter("read", (eb: AnyExpressionBuilder, ctx: FilterExpressionContext) => eb(ctx.column("a"), "=", 1));
  assert.ok(map.type === "filter" && map.map !== undefined && map.expression === undefined);
  assert.ok(expr.type === "filter" && expr.expression !== undefined && expr.map === undefined);
});

Deno.test("policy builders refuse unknown operations", () => {
  assert.throws(() => allow("drop" as never, () => true), TypeError);
  assert.throws(() => filter("update" as never, () => ({})), TypeError);
  assert.throws(() => validate("read" as never, () => true), TypeError);
  assert.throws(() => deny([], undefined), TypeError);
  assert.throws(() => defineRLSSchema({ posts: { policies: "x" as never } }), TypeError);
  assert.throws(() => rlsPlugin({} as never), TypeError);
});

Deno.test("rlsContext getters, freezing and fail-closed getters", async () => {
  assert.equal(rlsContext.hasContext(), false);
  assert.ok(isRLSContextError(assertThrows(() => rlsContext.getUserId())));
  assert.equal(rlsContext.hasRole("user"), false);
  await rlsContext.runAsync({ auth: { userId: 5, tenantId: 2, roles: ["user"], permissions: ["p"] } }, async () => {
    assert.equal(rlsContext.getUserId(), 5);
    assert.equal(rlsContext.getTenantId(), 2);
    assert.ok(rlsContext.hasRole("user") && !rlsContext.hasRole("admin"));
    assert.ok(rlsContext.hasPermission("p"));
    assert.ok(Object.isFrozen(rlsContext.getContext().auth));
    assert.equal(rlsContext.isSystem(), false);
    const inside = await rlsContext.asSystemAsync(() =>
      Promise.resolve([rlsContext.isSystem(), rlsContext.getUserId()])
    );
    assert.deepEqual(inside, [true, 5]);
    assert.equal(rlsContext.isSystem(), false);
  });
  assert.throws(() => rlsContext.run({ auth: null } as never, () => 1), TypeError);
  assert.throws(() => rlsContext.run({ auth: { userId: 1 } } as never, () => 1), TypeError);
});

function assertThrows(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("Expected a throw");
}

function executor(db: Kysely<DB>, schema: ReturnType<typeof defineRLSSchema<DB>>): Kysely<DB> {
  return createExecutorSync(db, [rlsPlugin({ schema })]);
}

suite.test("deny refuses writes before anything is sent and hides reads", async ({ db }) => {
  const schema = defineRLSSchema<DB>({
    posts: { policies: [tenant, deny("delete"), deny("read", (ctx) => ctx.auth.roles.includes("blind"))] },
  });
  await rlsContext.runAsync(as(["user"]), async () => {
    const error = await rejection(executor(db, schema).deleteFrom("posts").where("id", "=", 1).execute());
    assert.ok(error instanceof RLSPolicyViolation && error.operation === "delete", String(error));
    assert.equal((await executor(db, schema).selectFrom("posts").selectAll().execute()).length, 2);
  });
  await rlsContext.runAsync(as(["blind"]), async () => {
    assert.deepEqual(await executor(db, schema).selectFrom("posts").selectAll().execute(), []);
  });
  assert.equal((await db.selectFrom("posts").select("id").execute()).length, 3);
});

suite.test("defaultDeny denies what no allow permits", async ({ db }) => {
  const schema = defineRLSSchema<DB>({
    posts: {
      policies: [
        tenant,
        allow("read", () => true),
        allow(["create", "update"], (ctx) => ctx.auth.roles.includes("editor")),
      ],
      defaultDeny: true,
    },
  });
  await rlsContext.runAsync(as(["user"]), async () => {
    const ex = executor(db, schema);
    assert.equal((await ex.selectFrom("posts").selectAll().execute()).length, 2);
    for (
      const attempt of [
        () => ex.insertInto("posts").values({ user_id: 1, title: "t", body: "b" }).execute(),
        () => ex.updateTable("posts").set({ title: "t" }).execute(),
        () => ex.deleteFrom("posts").execute(),
      ]
    ) {
      assert.ok(isRLSPolicyViolation(await rejection(attempt())));
    }
  });
  await rlsContext.runAsync(as(["editor"]), async () => {
    const ex = executor(db, schema);
    await ex.insertInto("posts").values({ user_id: 1, title: "t", body: "b" }).execute();
    assert.equal((await ex.updateTable("posts").set({ title: "u" }).executeTakeFirst()).numUpdatedRows, 3n);
    assert.ok(isRLSPolicyViolation(await rejection(ex.deleteFrom("posts").execute())));
  });
  const noAllow = defineRLSSchema<DB>({ posts: { policies: [tenant], defaultDeny: true } });
  await rlsContext.runAsync(as(["user"]), async () => {
    assert.deepEqual(await executor(db, noAllow).selectFrom("posts").selectAll().execute(), []);
  });
});

suite.test("validate refuses values on insert and update", async ({ db }) => {
  const schema = defineRLSSchema<DB>({
    posts: { policies: [tenant, validate("all", (ctx) => ctx.data?.["title"] !== "bad")] },
  });
  await rlsContext.runAsync(as(["user"]), async () => {
    const ex = executor(db, schema);
    assert.ok(
      isRLSPolicyViolation(
        await rejection(ex.insertInto("posts").values({ user_id: 1, title: "bad", body: "b" }).execute()),
      ),
    );
    assert.ok(isRLSPolicyViolation(await rejection(ex.updateTable("posts").set({ title: "bad" }).execute())));
    await ex.insertInto("posts").values({ user_id: 1, title: "good", body: "b" }).execute();
  });
  assert.equal((await db.selectFrom("posts").select("id").where("title", "=", "bad").execute()).length, 0);
});

suite.test("an expression filter applies to every reference, qualified by alias", async (ctx) => {
  const schema = defineRLSSchema<DB>({
    posts: {
      policies: [
        tenant,
        filter(
          "read",
          (eb: AnyExpressionBuilder, c: FilterExpressionContext) => eb(c.column("user_id"), "=", c.auth.userId),
        ),
      ],
    },
  });
  await rlsContext.runAsync(T1, async () => {
    const q = executor(ctx.db, schema).selectFrom("posts as p").select("p.title");
    assertSql(
      ctx,
      q,
      sqlOf(`select "p"."title" from "posts" as "p" where ("p"."tenant_id" = ? and "p"."user_id" = ?)`, [1, 1]),
    );
    assert.deepEqual(plainRows(await q.execute()), [{ title: "a1" }]);
  });
});

suite.test("a column map with an array is IN, with null is IS NULL", async (ctx) => {
  const schema = defineRLSSchema<DB>({
    posts: { policies: [filter("read", () => ({ tenant_id: [1, 2] }))] },
    users: { policies: [filter("read", () => ({ name: null }))] },
  });
  await rlsContext.runAsync(T1, async () => {
    const ex = executor(ctx.db, schema);
    const q = ex.selectFrom("posts").select("id");
    assertSql(ctx, q, sqlOf(`select "id" from "posts" where "posts"."tenant_id" in (?, ?)`, [1, 2]));
    assert.equal((await q.execute()).length, 3);
    assert.deepEqual(await ex.selectFrom("users").selectAll().execute(), []);
  });
});

suite.test("withoutRLS and canAccess on a repository", async ({ db }) => {
  const posts = createORM(db, [rlsPlugin({ schema: tenantSchema })]).createRepository({
    tableName: "posts",
    primaryKey: "id",
  });
  await rlsContext.runAsync(T1, async () => {
    assert.equal(await posts.count(), 2);
    assert.equal(await posts.withoutRLS(() => posts.count()), 3);
    assert.equal(await posts.count(), 2);
    assert.equal(await posts.canAccess("read", { id: 1, tenant_id: 1 }), true);
    assert.equal(await posts.canAccess("read", { id: 3, tenant_id: 2 }), false);
    assert.equal(await posts.canAccess("update", { id: 3, tenant_id: 2 }), false);
    assert.equal(await posts.canAccess("create", { tenant_id: 2 }), false);
    assert.equal(await posts.canAccess("create", { tenant_id: 1 }), true);
  });
  assert.equal(await posts.canAccess("read", { id: 1, tenant_id: 1 }), false);
});

suite.test("canAccess() looks a row of a composite-key table up by every key column", async ({ db }) => {
  await db.schema.createTable("grants")
    .addColumn("org_id", "integer", (c) => c.notNull())
    .addColumn("user_id", "integer", (c) => c.notNull())
    .addColumn("label", "varchar(20)", (c) => c.notNull())
    .addPrimaryKeyConstraint("grants_pk", ["org_id", "user_id"])
    .execute();
  interface Grants {
    grants: { org_id: number; user_id: number; label: string };
  }
  await (db as unknown as Kysely<Grants>).insertInto("grants").values([
    { org_id: 1, user_id: 1, label: "mine" },
    { org_id: 2, user_id: 1, label: "theirs" },
  ]).execute();
  // An expression filter: canAccess must look the row up.
  const schema = {
    grants: {
      policies: [
        filter(
          "read",
          (eb: AnyExpressionBuilder, ctx: FilterExpressionContext) =>
            eb(ctx.column("org_id"), "=", ctx.auth.tenantId as number),
        ),
      ],
    },
  };
  const grants = createORM(db as unknown as Kysely<Grants>, [rlsPlugin({ schema })]).createRepository({
    tableName: "grants",
    primaryKey: ["org_id", "user_id"],
  });
  await rlsContext.runAsync(T1, async () => {
    assert.deepEqual((await grants.findAll()).map((g) => g.label), ["mine"]);
    assert.equal(await grants.canAccess("read", { org_id: 1, user_id: 1, label: "mine" }), true);
    assert.equal(await grants.canAccess("read", { org_id: 2, user_id: 1, label: "theirs" }), false);
    assert.equal(await grants.canAccess("read", { org_id: 1, user_id: 9, label: "none" }), false);
    assert.equal(await grants.canAccess("read", { org_id: 1, label: "no user_id" }), false);
  });
});

suite.test("excludeTables leaves a table out", async ({ db }) => {
  const ex = createExecutorSync(db, [rlsPlugin({ schema: tenantSchema, excludeTables: ["users"] })]);
  await rlsContext.runAsync(T1, async () => {
    assert.equal((await ex.selectFrom("users").selectAll().execute()).length, 3);
    assert.equal((await ex.selectFrom("posts").selectAll().execute()).length, 2);
  });
});

suite.test("composes with soft delete: both filters on every reference", async ({ db }) => {
  await db.schema.alterTable("posts").addColumn("deleted_at", "varchar(40)").execute();
  await db.updateTable("posts").set({ deleted_at: "2026-01-01" } as never).where("id", "=", 2).execute();
  const ex = createExecutorSync(db, [rlsPlugin({ schema: tenantSchema }), softDeletePlugin({ tables: ["posts"] })]);
  await rlsContext.runAsync(T1, async () => {
    const rows = await ex.selectFrom("tags as t").leftJoin("posts as p", "p.id", "t.post_id").select([
      "t.label",
      "p.title",
    ])
      .orderBy("t.id").execute();
    assert.deepEqual(plainRows(rows), [{ label: "x", title: "a1" }, { label: "y", title: null }]);
    assert.equal((await ex.selectFrom("posts").selectAll().execute()).length, 1);
  });
});

suite.test("a query built outside any context, with a subquery, runs under the context it executes in", async ({ db }) => {
  const ex = createExecutorSync(db, [rlsPlugin({ schema: tenantSchema })]);
  // Built at module level, say: no context yet, and nothing is evaluated.
  const query = ex.selectFrom("posts").select("title")
    .where("user_id", "in", ex.selectFrom("users").select("id"))
    .orderBy("title");
  assert.ok(isRLSContextError(await rejection(query.execute())));
  const rows = await rlsContext.runAsync(T1, () => query.execute());
  // Post a2's author is tenant 2's user: the subquery hides them.
  assert.deepEqual(rows.map((r) => r.title), ["a1"]);
  assert.deepEqual(plainRows(await rlsContext.runAsync(T2, () => query.execute())), [{ title: MARK }]);
});
