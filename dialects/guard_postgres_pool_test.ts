import assert from "node:assert/strict";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { isConnectionError, parseDatabaseError } from "../core/mod.ts";
import { guardPostgresPool } from "./mod.ts";
import { dbSuite, POSTGRES_URL, rejection, rollbackOpen } from "../_test/harness.ts";

// The fault (pg-pool leaving a checked-out client without an `error`
// listener, node-postgres#2509) exists with `pg` only: these tests run on
// PostgreSQL alone.

interface DB {
  ledger: { n: number };
}

const suite = dbSuite<DB>(import.meta, {
  tables: async (db) => {
    await db.schema.createTable("ledger").addColumn("n", "integer", (c) => c.notNull()).execute();
  },
});

/** Resolves once the backend `pid` has left `pg_stat_activity`. */
async function gone(admin: Kysely<DB>, pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where pid = ${pid}`
      .execute(admin);
    if (Number(rows[0]!.n) === 0) return;
  }
  throw new Error(`Backend ${pid} is still running after pg_terminate_backend`);
}

suite.test(
  "guardPostgresPool() turns a backend killed between two statements of a transaction into a rejected statement, 20 times",
  async ({ db: admin }) => {
    const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(admin)).rows[0]!.s;
    const lost: Error[] = [];
    let notify = (): void => {};
    const pool = guardPostgresPool(
      new pg.Pool({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}`, max: 2 }),
      {
        onError: (error) => {
          lost.push(error);
          // pg reports the server's FATAL 57P01, then the closed socket.
          if ((error as { code?: unknown }).code === "57P01") notify();
        },
      },
    );
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    try {
      for (let round = 0; round < 20; round++) {
        const trx = await db.startTransaction().execute();
        try {
          const { pid } = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]!;
          await trx.insertInto("ledger").values({ n: round }).execute(); // statement 1
          const seen = lost.length;
          const told = new Promise<void>((resolve) => notify = resolve);
          await sql`select pg_terminate_backend(${pid})`.execute(admin);
          await gone(admin, pid);
          // The error reaches the client while no query is running on it:
          // the case that crashed the process before the guard.
          await told;
          assert.ok(lost.length > seen);
          const raw = await rejection(trx.insertInto("ledger").values({ n: 100 + round }).execute()); // statement 2
          const error = parseDatabaseError(raw, "postgres");
          assert.ok(isConnectionError(error), `${error.name}: ${error.message}`);
        } finally {
          await rollbackOpen(trx);
        }
        // Nothing of the transaction was committed, and the pool serves the next query.
        assert.deepEqual(await admin.selectFrom("ledger").select("n").execute(), []);
        assert.deepEqual((await sql<{ v: number }>`select 1 as v`.execute(db)).rows, [{ v: 1 }]);
      }
      assert.ok(
        lost.filter((e) => (e as { code?: unknown }).code === "57P01").length === 20,
        lost.map((e) => e.message).join("; "),
      );
      assert.ok(pool.totalCount <= 2);
      assert.equal(pool.waitingCount, 0);
    } finally {
      await db.destroy();
    }
  },
  { databases: ["postgres"] },
);

/**
 * A program that kills its own backend between two statements of a
 * transaction, with or without the guard, and prints what statement 2 got.
 */
const KILL_PROGRAM = `
import pg from "pg";
import { Kysely, PostgresDialect, sql } from "kysely";
import { guardPostgresPool } from ${JSON.stringify(new URL("./mod.ts", import.meta.url).href)};
const url = ${JSON.stringify(POSTGRES_URL)};
const pool = new pg.Pool({ connectionString: url, max: 1 });
let told = () => {};
const seen = new Promise((resolve) => told = resolve);
if (Deno.args[0] === "guard") guardPostgresPool(pool, { onError: () => told() });
const db = new Kysely({ dialect: new PostgresDialect({ pool }) });
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const trx = await db.startTransaction().execute();
const { pid } = (await sql\`select pg_backend_pid() as pid\`.execute(trx)).rows[0];
await admin.query("select pg_terminate_backend($1)", [pid]);
await Promise.race([seen, new Promise((resolve) => setTimeout(resolve, 3000))]);
const outcome = await sql\`select 1\`.execute(trx).then(() => "resolved", (e) => e.message);
await trx.rollback().execute().catch(() => {});
await admin.end();
await db.destroy();
console.log("alive: " + outcome);
`;

async function runKillProgram(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", KILL_PROGRAM, ...args],
    cwd: new URL("..", import.meta.url),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

suite.test(
  "a backend killed between two statements crashes an unguarded process and not a guarded one",
  async () => {
    const [unguarded, guarded] = await Promise.all([runKillProgram([]), runKillProgram(["guard"])]);
    // Negative control: without the guard the unhandled `error` event ends the process.
    assert.notEqual(unguarded.code, 0, unguarded.stdout);
    assert.match(unguarded.stderr, /Uncaught error: terminating connection due to administrator command/);
    assert.doesNotMatch(unguarded.stdout, /alive/);
    // The same program with the guard lives on; statement 2 rejects.
    assert.equal(guarded.code, 0, guarded.stderr);
    assert.equal(guarded.stdout.trim(), "alive: Client has encountered a connection error and is not queryable");
  },
  { databases: ["postgres"] },
);
