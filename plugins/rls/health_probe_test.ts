/** The RLS footguns of issue 15: health probes, the non-throwing context accessors, list forms of every policy builder. */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { assertSql, dbSuite, plainRows, rejection } from "../../_test/harness.ts";
import { allowRawSql, createExecutorSync, isRawSqlRefusedError } from "../../executor/mod.ts";
import {
  defineRLSSchema,
  filter,
  healthProbe,
  isRLSContextError,
  isRLSPolicyViolation,
  rlsContext,
  rlsPlugin,
  validate,
} from "./mod.ts";
import { type DB, T1, tables, tenantSchema } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

suite.test("healthProbe() passes an RLS executor outside any context, where raw select 1 is refused", async ({ db, dialect }) => {
  const executor = createExecutorSync(db, [rlsPlugin({ schema: tenantSchema })]);
  await healthProbe(executor);
  assertSql({ dialect }, executor.selectNoFrom((eb) => eb.lit(1).as("ok")), {
    sqlite: { sql: `select 1 as "ok"`, parameters: [] },
    postgres: { sql: `select 1 as "ok"`, parameters: [] },
    mysql: { sql: "select 1 as `ok`", parameters: [] },
  });
  assert.ok(isRawSqlRefusedError(await rejection(sql`select 1`.execute(executor))));
  // The documented raw-SQL opt-in, for a probe that must be raw.
  const { rows } = await allowRawSql(() => sql<{ ok: number }>`select 1 as ok`.execute(executor));
  assert.equal(Number(rows[0]?.ok), 1);
});

Deno.test("rlsContext.userId() and tenantId() are undefined outside a context, where getUserId() throws", async () => {
  assert.equal(rlsContext.userId(), undefined);
  assert.equal(rlsContext.tenantId(), undefined);
  assert.throws(() => rlsContext.getUserId(), (error) => isRLSContextError(error));
  await rlsContext.runAsync({ auth: { userId: 7, tenantId: 3, roles: [] } }, () => {
    assert.equal(rlsContext.userId(), 7);
    assert.equal(rlsContext.tenantId(), 3);
    return Promise.resolve();
  });
  // The README's audit actor, outside an RLS context.
  const actor = () => String(rlsContext.userId() ?? "system");
  assert.equal(actor(), "system");
});

Deno.test("filter() and validate() take one operation or a list, as allow() and deny() do", () => {
  const one = filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }));
  const list = filter(["read", "all"], (ctx) => ({ tenant_id: ctx.auth.tenantId }));
  assert.deepEqual([one.operations, list.operations], [["all"], ["read", "all"]]);
  assert.deepEqual(validate(["create", "update"], () => true).operations, ["create", "update"]);
  assert.throws(() => filter([], () => ({})), { name: "TypeError", message: /no operation given/ });
  assert.throws(() => validate(["create", "delete" as "update"], () => true), {
    name: "TypeError",
    message: /current value is delete$/,
  });
});

suite.test("list forms of filter() and validate() enforce every listed operation", async ({ db }) => {
  const schema = defineRLSSchema<DB>({
    posts: {
      policies: [
        filter(["read", "all"], (ctx) => ({ tenant_id: ctx.auth.tenantId })),
        validate(["create", "update"], (ctx) => ctx.data?.["title"] !== ""),
      ],
    },
  });
  const executor = createExecutorSync(db, [rlsPlugin({ schema })]);
  await rlsContext.runAsync(T1, async () => {
    const titles = await executor.selectFrom("posts").select("title").orderBy("title").execute();
    assert.deepEqual(plainRows(titles), [{ title: "a1" }, { title: "a2" }]);
    const insert = executor.insertInto("posts").values({ user_id: 1, title: "", body: "b" }).execute();
    assert.ok(isRLSPolicyViolation(await rejection(insert)));
    const update = executor.updateTable("posts").set({ title: "" }).where("title", "=", "a1").execute();
    assert.ok(isRLSPolicyViolation(await rejection(update)));
    // "all" fills the tenant of an insert that leaves it out.
    await executor.insertInto("posts").values({ user_id: 1, title: "a3", body: "b" }).execute();
  });
  const row = await db.selectFrom("posts").select("tenant_id").where("title", "=", "a3").executeTakeFirstOrThrow();
  assert.equal(row.tenant_id, 1);
});
