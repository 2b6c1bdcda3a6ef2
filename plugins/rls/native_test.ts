/**
 * Native PostgreSQL RLS from the same schema: policies applied for real, the
 * attack list run as a non-owner role without BYPASSRLS, with raw SQL, in
 * transactions whose context is set with set_config(..., true).
 */
import assert from "node:assert/strict";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { dbSuite, plainRows, POSTGRES_URL, rejection } from "../../_test/harness.ts";
import { allowRawSql, type AnyExpressionBuilder, createExecutorSync } from "../../executor/mod.ts";
import { allReads } from "./_attacks.ts";
import {
  applyNativeContext,
  checkNativeRLS,
  defineRLSSchema,
  filter,
  type FilterExpressionContext,
  generateNativePolicies,
  isRLSContextError,
  nativeSettings,
  rlsContext,
  rlsPlugin,
  rlsTransaction,
} from "./mod.ts";
import { assertNoLeak, type DB, MARK, T1, tables, tenant2Snapshot, tenantSchema } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });
const PG = { databases: ["postgres"] as const };
const DDL_OPTIONS = { columnTypes: { tenant_id: "integer" } };

Deno.test("generateNativePolicies() enables and forces RLS and quotes identifiers and literals", () => {
  const schema = defineRLSSchema<Record<string, Record<string, unknown>>>({
    'we"ird': { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId, 'o"k': "it's", gone: null }))] },
    plain: { policies: [filter("read", (ctx) => ({ org: ctx.meta?.["orgId"], kind: ["a", "b"] }))] },
  });
  const ddl = generateNativePolicies(schema);
  assert.equal(ddl[0], `alter table "we""ird" enable row level security`);
  assert.equal(ddl[1], `alter table "we""ird" force row level security`);
  const select = ddl.find((s) => s.startsWith(`create policy "kysera_rls_select" on "we""ird"`))!;
  assert.ok(select.includes(`"tenant_id"::text = nullif(current_setting('app.tenant_id', true), '')`), select);
  assert.ok(select.includes(`"o""k"::text = 'it''s'`), select);
  assert.ok(select.includes(`"gone" is null`), select);
  const plainInsert = ddl.find((s) => s.startsWith(`create policy "kysera_rls_insert" on "plain"`))!;
  // A 'read' filter does not check inserted values.
  assert.ok(plainInsert.includes("with check ((true) or"), plainInsert);
  const plainSelect = ddl.find((s) => s.startsWith(`create policy "kysera_rls_select" on "plain"`))!;
  assert.ok(plainSelect.includes(`current_setting('app.meta_org_id', true)`), plainSelect);
  assert.ok(plainSelect.includes(`"kind"::text in ('a', 'b')`), plainSelect);
  assert.throws(() => generateNativePolicies(schema, { settingPrefix: "app'; drop" }), TypeError);
  assert.throws(() => generateNativePolicies(schema, { columnTypes: { tenant_id: "int; drop table x" } }), TypeError);
  const expr = defineRLSSchema<Record<string, Record<string, unknown>>>({
    t: {
      policies: [
        filter("read", (eb: AnyExpressionBuilder, ctx: FilterExpressionContext) => eb(ctx.column("a"), "=", 1)),
      ],
    },
  });
  assert.throws(() => generateNativePolicies(expr), TypeError);
  assert.equal(generateNativePolicies(expr, { expressionFilters: "ignore" }).length, 10);
});

Deno.test("nativeSettings() sets bypass only for the system context and bypass roles", () => {
  assert.equal(nativeSettings({ auth: { userId: 1, roles: ["admin"] } })["app.bypass"], "");
  assert.equal(
    nativeSettings({ auth: { userId: 1, roles: ["admin"] } }, { bypassRoles: ["admin"] })["app.bypass"],
    "on",
  );
  assert.equal(nativeSettings({ auth: { userId: 1, roles: [], isSystem: true } })["app.bypass"], "on");
  assert.equal(nativeSettings({ auth: { userId: 1, roles: [] } })["app.tenant_id"], undefined);
  assert.equal(nativeSettings({ auth: { userId: 1, tenantId: undefined, roles: [] } })["app.tenant_id"], "");
});

/** Applies the policies as the owner, creates an app role and connects as it. */
async function native(db: Kysely<DB>): Promise<{ app: Kysely<DB>; role: string; cleanup: () => Promise<void> }> {
  const role = `kysera_app_${Deno.pid}_${Math.floor(Math.random() * 1e6)}`;
  const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]!.s;
  for (const statement of generateNativePolicies(tenantSchema, DDL_OPTIONS)) await sql.raw(statement).execute(db);
  await sql.raw(`create role ${role} login nobypassrls nosuperuser`).execute(db);
  await sql.raw(`grant usage on schema "${schema}" to ${role}`).execute(db);
  await sql.raw(`grant select, insert, update, delete on all tables in schema "${schema}" to ${role}`).execute(db);
  await sql.raw(`grant usage, select on all sequences in schema "${schema}" to ${role}`).execute(db);
  const url = new URL(POSTGRES_URL);
  url.username = role;
  url.password = "";
  const app = new Kysely<DB>({
    dialect: new PostgresDialect({
      pool: new pg.Pool({ connectionString: url.toString(), options: `-c search_path=${schema}`, max: 1 }),
    }),
  });
  return {
    app,
    role,
    cleanup: async () => {
      await app.destroy();
      await sql.raw(`drop owned by ${role}`).execute(db);
      await sql.raw(`drop role ${role}`).execute(db);
    },
  };
}

suite.test("native: the startup check passes for the app role and flags the owner/superuser", async ({ db }) => {
  const { app, role, cleanup } = await native(db);
  try {
    const good = await checkNativeRLS(app, ["users", "posts"]);
    assert.deepEqual(good.problems, []);
    assert.ok(good.ok);
    assert.equal(good.role, role);
    const bad = await checkNativeRLS(db, ["users", "posts", "tags"]);
    assert.equal(bad.ok, false);
    assert.ok(bad.problems.some((p) => p.includes("superuser")), bad.problems.join("; "));
    assert.ok(bad.problems.some((p) => p.includes("owns table 'posts'")), bad.problems.join("; "));
    assert.ok(bad.problems.some((p) => p.includes("'tags' does not have row level security")));
  } finally {
    await cleanup();
  }
}, PG);

suite.test(
  "native: negative control: the superuser connection sees tenant 2 (what the check warns about)",
  async ({ db }) => {
    const { cleanup } = await native(db);
    try {
      const rows = await rlsContext.runAsync(
        T1,
        () => rlsTransaction(db, (trx) => sql`select body from posts`.execute(trx)),
      );
      assert.ok(JSON.stringify(rows.rows).includes(MARK));
    } finally {
      await cleanup();
    }
  },
  PG,
);

suite.test("native: every read attack, through the builder and raw SQL, as the app role", async ({ db }) => {
  const { app, cleanup } = await native(db);
  try {
    await rlsContext.runAsync(T1, async () => {
      await rlsTransaction(app, async (trx) => {
        await allReads(trx, "postgres");
        const raw = await sql`select * from posts p left join users u on u.id = p.user_id`.execute(trx);
        assertNoLeak(raw.rows);
        assert.equal(raw.rows.length, 2);
        const count = await sql<{ n: string }>`select count(*) as n from posts where tenant_id = 2`.execute(trx);
        assert.equal(Number(count.rows[0]!.n), 0);
      });
      // Both layers together: the plugin's executor over the app role.
      const ex = createExecutorSync(app, [rlsPlugin({ schema: tenantSchema })]);
      await rlsTransaction(ex, async (trx) => {
        await allReads(trx, "postgres");
        assertNoLeak((await allowRawSql(() => sql`select * from posts`.execute(trx))).rows);
      });
    });
  } finally {
    await cleanup();
  }
}, PG);

suite.test("native: writes as the app role never reach tenant 2", async ({ db }) => {
  const { app, cleanup } = await native(db);
  const before = await tenant2Snapshot(db);
  try {
    await rlsContext.runAsync(T1, async () => {
      const n = (q: Promise<{ numAffectedRows?: bigint }>) => q.then((r) => Number(r.numAffectedRows));
      assert.equal(
        await rlsTransaction(app, (trx) => n(sql`update posts set title = 'p' where id = 3`.execute(trx))),
        0,
      );
      assert.equal(await rlsTransaction(app, (trx) => n(sql`update posts set title = 'z'`.execute(trx))), 2);
      assert.equal(await rlsTransaction(app, (trx) => n(sql`delete from posts where id = 3`.execute(trx))), 0);
      for (
        const attack of [
          sql`update posts set tenant_id = 2 where id = 1`,
          sql`insert into posts (tenant_id, user_id, title, body) values (2, 1, 'f', 'f')`,
          sql`insert into posts (tenant_id, user_id, title, body) select 2, user_id, title, body from posts`,
        ]
      ) {
        const error = await rejection(rlsTransaction(app, (trx) => attack.execute(trx)));
        assert.match(String(error), /row-level security/);
      }
      await rlsTransaction(
        app,
        (trx) => sql`insert into posts (tenant_id, user_id, title, body) values (1, 1, 'n', 'n')`.execute(trx),
      );
      assert.equal(await rlsTransaction(app, (trx) => n(sql`delete from posts`.execute(trx))), 3);
    });
  } finally {
    await cleanup();
  }
  assert.equal(await tenant2Snapshot(db), before);
}, PG);

suite.test("native: no context, no tenant, pooled connections and the system context", async ({ db }) => {
  const { app, cleanup } = await native(db);
  try {
    assert.ok(
      isRLSContextError(await rejection(rlsTransaction(app, (trx) => trx.selectFrom("posts").selectAll().execute()))),
    );
    // Outside a transaction nothing is set: native policies see no tenant.
    assert.deepEqual(await app.selectFrom("posts").selectAll().execute(), []);
    await rlsContext.runAsync({ auth: { userId: 9, roles: [] } }, async () => {
      assert.deepEqual(await rlsTransaction(app, (trx) => trx.selectFrom("posts").selectAll().execute()), []);
    });
    // The pool has one connection: after tenant 1's transaction it carries no tenant.
    await rlsContext.runAsync(T1, () => rlsTransaction(app, (trx) => trx.selectFrom("posts").selectAll().execute()));
    const left = await sql<{ t: string | null }>`select current_setting('app.tenant_id', true) as t`.execute(app);
    assert.ok(left.rows[0]!.t === null || left.rows[0]!.t === "", String(left.rows[0]!.t));
    assert.deepEqual(await app.selectFrom("posts").selectAll().execute(), []);
    const all = await rlsContext.asSystemAsync(() =>
      rlsTransaction(app, (trx) => trx.selectFrom("posts").select("body").orderBy("id").execute())
    );
    assert.deepEqual(plainRows(all).map((r) => r.body), ["one", "two", MARK]);
    // applyNativeContext in a transaction of one's own.
    const own = await rlsContext.runAsync(T1, () =>
      app.transaction().execute(async (trx) => {
        await applyNativeContext(trx);
        return await trx.selectFrom("posts").select("id").execute();
      }));
    assert.equal(own.length, 2);
  } finally {
    await cleanup();
  }
}, PG);
