/**
 * Query shapes that took a row scope apart (issue 13): the caller's OR, raw
 * fragment or operator around the scope, CTEs named like a written table,
 * MySQL DELETE targets by alias, column names in another case, raw INSERT
 * sources, SQLite's INSERT OR REPLACE, and the open shapes the RLS docs
 * decide (raw fragments, multi-statement text, queries compiled in another
 * context, DDL copying rows, functions that run SQL from a string, views,
 * cascades, MariaDB collations).
 *
 * Every attack runs twice: as tenant 1 through the RLS executor, where the
 * marker never appears and tenant 2's rows stay byte-for-byte the same; and
 * through an executor without the plugin (the negative control), where the
 * same attack does read or change tenant 2's rows, so the first can fail.
 */
import assert from "node:assert/strict";
import { type ExpressionBuilder, type Kysely, sql } from "kysely";
import { dbSuite, plainRows, rejection, type TestDatabase } from "../../_test/harness.ts";
import { createExecutorSync, isRawSqlRefusedError } from "../../executor/mod.ts";
import { filter, isRLSContextError, isRLSPolicyViolation, rlsContext, rlsPlugin } from "./mod.ts";
import { assertNoLeak, type DB, MARK, T1, T2, tables, tenant2Snapshot, tenantSchema } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;

/** One attack: what tenant 1 runs, on the databases where the shape exists. */
interface Attack {
  name: string;
  /** `raw` is the database without any plugin (to read what a DDL attack made). */
  run: (ex: AnyDb, database: TestDatabase, raw: AnyDb) => Promise<unknown>;
  /**
   * For the negative control, when the attack reveals tenant 2's data
   * without carrying its marker (an existence oracle): whether it did.
   */
  reveals?: (result: unknown) => boolean;
  databases?: readonly TestDatabase[];
  /** What the plugin answers: rows free of the marker (default), or a refusal. */
  refused?: "policy" | "raw" | "type";
  /**
   * The negative control's executor: none (default), or the RLS plugin with
   * raw SQL allowed, for shapes that take the filter apart in the SQL text
   * (they need its parameter to be there).
   */
  control?: "bare" | "raw allowed";
}

const rls = (db: AnyDb, options: { requireContext?: boolean; allowRawSql?: boolean } = {}): AnyDb =>
  createExecutorSync(db, [rlsPlugin({ schema: tenantSchema, ...options })]);
const bare = (db: AnyDb): AnyDb => createExecutorSync(db, []);

const attacks: Attack[] = [
  // 1. The scope landing inside the caller's condition.
  {
    name: "raw OR in WHERE",
    run: (ex) => ex.selectFrom("posts").selectAll().where(sql<boolean>`id = 3 or id = 4`).where("id", ">", 0).execute(),
  },
  {
    name: "raw OR as the left side of a comparison",
    run: (ex) => ex.selectFrom("posts").selectAll().where(sql`1 = 1 or id`, "=", 3).execute(),
  },
  {
    name: "MariaDB's || operator, no raw SQL",
    run: (ex) =>
      ex.selectFrom("posts").selectAll().where((eb: AnyEB) => eb(eb("id", "=", 3), "||", eb("id", "=", 4)))
        .execute(),
    // `||` is OR on MySQL only (string concatenation elsewhere).
    databases: ["mariadb"],
  },
  {
    name: "raw OR in a join's ON",
    run: (ex) =>
      ex.selectFrom("tags as t")
        .innerJoin("posts as p", (j) => j.on(sql<boolean>`p.id = t.post_id or 1 = 1`).on("p.id", ">", 0))
        .select(["t.label", "p.body"]).execute(),
  },
  {
    name: "raw OR in an UPDATE's WHERE",
    run: (ex) =>
      ex.updateTable("posts").set({ title: "pwn" }).where(sql<boolean>`id = 3 or id = 4`).where("id", ">", 0)
        .execute(),
  },
  {
    name: "raw OR in a DELETE's WHERE",
    run: (ex) => ex.deleteFrom("posts").where(sql<boolean>`id = 3 or id = 4`).where("id", ">", 0).execute(),
  },
  {
    name: "a single raw condition in an upsert's DO UPDATE ... WHERE",
    run: (ex) =>
      ex.insertInto("posts").values({ id: 3, tenant_id: 1, user_id: 1, title: "pwn", body: "pwn" })
        .onConflict((oc) => oc.column("id").doUpdateSet({ title: "pwn" }).where(sql<boolean>`1 = 1 or 1 = 1`))
        .returning(["id", "body"]).execute(),
    // ON CONFLICT ... DO UPDATE ... WHERE: PostgreSQL and SQLite.
    databases: ["postgres", "sqlite"],
  },
  {
    name: "raw OR in MERGE's ON (a covered source)",
    run: async (ex) => {
      await ex.mergeInto("tags as t")
        .using("posts as p", (j) => j.on(sql<boolean>`p.id = 3 or p.id = -1`).on("p.id", ">", 0))
        .whenMatched().thenUpdateSet((eb: AnyEB) => ({ label: eb.ref("p.body") })).execute();
      return await ex.selectFrom("tags").select("label").execute();
    },
    // MERGE: PostgreSQL (MariaDB and SQLite have none).
    databases: ["postgres"],
  },
  // 2. A CTE named like a written table (PostgreSQL, SQLite: MariaDB takes no WITH before UPDATE/DELETE/INSERT).
  {
    name: "a CTE named like the UPDATE target",
    run: (ex) =>
      ex.with("posts", (qc) => qc.selectFrom("tags").select("id")).updateTable("posts").set({ tenant_id: 1 })
        .where("id", "=", 3).execute(),
    databases: ["postgres", "sqlite"],
  },
  {
    name: "a CTE named like the DELETE target",
    run: (ex) =>
      ex.with("posts", (qc) => qc.selectFrom("tags").select("id")).deleteFrom("posts").where("id", "=", 3).execute(),
    databases: ["postgres", "sqlite"],
  },
  {
    name: "a CTE named like an upsert's target, with RETURNING",
    run: (ex) =>
      ex.with("posts", (qc) => qc.selectFrom("tags").select("id")).insertInto("posts")
        .values({ id: 3, tenant_id: 1, user_id: 1, title: "pwn", body: "pwn" })
        .onConflict((oc) => oc.column("id").doUpdateSet({ title: "pwn" })).returning(["id", "body"]).execute(),
    databases: ["postgres", "sqlite"],
  },
  {
    name: "a CTE named like a MERGE target",
    run: (ex) =>
      ex.with("posts", (qc) => qc.selectFrom("tags").select("id")).mergeInto("posts as p")
        .using("tags as t", "t.post_id", "p.id").whenMatched().thenUpdateSet({ title: "pwn" }).execute(),
    databases: ["postgres"],
    refused: "policy",
  },
  {
    name: "a CTE named like the target of a data-modifying CTE",
    run: (ex) =>
      ex.with("posts", (qc) => qc.selectFrom("tags").select("id"))
        .with("u", (qc) => qc.updateTable("posts").set({ title: "pwn" }).where("id", "=", 3).returning("id"))
        .selectFrom("u").selectAll().execute(),
    databases: ["postgres"],
  },
  // 3. MySQL's multi-table DELETE naming its target by alias.
  {
    name: "DELETE by alias (delete p from posts as p)",
    run: (ex) => ex.deleteFrom("p").using("posts as p").where("p.id", "=", 3).execute(),
    databases: ["mariadb"],
  },
  {
    name: "DELETE by alias with a join",
    run: (ex) =>
      ex.deleteFrom("p").using("tags as t").innerJoin("posts as p", "p.id", "t.post_id").where("t.label", "=", "y")
        .execute(),
    databases: ["mariadb"],
  },
  // 4. Column names in another case (MariaDB and SQLite read them as one; PostgreSQL's quoted names are exact).
  {
    name: "set({ TENANT_ID: 2 }) moves a row",
    run: (ex) => ex.updateTable("posts").set({ TENANT_ID: 2 }).where("id", "=", 1).execute(),
    databases: ["mariadb", "sqlite"],
    refused: "policy",
  },
  {
    name: "onDuplicateKeyUpdate({ TENANT_ID: 2 }) moves a row",
    run: (ex) =>
      ex.insertInto("posts").values({ id: 1, user_id: 1, title: "a1", body: "one" })
        .onDuplicateKeyUpdate({ TENANT_ID: 2 }).execute(),
    databases: ["mariadb"],
    refused: "policy",
  },
  {
    name: "values({ TENANT_ID: 2 }) forges a row",
    run: (ex) => ex.insertInto("posts").values({ TENANT_ID: 2, user_id: 1, title: "f", body: MARK }).execute(),
    databases: ["mariadb", "sqlite"],
    refused: "policy",
  },
  {
    name: "one column in two spellings",
    run: (ex) => ex.updateTable("posts").set({ tenant_id: 1, TENANT_ID: 2 }).where("id", "=", 1).execute(),
    databases: ["mariadb", "sqlite"],
    refused: "type",
  },
  // 5. Writes whose values no hook can read.
  {
    name: "a raw INSERT source",
    run: (ex) =>
      ex.insertInto("posts").columns(["tenant_id", "user_id", "title", "body"])
        .expression(sql`values (2, 1, 'f', ${MARK})`).execute(),
    refused: "policy",
  },
  {
    name: "SQLite's INSERT OR REPLACE",
    run: (ex) =>
      ex.insertInto("posts").orReplace().values({ id: 3, tenant_id: 1, user_id: 1, title: "r", body: "r" }).execute(),
    databases: ["sqlite"],
    refused: "policy",
  },
  // 6. The open shapes, decided: raw fragments that could read a table are raw SQL.
  {
    name: "a raw subquery in the select list",
    run: (ex) => ex.selectFrom("users").select(sql<string>`(select title from posts where id = 3)`.as("t")).execute(),
    refused: "raw",
  },
  {
    name: "a raw EXISTS in WHERE",
    run: (ex) =>
      ex.selectFrom("tags").select("label").where(sql<boolean>`exists (select 1 from posts where id = 3)`)
        .where("label", "=", "x").execute(),
    // Tenant 1 has no post 3: a row back says tenant 2's exists.
    reveals: (rows) => (rows as unknown[]).length > 0,
    refused: "raw",
  },
  {
    name: "modifyEnd with a raw UNION",
    run: (ex) => ex.selectFrom("tags").select("label").modifyEnd(sql`union select title from posts`).execute(),
    refused: "raw",
  },
  {
    name: "a raw set-operation branch",
    run: (ex) => ex.selectFrom("tags").select("label").union(sql<{ label: string }>`select title from posts`).execute(),
    refused: "raw",
  },
  {
    name: "a comment that cuts the scope off",
    run: (ex) => ex.selectFrom("posts").selectAll().where(sql<boolean>`id = 3 --`).execute(),
    refused: "raw",
  },
  {
    name: "a statement with no parameters and a second statement after it",
    // PostgreSQL runs a parameterless statement as a simple query, which may
    // hold several.
    run: (ex) =>
      ex.selectFrom("tags").select("label").modifyEnd(sql`; update posts set title = 'pwn' where id = 3`).execute(),
    databases: ["postgres"],
    refused: "raw",
  },
  {
    name: "a function that runs SQL from a string (query_to_xml)",
    run: (ex) =>
      ex.selectNoFrom((eb: AnyEB) =>
        eb.fn("query_to_xml", [eb.val("select body from posts"), eb.lit(true), eb.lit(false), eb.val("")]).as("x")
      ).execute(),
    databases: ["postgres"],
    refused: "raw",
  },
  {
    name: "create table ... as select copies rows",
    run: async (ex, _database, raw) => {
      await ex.schema.createTable("stolen").as(ex.selectFrom("posts").select(["id", "body"])).execute();
      return await raw.selectFrom("stolen").selectAll().execute();
    },
    refused: "raw",
  },
  {
    name: "create view ... as over a covered table",
    run: async (ex, _database, raw) => {
      await ex.schema.createView("peek").as(ex.selectFrom("posts").select(["id", "body"])).execute();
      return await raw.selectFrom("peek").selectAll().execute();
    },
    refused: "raw",
  },
  // 7. Found by a red-team pass: pieces Kysely writes into the SQL text as given.
  {
    name: "MariaDB's # operator comments the scope out (select)",
    run: (ex) =>
      ex.selectFrom("posts").select((eb: AnyEB) => [
        eb(eb.ref("id"), "#", 1).as("a"),
        eb.ref("id").as("\n, title, body from posts #"),
      ]).execute(),
    databases: ["mariadb"],
    refused: "raw",
    control: "raw allowed",
  },
  {
    name: "MariaDB's # operator comments the scope out (delete)",
    run: (ex) => ex.deleteFrom("posts").where((eb: AnyEB) => eb(eb.ref("id"), "#", eb.ref("\n>0 or 1=1) #"))).execute(),
    databases: ["mariadb"],
    refused: "raw",
    control: "raw allowed",
  },
  {
    name: "a unary minus before a negative literal compiles to -- (select)",
    run: (ex, database) =>
      ex.selectFrom("posts").select((eb: AnyEB) => [
        eb.neg(eb.lit(-1)).as("a"),
        eb.ref("id").as(
          database === "postgres"
            ? "\n title, body from posts where tenant_id::text <> $1::text --"
            : "\n title, body from posts where tenant_id <> ? --",
        ),
      ]).execute(),
    databases: ["sqlite", "postgres"],
    refused: "raw",
    control: "raw allowed",
  },
  {
    name: "a unary minus before a negative literal compiles to -- (delete)",
    run: (ex, database) =>
      ex.deleteFrom("posts").where((eb: AnyEB) =>
        eb(
          eb.neg(eb.lit(-1)),
          "=",
          eb.ref(database === "postgres" ? "\n true or $1::int > 0) --" : "\n 1 or ? or 1) --"),
        )
      ).execute(),
    databases: ["sqlite", "postgres"],
    refused: "raw",
    control: "raw allowed",
  },
  {
    name: "a function name that is SQL",
    run: (ex) =>
      ex.selectFrom("posts").select("body").where((eb: AnyEB) => eb(eb.fn("1=1 or abs", [eb.ref("id")]), "=", 3))
        .execute(),
    refused: "raw",
  },
  {
    name: "an aggregate function name that is SQL",
    run: (ex) =>
      ex.selectFrom("users").select((eb: AnyEB) =>
        eb.fn.agg("(select max(body) from posts where tenant_id = 2) || max", [eb.ref("name")]).as("x")
      ).execute(),
    databases: ["sqlite", "postgres"],
    refused: "raw",
    control: "raw allowed",
  },
  {
    name: "an explain format that is SQL",
    run: (ex) =>
      ex.selectFrom("posts").select("body").explain("text, analyze) delete from posts where $1::int > 0 --" as never),
    databases: ["postgres"],
    refused: "raw",
    control: "raw allowed",
  },
  {
    name: "a raw fragment ending in - before a negative literal",
    run: (ex) =>
      ex.selectFrom("posts").select(sql`1 -${sql.lit(-1)}`.as("x"))
        .modifyEnd(sql`\n, title from posts where tenant_id <> ?`).execute(),
    databases: ["sqlite"],
    refused: "raw",
    control: "raw allowed",
  },
  {
    name: "a raw fragment hiding a quote in SQLite's [name]",
    run: (ex) =>
      ex.selectFrom("posts").select(sql`1 as [a'] union all select body from posts where ? --'`.as("y"))
        .execute(),
    databases: ["sqlite"],
    refused: "raw",
    control: "raw allowed",
  },
];

/** What tenant 1's attack left behind: its result, and tenant 2's rows and the uncovered tags afterwards. */
async function attempt(db: AnyDb, ex: AnyDb, attack: Attack, database: TestDatabase) {
  const before = await tenant2Snapshot(db);
  let result: unknown;
  let error: unknown;
  try {
    result = await rlsContext.runAsync(T1, () => attack.run(ex, database, db));
  } catch (e) {
    error = e;
  }
  const tags = JSON.stringify(plainRows(await db.selectFrom("tags").select("label").orderBy("id").execute()));
  const changed = (await tenant2Snapshot(db)) !== before;
  return { result, error, changed, tags };
}

for (const attack of attacks) {
  suite.test(`shape attack: ${attack.name}`, async ({ db, database }) => {
    const { result, error, changed, tags } = await attempt(db, rls(db), attack, database);
    assert.equal(changed, false, "tenant 2's rows changed");
    assert.ok(!tags.includes(MARK), `tenant 2's data was copied: ${tags}`);
    if (attack.refused === undefined) {
      if (error !== undefined) throw error;
      assertNoLeak(result);
    } else {
      assert.ok(error !== undefined, `expected a refusal, got ${JSON.stringify(result)}`);
      assertNoLeak(error, "the error");
      const expected = attack.refused === "policy"
        ? isRLSPolicyViolation(error)
        : attack.refused === "raw"
        ? isRawSqlRefusedError(error)
        : error instanceof TypeError;
      assert.ok(expected, `expected a ${attack.refused} refusal: ${String(error)}`);
    }
  }, attack.databases === undefined ? {} : { databases: attack.databases });

  suite.test(`shape attack (negative control, no plugin): ${attack.name}`, async ({ db, database }) => {
    const control = attack.control === "raw allowed" ? rls(db, { allowRawSql: true }) : bare(db);
    const { result, error, changed, tags } = await attempt(db, control, attack, database);
    const leaked = changed || tags.includes(MARK) || attack.reveals?.(result) === true ||
      JSON.stringify(result ?? null, (_k, v) => typeof v === "bigint" ? String(v) : v).includes(MARK);
    assert.ok(leaked, `the attack did not reach tenant 2 without the plugin: ${String(error ?? "")}`);
  }, attack.databases === undefined ? {} : { databases: attack.databases });
}

// The fail-closed predicate ("match nothing") is its own conjunct too.
suite.test("shape attack: raw OR against the fail-closed predicate", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  const read = (ex: AnyDb) => ex.selectFrom("posts").selectAll().where(sql<boolean>`id = 3 or id = 4`).execute();
  // A context without a tenant, and no context under requireContext: false.
  const noTenant = await rlsContext.runAsync({ auth: { userId: 9, roles: ["user"] } }, () => read(rls(db)));
  assert.deepEqual(noTenant, []);
  assert.deepEqual(await read(rls(db, { requireContext: false })), []);
  assert.ok(isRLSContextError(await rejection(read(rls(db)))));
  // Negative control: the same condition without the plugin reads tenant 2's row.
  assert.ok(JSON.stringify(await read(bare(db))).includes(MARK));
  assert.equal(await tenant2Snapshot(db), before);
});

suite.test("shape attack: inert raw fragments still run under RLS", async ({ db, dialect }) => {
  await rlsContext.runAsync(T1, async () => {
    const ex = rls(db);
    const rows = await ex.selectFrom("posts").select([
      "id",
      sql<number>`count(*) over ()`.as("n"),
      sql<string>`coalesce(upper(${sql.ref("title")}), 'none')`.as("t"),
    ]).where(sql<boolean>`${sql.ref("id")} in (1, 2, 3) and title <> 'x'`).orderBy("id").execute();
    assert.deepEqual(plainRows(rows).map((r) => [Number(r.id), Number(r.n), r.t]), [[1, 2, "A1"], [2, 2, "A2"]]);
    const stamp = dialect === "sqlite" ? sql`datetime('now')` : sql`current_timestamp`;
    assert.equal((await ex.selectFrom("posts").select(stamp.as("s")).execute()).length, 2);
  });
});

suite.test("shape attack: a query compiled earlier (in another context) is refused", async ({ db }) => {
  const ex = rls(db);
  const before = await tenant2Snapshot(db);
  const t2 = await rlsContext.runAsync(T2, () => Promise.resolve(ex.selectFrom("posts").select("body").compile()));
  const system = await rlsContext.asSystemAsync(() =>
    Promise.resolve(ex.updateTable("posts").set({ title: "pwn" }).compile())
  );
  await rlsContext.runAsync(T1, async () => {
    for (const compiled of [t2, system]) {
      const error = await rejection(ex.executeQuery(compiled));
      assert.ok(isRawSqlRefusedError(error), String(error));
      assert.match(String(error), /precompiled query/);
    }
    // Compiled and run at once (what execute() does): fine.
    const rows = (await ex.executeQuery(ex.selectFrom("posts").select("body").compile())).rows;
    assert.deepEqual(plainRows(rows), [{ body: "one" }, { body: "two" }]);
    // A stored compiled query runs again only by an explicit opt-in.
    const own = ex.selectFrom("posts").select("body").compile();
    await ex.executeQuery(own);
    assert.ok(isRawSqlRefusedError(await rejection(ex.executeQuery(own))));
  });
  // Negative control: the query compiled as tenant 2 does read tenant 2's rows.
  assert.ok(JSON.stringify((await bare(db).executeQuery(t2)).rows).includes(MARK));
  assert.equal(await tenant2Snapshot(db), before);
});

// Views: a view is a name like a table to the plugin. Listed in the schema
// (with the view's tenant column), it is filtered; unlisted, it is not (the
// documented limit: list views, or use native policies with
// security_invoker views).
suite.test("shape decision: a view listed in the schema is filtered; an unlisted one is not", async ({ db }) => {
  await db.schema.createView("posts_view").as(db.selectFrom("posts").select(["id", "tenant_id", "body"])).execute();
  const schema = { ...tenantSchema, posts_view: tenantSchema.posts };
  // deno-lint-ignore no-explicit-any
  const listed = createExecutorSync(db as AnyDb, [rlsPlugin({ schema: schema as any })]);
  const read = (ex: AnyDb) =>
    rlsContext.runAsync(T1, () => ex.selectFrom("posts_view").select("body").orderBy("id").execute());
  assert.deepEqual(plainRows(await read(listed)), [{ body: "one" }, { body: "two" }]);
  // The limit, pinned: an unlisted view reads every tenant's rows.
  assert.ok(JSON.stringify(await read(rls(db))).includes(MARK));
});

// ON DELETE CASCADE runs in the database, where no application-level scope
// reaches (and PostgreSQL runs referential actions without RLS too). The
// decision: document it, and make cross-tenant references impossible with
// composite foreign keys `(tenant_id, parent_id) references parents
// (tenant_id, id)`.
suite.test("shape decision: a cascade crosses tenants only through a cross-tenant reference", async (ctx) => {
  const { db, database } = ctx;
  if (database === "sqlite") await sql`pragma foreign_keys = on`.execute(db);
  const raw = db as AnyDb;
  await raw.schema.createTable("parents")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addUniqueConstraint("parents_tenant_id", ["tenant_id", "id"])
    .execute();
  await raw.schema.createTable("loose_children")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("parent_id", "integer", (c) => c.notNull().references("parents.id").onDelete("cascade"))
    .addColumn("body", "varchar(100)", (c) => c.notNull())
    .execute();
  await raw.schema.createTable("tight_children")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("parent_id", "integer", (c) => c.notNull())
    .addColumn("body", "varchar(100)", (c) => c.notNull())
    .addForeignKeyConstraint(
      "tight_fk",
      ["tenant_id", "parent_id"],
      "parents",
      ["tenant_id", "id"],
      (c) => c.onDelete("cascade"),
    )
    .execute();
  await raw.insertInto("parents").values([{ id: 1, tenant_id: 1 }, { id: 2, tenant_id: 2 }]).execute();
  // The planted cross-tenant reference: tenant 2's child of tenant 1's parent.
  await raw.insertInto("loose_children").values({ id: 1, tenant_id: 2, parent_id: 1, body: MARK }).execute();
  // A composite key refuses it.
  const refused = await rejection(
    raw.insertInto("tight_children").values({ id: 1, tenant_id: 2, parent_id: 1, body: MARK }).execute(),
  );
  assert.match(String(refused), /foreign key|FOREIGN KEY|violates/i);
  const schema = {
    parents: tenantSchema.posts,
    loose_children: tenantSchema.posts,
    tight_children: tenantSchema.posts,
  };
  // deno-lint-ignore no-explicit-any
  const ex = createExecutorSync(raw, [rlsPlugin({ schema: schema as any })]);
  await rlsContext.runAsync(T1, () => ex.deleteFrom("parents").where("id", "=", 1).execute());
  // The limit, pinned: the database's cascade removed tenant 2's child.
  assert.deepEqual(await raw.selectFrom("loose_children").selectAll().execute(), []);
  assert.deepEqual(plainRows(await raw.selectFrom("parents").select("id").execute()), [{ id: 2 }]);
});

// MariaDB compares strings under the column's collation: the default is
// case- and pad-insensitive, so tenant 'acme' matches 'ACME ' (another
// tenant). The decision: string tenant ids on MySQL/MariaDB belong in a
// binary no-pad column (varbinary, or `collate utf8mb4_nopad_bin`); the RLS
// docs say so. (SQLite and PostgreSQL compare text exactly by default.)
suite.test("shape decision: string tenant ids on MariaDB need a binary no-pad collation", async ({ db }) => {
  const raw = db as AnyDb;
  for (const [table, type] of [["ci_accounts", "varchar(20)"], ["bin_accounts", "varbinary(20)"]] as const) {
    await raw.schema.createTable(table)
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("tenant", sql.raw(type))
      .addColumn("secret", "varchar(100)")
      .execute();
    await raw.insertInto(table).values([{ id: 1, tenant: "acme", secret: "mine" }, {
      id: 2,
      tenant: "ACME ",
      secret: MARK,
    }]).execute();
  }
  const byTenant = { policies: [filter("all", (c) => ({ tenant: c.auth.tenantId }))] };
  const schema = { ci_accounts: byTenant, bin_accounts: byTenant };
  // deno-lint-ignore no-explicit-any
  const ex = createExecutorSync(raw, [rlsPlugin({ schema: schema as any })]);
  const acme = { auth: { userId: 1, tenantId: "acme", roles: [] } };
  const read = (table: string) =>
    rlsContext.runAsync(acme, () => ex.selectFrom(table).select("secret").orderBy("id").execute());
  // The limit, pinned: the default collation lets 'acme' read 'ACME '.
  assert.ok(JSON.stringify(await read("ci_accounts")).includes(MARK));
  assert.deepEqual(plainRows(await read("bin_accounts")), [{ secret: "mine" }]);
}, { databases: ["mariadb"] });
