// Smoke test of the packed npm package, run by Node and by Bun (smoke/run.sh).
// Imports `kysera` by name, as a user would, and checks the same behaviour the
// Deno tests prove, on SQLite, PostgreSQL and MariaDB: a query round trip, a
// unique violation translated into a typed error, a row scope of the executor
// holding inside a transaction and a join, and a signed keyset walk.
import { Kysely, MysqlDialect, PostgresDialect, sql, SqliteDialect } from "kysely";
import { getDialect, isKyseraError, isUniqueConstraintError, paginateCursor, parseDatabaseError } from "kysera";
import * as core from "kysera/core";
import { createExecutor } from "kysera/executor";
import { withTransaction } from "kysera/dal";
import { createORM } from "kysera/repository";
import { softDeletePlugin, withDeleted } from "kysera/soft-delete";
import { timestampsPlugin } from "kysera/timestamps";
import {
  defineRLSSchema,
  filter,
  generateNativePolicies,
  isRLSPolicyViolation,
  nativeRLSPlugin,
  rlsContext,
  rlsPlugin,
} from "kysera/rls";
import { auditPlugin, auditReader, createAuditTable } from "kysera/audit";
import { wrapSyncSqlite } from "kysera/dialects";

const runtime = typeof globalThis.Bun !== "undefined" ? `bun ${globalThis.Bun.version}` : `node ${process.version}`;
const env = (name, fallback) => process.env[name] ?? fallback;
const pgUrl = env("KYSERA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test");
const myUrl = new URL(env("KYSERA_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"));
const table = `kysera_smoke_${process.pid}`;

async function sqliteDialect() {
  if (typeof globalThis.Bun !== "undefined") {
    const { Database } = await import("bun:sqlite");
    return new SqliteDialect({ database: wrapSyncSqlite(new Database(":memory:")) });
  }
  const { default: BetterSqlite3 } = await import("better-sqlite3");
  return new SqliteDialect({ database: new BetterSqlite3(":memory:") });
}

const databases = {
  sqlite: sqliteDialect,
  postgres: async () => {
    const { default: pg } = await import("pg");
    return new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 1 }) });
  },
  mariadb: async () => {
    const { createPool } = await import("mysql2");
    return new MysqlDialect({
      pool: createPool({
        host: myUrl.hostname,
        port: Number(myUrl.port || 3306),
        user: decodeURIComponent(myUrl.username || "root"),
        password: decodeURIComponent(myUrl.password),
        database: myUrl.pathname.slice(1) || "test",
        connectionLimit: 1,
      }),
    });
  },
};

if (core.getDialect !== getDialect) throw new Error("kysera and kysera/core export different functions");

let passed = 0;
for (const [name, dialect] of Object.entries(databases)) {
  const db = new Kysely({ dialect: await dialect() });
  try {
    await db.schema.dropTable(table).ifExists().execute();
    await db.schema.createTable(table)
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("name", "varchar(50)", (c) => c.notNull().unique())
      .addColumn("updated_at", name === "sqlite" ? "text" : name === "postgres" ? "timestamptz" : "datetime(3)")
      .addColumn("deleted_at", name === "sqlite" ? "text" : name === "postgres" ? "timestamptz" : "datetime(3)")
      .execute();
    await db.insertInto(table).values([{ id: 1, name: "x" }, { id: 2, name: "y" }]).execute();
    const rows = await db.selectFrom(table).select("name").orderBy("id").execute();
    const names = rows.map((r) => r.name).join(",");
    if (names !== "x,y") throw new Error(`${name}: expected x,y, got ${names}`);
    let typed;
    try {
      await db.insertInto(table).values({ id: 3, name: "x" }).execute();
    } catch (raw) {
      typed = parseDatabaseError(raw, getDialect(db));
    }
    if (!isKyseraError(typed) || !isUniqueConstraintError(typed) || typed.cause === undefined) {
      throw new Error(`${name}: the unique violation was not translated: ${typed}`);
    }
    const count = await sql`SELECT COUNT(*) AS n FROM ${sql.table(table)}`.execute(db);
    if (Number(count.rows[0].n) !== 2) throw new Error(`${name}: the failed insert wrote a row`);

    // The executor: a row scope hiding id 2 holds in a transaction and a self-join.
    const hideTwo = { name: "hide-two", scopeRows: (ref, eb) => eb(ref.column("id"), "<>", 2) };
    const executor = await createExecutor(db, [hideTwo]);
    const seen = await executor.transaction().execute((trx) =>
      trx.selectFrom(`${table} as a`).innerJoin(`${table} as b`, "b.id", "a.id").select("a.id").orderBy("a.id")
        .execute()
    );
    if (seen.map((r) => Number(r.id)).join(",") !== "1") {
      throw new Error(`${name}: the row scope leaked: ${JSON.stringify(seen)}`);
    }

    // The DAL: a nested withTransaction is a savepoint, rolled back alone.
    await withTransaction(executor, async (ctx) => {
      await ctx.db.insertInto(table).values({ id: 10, name: "outer" }).execute();
      await withTransaction(ctx, async (inner) => {
        await inner.db.insertInto(table).values({ id: 11, name: "inner" }).execute();
        throw new Error("undo the inner work");
      }).catch(() => {});
    });
    const kept = await db.selectFrom(table).select("id").where("id", ">=", 10).execute();
    if (kept.map((r) => Number(r.id)).join(",") !== "10") {
      throw new Error(`${name}: savepoint rollback: ${JSON.stringify(kept)}`);
    }
    await db.deleteFrom(table).where("id", ">=", 10).execute();

    // A repository: create, read back, and a duplicate as a typed error naming the column.
    const repo = createORM(executor).createRepository({ tableName: table });
    const created = await repo.create({ id: 20, name: "repo" });
    if (Number(created.id) !== 20 || (await repo.findById(20))?.name !== "repo") {
      throw new Error(`${name}: repository round trip: ${JSON.stringify(created)}`);
    }
    const duplicate = await repo.create({ id: 21, name: "repo" }).then(() => undefined, (e) => e);
    if (!isUniqueConstraintError(duplicate) || !duplicate.columns?.includes("name")) {
      throw new Error(`${name}: repository duplicate: ${duplicate}`);
    }
    await repo.delete(20);

    // The plugins: a soft-deleted row is hidden and kept; every write is stamped.
    const plugins = [softDeletePlugin({ tables: [table] }), timestampsPlugin({ tables: [table], createdAt: false })];
    const stamped = createORM(await createExecutor(db, plugins), plugins).createRepository({ tableName: table });
    const kept2 = await stamped.create({ id: 30, name: "kept" });
    if (kept2.updated_at === null || kept2.updated_at === undefined) throw new Error(`${name}: no updated_at`);
    await stamped.softDelete(30);
    if ((await stamped.findById(30)) !== undefined) throw new Error(`${name}: a soft-deleted row leaked`);
    if ((await withDeleted(() => stamped.findById(30)))?.deleted_at == null) {
      throw new Error(`${name}: the soft-deleted row is gone`);
    }
    await stamped.hardDelete(30);

    // Row-level security and audit: tenant 1 sees and writes only its rows, and
    // every write leaves an audit row in the same transaction.
    const tenants = `${table}_t`;
    const audits = `${table}_audit`;
    await db.schema.dropTable(tenants).ifExists().execute();
    await db.schema.dropTable(audits).ifExists().execute();
    await db.schema.createTable(tenants)
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("tenant_id", "integer", (c) => c.notNull())
      .addColumn("body", "varchar(50)", (c) => c.notNull())
      .execute();
    await createAuditTable(db, { table: audits });
    await db.insertInto(tenants).values([{ id: 1, tenant_id: 1, body: "mine" }, {
      id: 2,
      tenant_id: 2,
      body: "theirs",
    }])
      .execute();
    const tenantPlugins = [
      rlsPlugin({
        schema: defineRLSSchema({
          [tenants]: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
        }),
      }),
      auditPlugin({ table: audits, tables: [tenants], actor: () => String(rlsContext.getUserId()) }),
    ];
    const tenantDb = await createExecutor(db, tenantPlugins);
    try {
      await rlsContext.runAsync({ auth: { userId: "ada", tenantId: 1, roles: [] } }, async () => {
        const seen = await tenantDb.selectFrom(tenants).select("body").execute();
        if (seen.map((r) => r.body).join() !== "mine") throw new Error(`${name}: RLS leaked ${JSON.stringify(seen)}`);
        const forged = await tenantDb.insertInto(tenants).values({ id: 3, tenant_id: 2, body: "forged" }).execute()
          .then(() => undefined, (e) => e);
        if (!isRLSPolicyViolation(forged)) throw new Error(`${name}: forged insert not refused: ${forged}`);
        await tenantDb.updateTable(tenants).set({ body: "changed" }).execute();
      });
      const theirs = await db.selectFrom(tenants).select("body").where("id", "=", 2).executeTakeFirst();
      if (theirs?.body !== "theirs") throw new Error(`${name}: tenant 2 was changed`);
      const trail = await auditReader(db, { table: audits }).getTableAuditLogs(tenants);
      if (trail.map((e) => `${e.actor} ${e.operation} ${e.entityId}`).join() !== "ada update 1") {
        throw new Error(`${name}: audit trail ${JSON.stringify(trail.map((e) => [e.actor, e.operation, e.entityId]))}`);
      }
    } finally {
      await db.schema.dropTable(tenants).ifExists().execute();
      await db.schema.dropTable(audits).ifExists().execute();
    }

    // A signed keyset walk, one row a page, forward.
    const secret = "smoke-secret-of-at-least-thirty-two-bytes";
    const walked = [];
    let after;
    do {
      const page = await paginateCursor(db.selectFrom(table).select(["id", "name"]), {
        db,
        orderBy: [{ column: "name", direction: "desc", type: "string" }],
        limit: 1,
        secret,
        ...(after ? { after } : {}),
      });
      walked.push(...page.data.map((r) => r.name));
      after = page.nextCursor;
    } while (after);
    if (walked.join(",") !== "y,x") throw new Error(`${name}: the keyset walk returned ${walked.join(",")}`);

    console.log(
      `${runtime} ${name}: ok [${names}] ${typed.name}(${typed.code}) scope ok, savepoint ok, repository ok, plugins ok, rls+audit ok, walk [${walked}]`,
    );
    passed++;
  } finally {
    await db.schema.dropTable(table).ifExists().execute().catch(() => {});
    await db.destroy(); // the executor shares db's driver
  }
}

// Native PostgreSQL row-level security, set per transaction by the executor,
// as a role that neither owns the table nor bypasses RLS.
{
  const { default: pg } = await import("pg");
  const owner = new Kysely({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 1 }) }),
  });
  const role = `kysera_smoke_app_${process.pid}`;
  const native = `kysera_smoke_native_${process.pid}`;
  let app;
  try {
    await owner.schema.dropTable(native).ifExists().execute();
    await owner.schema.createTable(native).addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("tenant_id", "integer", (c) => c.notNull()).addColumn("body", "varchar(50)", (c) => c.notNull())
      .execute();
    await owner.insertInto(native).values([{ id: 1, tenant_id: 1, body: "mine" }, {
      id: 2,
      tenant_id: 2,
      body: "theirs",
    }])
      .execute();
    const schema = defineRLSSchema({
      [native]: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
    });
    for (const ddl of generateNativePolicies(schema, { columnTypes: { tenant_id: "integer" } })) {
      await sql.raw(ddl).execute(owner);
    }
    await sql.raw(`drop role if exists ${role}`).execute(owner);
    await sql.raw(`create role ${role} login nobypassrls nosuperuser`).execute(owner);
    await sql.raw(`grant select, insert, update, delete on ${native} to ${role}`).execute(owner);
    const url = new URL(pgUrl);
    url.username = role;
    url.password = "";
    app = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url.toString(), max: 1 }) }),
    });
    const db = await createExecutor(app, [nativeRLSPlugin({ checkTables: [native] })]);
    const seen = await rlsContext.runAsync(
      { auth: { userId: 1, tenantId: 1, roles: [] } },
      () => sql`select body from ${sql.table(native)}`.execute(db),
    );
    if (seen.rows.map((r) => r.body).join() !== "mine") {
      throw new Error(`native RLS leaked ${JSON.stringify(seen.rows)}`);
    }
    const none = await sql`select body from ${sql.table(native)}`.execute(db);
    if (none.rows.length !== 0) throw new Error(`native RLS without a context returned ${none.rows.length} rows`);
    console.log(`${runtime} postgres native RLS: ok [${seen.rows.map((r) => r.body)}]`);
  } finally {
    await app?.destroy();
    await owner.schema.dropTable(native).ifExists().execute().catch(() => {});
    await sql.raw(`drop role if exists ${role}`).execute(owner).catch(() => {});
    await owner.destroy();
  }
}

console.log(`${runtime} smoke: ${passed} of ${Object.keys(databases).length} databases ok`);
