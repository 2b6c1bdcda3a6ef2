/**
 * Native PostgreSQL RLS from the same schema: policies applied for real, the
 * attack list run as a non-owner role without BYPASSRLS, with raw SQL, in
 * transactions whose context is set with set_config(..., true).
 */
import assert from "node:assert/strict";
import { type Kysely, sql } from "kysely";
import { connectAsRole, dbSuite, plainRows, rejection, rollbackOpen } from "../../_test/harness.ts";
import {
  allowRawSql,
  type AnyExpressionBuilder,
  createExecutor,
  createExecutorSync,
  isPluginError,
} from "../../executor/mod.ts";
import { allReads } from "./_attacks.ts";
import {
  applyNativeContext,
  checkNativeRLS,
  defineRLSSchema,
  filter,
  type FilterExpressionContext,
  generateNativePolicies,
  isNativeRLSError,
  isRLSContextError,
  nativeRLSPlugin,
  nativeSettings,
  rlsContext,
  rlsPlugin,
  rlsTransaction,
} from "./mod.ts";
import { assertNoLeak, type DB, MARK, T1, T2, tables, tenant2Snapshot, tenantSchema } from "./_test_helpers.ts";

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

/**
 * Applies the policies as the owner, creates an app role with every DML
 * grant on the tables and connects as it (`max` pooled connections; each
 * statement's SQL pushed to `log`).
 */
async function native(
  db: Kysely<DB>,
  options: { log?: string[]; max?: number } = {},
): Promise<{ app: Kysely<DB>; role: string; cleanup: () => Promise<void> }> {
  for (const statement of generateNativePolicies(tenantSchema, DDL_OPTIONS)) await sql.raw(statement).execute(db);
  const { app, role, drop } = await connectAsRole(db, "postgres", (role, schema) => [
    `grant select, insert, update, delete on all tables in schema "${schema}" to ${role}`,
    `grant usage, select on all sequences in schema "${schema}" to ${role}`,
  ], options);
  return { app, role, cleanup: drop };
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

/** The statements a native-plugin call sent, with set_config calls named once. */
function statements(log: readonly string[]): string[] {
  return log.map((q) => q.startsWith("select set_config(") ? "set_config" : q);
}

suite.test("native plugin: lone statements get the context in a transaction of their own", async ({ db }) => {
  const log: string[] = [];
  const { app, cleanup } = await native(db, { log });
  const before = await tenant2Snapshot(db);
  try {
    const ex = createExecutorSync(app, [nativeRLSPlugin()]);
    await rlsContext.runAsync(T1, async () => {
      log.length = 0;
      const raw = await sql<{ body: string }>`select body from posts order by id`.execute(ex);
      assert.deepEqual(raw.rows.map((r) => r.body), ["one", "two"]);
      assert.deepEqual(statements(log), ["begin", "set_config", "select body from posts order by id", "commit"]);
      await allReads(ex, "postgres");
      const streamed: string[] = [];
      for await (const row of ex.selectFrom("posts").select("body").orderBy("id").stream(1)) streamed.push(row.body);
      assert.deepEqual(streamed, ["one", "two"]);
      const n = (q: Promise<{ numAffectedRows?: bigint }>) => q.then((r) => Number(r.numAffectedRows));
      assert.equal(await n(sql`update posts set title = 'p' where id = 3`.execute(ex)), 0);
      assert.equal(await n(sql`delete from posts where tenant_id = 2`.execute(ex)), 0);
      log.length = 0;
      const forged = await rejection(
        sql`insert into posts (tenant_id, user_id, title, body) values (2, 1, 'f', 'f')`.execute(ex),
      );
      // The database's own error, not wrapped, and the lone transaction rolled back.
      assert.ok(!isPluginError(forged));
      assert.match(String(forged), /row-level security/);
      assert.deepEqual(statements(log).at(-1), "rollback");
    });
    // No context: nothing is set, native policies see no tenant.
    log.length = 0;
    assert.deepEqual(await ex.selectFrom("posts").selectAll().execute(), []);
    assert.equal(statements(log).length, 1);
    const all = await rlsContext.asSystemAsync(() => ex.selectFrom("posts").select("body").orderBy("id").execute());
    assert.deepEqual(all.map((r) => r.body), ["one", "two", MARK]);
    // The one pooled connection carries no setting afterwards.
    const left = await sql<{ t: string | null }>`select current_setting('app.tenant_id', true) as t`.execute(app);
    assert.ok(left.rows[0]!.t === null || left.rows[0]!.t === "", String(left.rows[0]!.t));
  } finally {
    await cleanup();
  }
  assert.equal(await tenant2Snapshot(db), before);
}, PG);

suite.test("native plugin: once per transaction, again when the context changes in it", async ({ db }) => {
  const log: string[] = [];
  const { app, cleanup } = await native(db, { log });
  try {
    const ex = createExecutorSync(app, [nativeRLSPlugin()]);
    await rlsContext.runAsync(T1, async () => {
      log.length = 0;
      const seen = await ex.transaction().execute(async (trx) => {
        const posts = await trx.selectFrom("posts").select("tenant_id").execute();
        const users = await trx.selectFrom("users").select("tenant_id").execute();
        const other = await rlsContext.runAsync(T2, () => trx.selectFrom("posts").select("tenant_id").execute());
        const back = await trx.selectFrom("posts").select("tenant_id").execute();
        return { posts, users, other, back };
      });
      assert.deepEqual(seen.posts.map((r) => r.tenant_id), [1, 1]);
      assert.deepEqual(seen.users.map((r) => r.tenant_id), [1, 1]);
      assert.deepEqual(seen.other.map((r) => r.tenant_id), [2]);
      assert.deepEqual(seen.back.map((r) => r.tenant_id), [1, 1]);
      assert.deepEqual(statements(log).filter((q) => q === "set_config").length, 3);
      assert.deepEqual(statements(log)[0], "begin");
      assert.deepEqual(statements(log)[1], "set_config");
      // A controlled transaction and a write in it.
      const trx = await ex.startTransaction().execute();
      try {
        await trx.updateTable("posts").set({ title: "t" }).execute();
        await trx.commit().execute();
      } finally {
        await rollbackOpen(trx);
      }
    });
    const titles = await db.selectFrom("posts").select(["tenant_id", "title"]).orderBy("id").execute();
    assert.deepEqual(titles.map((r) => r.title), ["t", "t", MARK]);
  } finally {
    await cleanup();
  }
}, PG);

suite.test(
  "native plugin: 2,000 concurrent mixed-tenant calls on a pool of 3 never see another tenant",
  async ({ db }) => {
    const { app, cleanup } = await native(db, { max: 3 });
    try {
      const ex = createExecutorSync(app, [nativeRLSPlugin()]);
      let crossTenant = 0;
      await Promise.all(Array.from({ length: 2000 }, (_, i) => {
        const ctx = i % 2 === 0 ? T1 : T2;
        const want = ctx.auth.tenantId;
        return rlsContext.runAsync(ctx, async () => {
          const rows = i % 4 < 2
            ? await ex.selectFrom("posts").select("tenant_id").execute()
            : await ex.transaction().execute(async (trx) => {
              await new Promise((r) => setTimeout(r, i % 3));
              return await trx.selectFrom("posts").select("tenant_id").execute();
            });
          if (rows.length === 0 || rows.some((r) => r.tenant_id !== want)) crossTenant++;
        });
      }));
      assert.equal(crossTenant, 0);
      // Every pooled connection is clean afterwards.
      const left = await Promise.all(
        Array.from(
          { length: 9 },
          () => sql<{ t: string | null }>`select current_setting('app.tenant_id', true) as t`.execute(app),
        ),
      );
      assert.deepEqual(left.map((r) => r.rows[0]!.t ?? ""), Array(9).fill(""));
    } finally {
      await cleanup();
    }
  },
  PG,
);

suite.test("native plugin: the startup check refuses the owner/superuser and passes the app role", async ({ db }) => {
  const { app, cleanup } = await native(db);
  try {
    const error = await rejection(createExecutor(db, [nativeRLSPlugin({ checkTables: ["users", "posts"] })]));
    assert.ok(isNativeRLSError(error), String(error));
    assert.ok(error.problems.some((p) => p.includes("superuser")), error.problems.join("; "));
    const ok = await createExecutor(app, [nativeRLSPlugin({ checkTables: ["users", "posts"] })]);
    assert.equal((await rlsContext.runAsync(T1, () => ok.selectFrom("posts").select("id").execute())).length, 2);
  } finally {
    await cleanup();
  }
}, PG);

suite.test("native plugin: refused on a database that is not PostgreSQL", async ({ db }) => {
  const ex = createExecutorSync(db, [nativeRLSPlugin()]);
  const error = await rejection(rlsContext.runAsync(T1, () => ex.selectFrom("posts").selectAll().execute()));
  assert.ok(isPluginError(error));
  assert.match(error.message, /not PostgreSQL/);
}, { databases: ["sqlite", "mariadb"] });
