/**
 * The audit plugin's cost on writes: a single-row UPDATE and a 100-row bulk
 * UPDATE, on SQLite (node:sqlite, in memory) and PostgreSQL
 * (`KYSERA_TEST_POSTGRES_URL`, schema `kysera_audit_bench`; the bench fails
 * when the server is unreachable). Each group has raw Kysely as its baseline,
 * the executor without plugins, and the executor with `auditPlugin()`, so
 * results read as ratios.
 *
 * An audited lone write runs in its own transaction: begin, the locking read
 * of the old rows, the UPDATE with `RETURNING`, one INSERT of the audit rows
 * (one per changed row), commit. The statements each write sends are counted
 * once (through Kysely's `log` option, on separate instances so the timed
 * ones carry no logging) and printed before the benches run.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Kysely, type KyselyConfig, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import { createExecutorSync } from "../executor/mod.ts";
import { auditPlugin, createAuditTable } from "../plugins/audit/mod.ts";

interface DB {
  posts: { id: number; title: string; n: number };
}

const ROWS = 10_000;
const BULK = 100;
const POSTGRES_URL = Deno.env.get("KYSERA_TEST_POSTGRES_URL") ?? "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA = "kysera_audit_bench";

type Log = KyselyConfig["log"];

/** An in-memory SQLite database with the table; `open(log)` makes Kysely instances on the same handle. */
async function sqliteSetup(): Promise<(log?: Log) => Kysely<DB>> {
  const handle = new DatabaseSync(":memory:");
  const open = (log?: Log) =>
    new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }), ...(log ? { log } : {}) });
  const db = open();
  await db.schema.createTable("posts").addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("title", "text", (c) => c.notNull()).addColumn("n", "integer", (c) => c.notNull()).execute();
  handle.exec("begin");
  const insert = handle.prepare("insert into posts (id, title, n) values (?, ?, 0)");
  for (let i = 1; i <= ROWS; i++) insert.run(i, `post ${i}`);
  handle.exec("commit");
  await createAuditTable(db);
  return open;
}

/** The table in its own schema on PostgreSQL; throws when the server is unreachable. */
async function postgresSetup(): Promise<(log?: Log) => Kysely<DB>> {
  const setup = new pg.Client({ connectionString: POSTGRES_URL });
  try {
    await setup.connect();
  } catch (error) {
    throw new Error(`PostgreSQL is unreachable at ${POSTGRES_URL} (set KYSERA_TEST_POSTGRES_URL)`, { cause: error });
  }
  try {
    await setup.query(`drop schema if exists ${SCHEMA} cascade; create schema ${SCHEMA}`);
    await setup.query(`create table ${SCHEMA}.posts (id integer primary key, title text not null, n integer not null)`);
    await setup.query(`insert into ${SCHEMA}.posts select i, 'post ' || i, 0 from generate_series(1, ${ROWS}) i`);
  } finally {
    await setup.end();
  }
  const open = (log?: Log) =>
    new Kysely<DB>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 1, options: `-c search_path=${SCHEMA}` }),
      }),
      ...(log ? { log } : {}),
    });
  const db = open();
  await createAuditTable(db);
  await db.destroy();
  return open;
}

const single = (k: Kysely<DB>, i: number) =>
  k.updateTable("posts").set({ n: i }).where("id", "=", 1 + (i % ROWS)).execute();
const bulk = (k: Kysely<DB>, i: number) => {
  const from = (i * BULK) % ROWS;
  return k.updateTable("posts").set((eb) => ({ n: eb("n", "+", 1) }))
    .where("id", ">", from).where("id", "<=", from + BULK).execute();
};

/** The statements one write sends, counted with Kysely's `log`, and the audit rows it left. */
async function countStatements(
  open: (log?: Log) => Kysely<DB>,
  write: (k: Kysely<DB>, i: number) => Promise<unknown>,
  audited: boolean,
  pooled: boolean,
): Promise<{ statements: number; auditRows: number }> {
  let statements = 0;
  const db = open(() => void statements++);
  try {
    const k = audited ? createExecutorSync(db, [auditPlugin()]) : db;
    // deno-lint-ignore no-explicit-any
    const audit = () => (db as Kysely<any>).selectFrom("audit_logs").select((eb) => eb.fn.countAll().as("n"));
    const before = Number((await audit().executeTakeFirstOrThrow()).n);
    statements = 0;
    await write(k, 7);
    const counted = statements;
    return { statements: counted, auditRows: Number((await audit().executeTakeFirstOrThrow()).n) - before };
  } finally {
    // The SQLite instances share one handle, which destroy() would close: only pools are ended.
    if (pooled) await db.destroy();
  }
}

const databases = [["SQLite", await sqliteSetup(), false], ["PostgreSQL", await postgresSetup(), true]] as const;

for (const [database, open, pooled] of databases) {
  const lines: string[] = [];
  for (const [label, write, rows] of [["single-row update", single, 1], [`${BULK}-row update`, bulk, BULK]] as const) {
    const plain = await countStatements(open, write, false, pooled);
    const audited = await countStatements(open, write, true, pooled);
    assert.equal(plain.auditRows, 0);
    assert.equal(audited.auditRows, rows, `${database} ${label}: one audit row per changed row`);
    lines.push(`${label}: ${audited.statements} statements audited, ${plain.statements} unaudited`);
  }
  console.log(`${database} statements per write: ${lines.join("; ")}`);
}

for (const [database, open] of databases) {
  const db = open();
  const unaudited = createExecutorSync(db, []);
  const audited = createExecutorSync(db, [auditPlugin()]);
  for (const [label, write] of [["single-row update", single], [`${BULK}-row update`, bulk]] as const) {
    const group = `${database}: ${label}`;
    let i = 0;
    Deno.bench({ group, name: "raw Kysely", baseline: true, fn: async () => void await write(db, i++) });
    Deno.bench({ group, name: "executor, no plugins", fn: async () => void await write(unaudited, i++) });
    Deno.bench({ group, name: "executor + auditPlugin", fn: async () => void await write(audited, i++) });
  }
}
