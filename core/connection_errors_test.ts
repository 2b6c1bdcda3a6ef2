import assert from "node:assert/strict";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { ConnectionError, DatabaseError, isConnectionError, parseDatabaseError } from "./mod.ts";
import { dbSuite, POSTGRES_URL, rejection, rollbackOpen } from "../_test/harness.ts";

// Connection errors the drivers raise themselves, with no error code,
// provoked for real. Each fault exists on one server only (SQLite has no
// connection to kill and no pool to exhaust), hence `databases`.
const suite = dbSuite<Record<string, never>>(import.meta);

suite.test(
  "parseDatabaseError() reads mysql2's statement on a closed connection as a ConnectionError",
  async ({ db, dialect, connect }) => {
    const trx = await db.startTransaction().execute();
    try {
      const { id } = (await sql<{ id: number }>`select connection_id() as id`.execute(trx)).rows[0]!;
      await sql.raw(`KILL ${Number(id)}`).execute(connect());
      // The first statement after the kill may still meet the dying socket
      // (MariaDB 1927, PROTOCOL_CONNECTION_LOST) or the closed connection.
      const first = parseDatabaseError(await rejection(sql`select 1`.execute(trx)), dialect);
      assert.ok(isConnectionError(first), `${first.name}: ${first.message}`);
      // From then on mysql2 refuses to send anything, with no code at all.
      const raw = await rejection(sql`select 1`.execute(trx));
      assert.match((raw as Error).message, /^Can't add new command when connection is in closed state$/);
      assert.equal((raw as { code?: unknown }).code, undefined);
      const error = parseDatabaseError(raw, dialect);
      assert.ok(error instanceof ConnectionError, `${error.name}: ${error.message}`);
      assert.equal(error.code, "CONNECTION_ERROR");
      assert.equal(error.dialect, "mysql");
      assert.equal(error.cause, raw);
      // The pool opens a new connection for the next statement.
      assert.deepEqual((await sql<{ v: number }>`select 1 as v`.execute(db)).rows.map((r) => Number(r.v)), [1]);
    } finally {
      await rollbackOpen(trx);
    }
  },
  { databases: ["mariadb"] },
);

suite.test(
  "parseDatabaseError() reads pg-pool's acquire timeout as a ConnectionError",
  async ({ dialect }) => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1, connectionTimeoutMillis: 100 });
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) });
    try {
      const trx = await db.startTransaction().execute(); // holds the pool's one client
      try {
        const raw = await rejection(sql`select 1`.execute(db));
        assert.match((raw as Error).message, /^timeout exceeded when trying to connect$/);
        const error = parseDatabaseError(raw, dialect);
        assert.ok(error instanceof ConnectionError, `${error.name}: ${error.message}`);
        assert.equal(error.code, "CONNECTION_ERROR");
        assert.equal(error.dialect, "postgres");
        assert.equal(error.cause, raw);
        assert.equal(pool.waitingCount, 0);
      } finally {
        await rollbackOpen(trx);
      }
      // The held client is back: the pool serves the next statement.
      assert.deepEqual((await sql<{ v: number }>`select 1 as v`.execute(db)).rows, [{ v: 1 }]);
    } finally {
      await db.destroy();
    }
  },
  { databases: ["postgres"] },
);

Deno.test("parseDatabaseError() reads the driver-raised connection messages only without a code", () => {
  const closed = Object.assign(new Error("Can't add new command when connection is in closed state"), {
    fatal: true,
  });
  const timeout = new Error("timeout exceeded when trying to connect");
  assert.ok(parseDatabaseError(closed, "mysql") instanceof ConnectionError);
  assert.ok(parseDatabaseError(timeout, "postgres") instanceof ConnectionError);
  // A server error that happens to carry such words keeps its own class.
  const server = Object.assign(new Error("timeout exceeded when trying to connect"), { code: "42000" });
  const mysqlServer = Object.assign(new Error("Can't add new command when connection is in closed state"), {
    errno: 1064,
    code: "ER_PARSE_ERROR",
  });
  for (const error of [parseDatabaseError(server, "postgres"), parseDatabaseError(mysqlServer, "mysql")]) {
    assert.ok(error instanceof DatabaseError);
    assert.ok(!isConnectionError(error), error.name);
  }
});
