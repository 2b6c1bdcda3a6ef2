import assert from "node:assert/strict";
import { type Generated, Kysely, MysqlDialect, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { createPool } from "mysql2";
import {
  CheckConstraintError,
  ConnectionError,
  DatabaseError,
  DeadlockError,
  ForeignKeyError,
  getDialect,
  isCheckConstraintError,
  isConnectionError,
  isDatabaseError,
  isDeadlockError,
  isForeignKeyError,
  isLockTimeoutError,
  isNotNullError,
  isQueryTimeoutError,
  isSerializationError,
  isUniqueConstraintError,
  type KyseraError,
  LockTimeoutError,
  NotNullError,
  parseDatabaseError,
  QueryTimeoutError,
  SerializationError,
  UniqueConstraintError,
} from "./mod.ts";
import {
  addIdColumn,
  dbSuite,
  type DbTestContext,
  MARIADB_URL,
  POSTGRES_URL,
  rejection,
  rollbackOpen,
} from "../_test/harness.ts";

interface DB {
  users: { id: Generated<number>; email: string | null; age: number | null };
  posts: { id: Generated<number>; user_id: number; title: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("users"), database)
      .addColumn("email", "varchar(100)", (c) => c.notNull())
      .addColumn("age", "integer")
      .addUniqueConstraint("users_email_unique", ["email"])
      .addCheckConstraint("users_age_positive", sql`age > 0`)
      .execute();
    await addIdColumn(db.schema.createTable("posts"), database)
      .addColumn("user_id", "integer", (c) => c.notNull())
      .addColumn("title", "varchar(100)", (c) => c.notNull())
      .addForeignKeyConstraint("posts_user_fk", ["user_id"], "users", ["id"])
      .execute();
    await db.insertInto("users").values([{ email: "ada@example.com", age: 36 }, {
      email: "bob@example.com",
      age: 40,
    }]).execute();
    await db.insertInto("posts").values({ user_id: 1, title: "Hello" }).execute();
  },
});

/** Runs a query that must fail and translates what the driver threw. */
async function provoke(ctx: DbTestContext<DB>, promise: Promise<unknown>): Promise<KyseraError> {
  const raw = await rejection(promise);
  assert.ok(!isDatabaseError(raw), "the driver error reaches the caller untranslated");
  const error = parseDatabaseError(raw, getDialect(ctx.db));
  assert.equal((error as DatabaseError).dialect, ctx.dialect);
  assert.equal(error.cause, raw, "the driver error is kept as cause");
  return error;
}

suite.test("getDialect() reads the dialect from the adapter, also of a transaction", async (ctx) => {
  assert.equal(getDialect(ctx.db), ctx.dialect);
  await ctx.db.transaction().execute((trx) => {
    assert.equal(getDialect(trx), ctx.dialect);
    return Promise.resolve();
  });
});

suite.test("parseDatabaseError() maps a duplicate key to UniqueConstraintError", async (ctx) => {
  const error = await provoke(ctx, ctx.db.insertInto("users").values({ email: "ada@example.com", age: 1 }).execute());
  assert.ok(isUniqueConstraintError(error) && error instanceof UniqueConstraintError);
  assert.equal(error.code, "UNIQUE_VIOLATION");
  assert.equal(error.transient, false);
  const expected = {
    sqlite: { driverCode: "2067", constraint: undefined, table: "users", columns: ["email"] },
    postgres: { driverCode: "23505", constraint: "users_email_unique", table: "users", columns: ["email"] },
    mariadb: { driverCode: "1062", constraint: "users_email_unique", table: undefined, columns: undefined },
  }[ctx.database];
  assert.deepEqual(
    { driverCode: error.driverCode, constraint: error.constraint, table: error.table, columns: error.columns },
    expected,
  );
});

suite.test("parseDatabaseError() maps a duplicate primary key to UniqueConstraintError", async (ctx) => {
  const error = await provoke(ctx, ctx.db.insertInto("users").values({ id: 1, email: "new@example.com" }).execute());
  assert.ok(isUniqueConstraintError(error));
});

suite.test("parseDatabaseError() maps a missing parent row to ForeignKeyError", async (ctx) => {
  const error = await provoke(ctx, ctx.db.insertInto("posts").values({ user_id: 99, title: "Orphan" }).execute());
  assert.ok(isForeignKeyError(error) && error instanceof ForeignKeyError);
  assert.equal(error.code, "FOREIGN_KEY_VIOLATION");
  if (ctx.database !== "sqlite") { // SQLite names neither the constraint nor the columns
    assert.deepEqual(
      { constraint: error.constraint, table: error.table, columns: error.columns },
      { constraint: "posts_user_fk", table: "posts", columns: ["user_id"] },
    );
  }
});

suite.test("parseDatabaseError() maps deleting a referenced row to ForeignKeyError", async (ctx) => {
  const error = await provoke(ctx, ctx.db.deleteFrom("users").where("id", "=", 1).execute());
  assert.ok(isForeignKeyError(error));
  const left = await ctx.db.selectFrom("users").select("id").where("id", "=", 1).execute();
  assert.equal(left.length, 1, "nothing was deleted");
});

suite.test("parseDatabaseError() maps NULL in a NOT NULL column to NotNullError", async (ctx) => {
  const error = await provoke(ctx, ctx.db.insertInto("users").values({ email: null, age: 5 }).execute());
  assert.ok(isNotNullError(error) && error instanceof NotNullError);
  assert.equal(error.code, "NOT_NULL_VIOLATION");
  assert.deepEqual(error.columns, ["email"]);
});

suite.test("parseDatabaseError() maps a failed CHECK to CheckConstraintError", async (ctx) => {
  const error = await provoke(ctx, ctx.db.insertInto("users").values({ email: "neg@example.com", age: -1 }).execute());
  assert.ok(isCheckConstraintError(error) && error instanceof CheckConstraintError);
  assert.equal(error.code, "CHECK_VIOLATION");
  assert.equal(error.constraint, "users_age_positive");
  const count = await ctx.db.selectFrom("users").select("id").execute();
  assert.equal(count.length, 2, "no row was written");
});

suite.test("parseDatabaseError() maps a serialization failure to SerializationError", async (ctx) => {
  const other = ctx.connect();
  let raw: unknown;
  if (ctx.database === "postgres") {
    // Write skew under SERIALIZABLE: both read the set, both insert into it.
    const a = await ctx.db.startTransaction().setIsolationLevel("serializable").execute();
    const b = await other.startTransaction().setIsolationLevel("serializable").execute();
    try {
      await a.selectFrom("users").select("id").where("age", ">", 30).execute();
      await b.selectFrom("users").select("id").where("age", ">", 30).execute();
      await a.insertInto("users").values({ email: "a@example.com", age: 31 }).execute();
      raw = await rejection((async () => {
        await b.insertInto("users").values({ email: "b@example.com", age: 32 }).execute();
        await a.commit().execute();
        await b.commit().execute();
      })());
    } finally {
      await rollbackOpen(a, b);
    }
  } else if (ctx.database === "mariadb") {
    // A write to a row changed since this transaction's snapshot.
    const b = await other.startTransaction().setIsolationLevel("repeatable read").execute();
    try {
      await sql`SET SESSION innodb_snapshot_isolation = ON`.execute(b);
      await b.selectFrom("users").select("age").where("id", "=", 1).execute();
      await ctx.db.updateTable("users").set({ age: 50 }).where("id", "=", 1).execute();
      raw = await rejection(b.updateTable("users").set({ age: 60 }).where("id", "=", 1).execute());
    } finally {
      await rollbackOpen(b);
    }
  } else {
    // WAL: a read transaction may not write after another connection wrote.
    const b = await other.startTransaction().execute();
    try {
      await b.selectFrom("users").select("id").execute();
      await ctx.db.insertInto("users").values({ email: "a@example.com", age: 31 }).execute();
      raw = await rejection(b.insertInto("users").values({ email: "b@example.com", age: 32 }).execute());
    } finally {
      await rollbackOpen(b);
    }
  }
  const error = parseDatabaseError(raw, ctx.dialect);
  assert.ok(isSerializationError(error) && error instanceof SerializationError, String(raw));
  assert.equal(error.code, "SERIALIZATION_FAILURE");
  assert.equal(error.transient, true);
  assert.equal(error.driverCode, { postgres: "40001", mariadb: "1020", sqlite: "517" }[ctx.database]);
});

suite.test(
  "parseDatabaseError() maps a deadlock victim to DeadlockError",
  async (ctx) => {
    const other = ctx.connect();
    const a = await ctx.db.startTransaction().execute();
    const b = await other.startTransaction().execute();
    let results: PromiseSettledResult<unknown>[];
    try {
      if (ctx.database === "postgres") await sql`SET LOCAL deadlock_timeout = '50ms'`.execute(a);
      await a.updateTable("users").set({ age: 1 }).where("id", "=", 1).execute();
      await b.updateTable("users").set({ age: 2 }).where("id", "=", 2).execute();
      // Each now waits for the other's row: the database must pick a victim.
      results = await Promise.allSettled([
        a.updateTable("users").set({ age: 1 }).where("id", "=", 2).execute(),
        b.updateTable("users").set({ age: 2 }).where("id", "=", 1).execute(),
      ]);
    } finally {
      await rollbackOpen(a, b);
    }
    const rejected = results.filter((r) => r.status === "rejected");
    assert.equal(rejected.length, 1, "exactly one victim");
    const error = parseDatabaseError(rejected[0]?.reason, ctx.dialect);
    assert.ok(isDeadlockError(error) && error instanceof DeadlockError, String(rejected[0]?.reason));
    assert.equal(error.code, "DEADLOCK");
    assert.equal(error.transient, true);
    assert.equal(error.driverCode, ctx.database === "postgres" ? "40P01" : "1213");
  },
  { databases: ["postgres", "mariadb"] }, // SQLite has one writer at a time: it reports busy, never a deadlock
);

suite.test("parseDatabaseError() maps waiting too long for a lock to LockTimeoutError", async (ctx) => {
  const other = ctx.connect();
  const a = await ctx.db.startTransaction().execute();
  let raw: unknown;
  try {
    await a.updateTable("users").set({ age: 1 }).where("id", "=", 1).execute();
    if (ctx.database === "sqlite") {
      await sql`PRAGMA busy_timeout = 20`.execute(other);
      raw = await rejection(other.insertInto("users").values({ email: "c@example.com", age: 3 }).execute());
    } else {
      const b = await other.startTransaction().execute();
      try {
        if (ctx.database === "postgres") await sql`SET LOCAL lock_timeout = '50ms'`.execute(b);
        else await sql`SET SESSION innodb_lock_wait_timeout = 1`.execute(b);
        raw = await rejection(b.updateTable("users").set({ age: 2 }).where("id", "=", 1).execute());
      } finally {
        await rollbackOpen(b);
      }
    }
  } finally {
    await rollbackOpen(a);
  }
  const error = parseDatabaseError(raw, ctx.dialect);
  assert.ok(isLockTimeoutError(error) && error instanceof LockTimeoutError, String(raw));
  assert.equal(error.code, "LOCK_TIMEOUT");
  assert.equal(error.transient, true);
  assert.equal(error.driverCode, { postgres: "55P03", mariadb: "1205", sqlite: "5" }[ctx.database]);
});

suite.test("parseDatabaseError() maps FOR UPDATE NOWAIT on a locked row to LockTimeoutError", async (ctx) => {
  const other = ctx.connect();
  const a = await ctx.db.startTransaction().execute();
  const b = await other.startTransaction().execute();
  let raw: unknown;
  try {
    await a.updateTable("users").set({ age: 1 }).where("id", "=", 1).execute();
    raw = await rejection(b.selectFrom("users").select("id").where("id", "=", 1).forUpdate().noWait().execute());
  } finally {
    await rollbackOpen(a, b);
  }
  assert.ok(isLockTimeoutError(parseDatabaseError(raw, ctx.dialect)), String(raw));
}, { databases: ["postgres", "mariadb"] }); // SQLite has no row locks

suite.test("parseDatabaseError() maps a statement timeout to QueryTimeoutError", async (ctx) => {
  const raw = await rejection(
    ctx.db.connection().execute(async (conn) => {
      if (ctx.database === "postgres") {
        await sql`SET statement_timeout = 50`.execute(conn);
        await sql`SELECT pg_sleep(5)`.execute(conn);
      } else {
        await sql`SET STATEMENT max_statement_time = 0.05 FOR SELECT SLEEP(5) FROM users`.execute(conn);
      }
    }),
  );
  const error = parseDatabaseError(raw, ctx.dialect);
  assert.ok(isQueryTimeoutError(error) && error instanceof QueryTimeoutError, String(raw));
  assert.equal(error.code, "QUERY_TIMEOUT");
  assert.equal(error.transient, false);
  assert.equal(error.driverCode, ctx.database === "postgres" ? "57014" : "1969");
}, { databases: ["postgres", "mariadb"] }); // SQLite has no statement timeout

suite.test("parseDatabaseError() maps a refused connection to ConnectionError", async (ctx) => {
  // Port 1 on the loopback: nothing listens there.
  const url = new URL(ctx.database === "postgres" ? POSTGRES_URL : MARIADB_URL);
  const closed = ctx.database === "postgres"
    ? new Kysely<DB>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ host: url.hostname, port: 1, user: "postgres" }) }),
    })
    : new Kysely<DB>({
      dialect: new MysqlDialect({ pool: createPool({ host: url.hostname, port: 1, user: "root" }) }),
    });
  try {
    const error = await provoke({ ...ctx, db: closed }, closed.selectFrom("users").selectAll().execute());
    assert.ok(isConnectionError(error) && error instanceof ConnectionError, String(error.cause));
    assert.equal(error.driverCode, "ECONNREFUSED");
  } finally {
    await closed.destroy();
  }
}, { databases: ["postgres", "mariadb"] }); // SQLite has no server; see the cannot-open test

suite.test("parseDatabaseError() maps a connection the server killed to ConnectionError", async (ctx) => {
  const url = new URL(ctx.database === "postgres" ? POSTGRES_URL : MARIADB_URL);
  const pool = ctx.database === "postgres"
    ? new pg.Pool({ connectionString: url.href, max: 1 })
    : createPool({ host: url.hostname, port: Number(url.port || 3306), user: "root", connectionLimit: 1 });
  // The dead connection is reported to the pool as well; an application
  // logs it there (the infra layer's concern). Here it must not crash.
  (pool as { on(event: "error", fn: (e: unknown) => void): void }).on("error", () => {});
  if (pool instanceof pg.Pool) pool.on("connect", (client) => client.on("error", () => {}));
  const killable = ctx.database === "postgres"
    ? new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool as pg.Pool }) })
    : new Kysely<DB>({ dialect: new MysqlDialect({ pool: pool as ReturnType<typeof createPool> }) });
  try {
    const errors: unknown[] = [];
    await killable.connection().execute(async (conn) => {
      const kill = ctx.database === "postgres"
        ? sql`SELECT pg_terminate_backend(pg_backend_pid())`
        : sql`KILL CONNECTION_ID()`;
      errors.push(await rejection(kill.execute(conn)));
      // The same connection, used again after the kill.
      errors.push(await rejection(sql`SELECT 1`.execute(conn)));
    });
    for (const raw of errors) {
      const error = parseDatabaseError(raw, ctx.dialect);
      assert.ok(isConnectionError(error), `${String(raw)} (${(raw as { code?: string }).code})`);
    }
  } finally {
    await killable.destroy();
  }
}, { databases: ["postgres", "mariadb"] });

suite.test("parseDatabaseError() maps a database file that cannot be opened to ConnectionError", async (ctx) => {
  const error = await provoke(ctx, sql`ATTACH DATABASE '/nonexistent/kysera/x.db' AS x`.execute(ctx.db));
  assert.ok(isConnectionError(error), String(error.cause));
  assert.equal(error.driverCode, "14");
}, { databases: ["sqlite"] }); // the servers' cases are the refused and killed connections

suite.test("parseDatabaseError() keeps an unclassified driver error as a plain DatabaseError", async (ctx) => {
  const error = await provoke(ctx, sql`SELEC 1`.execute(ctx.db));
  assert.ok(error instanceof DatabaseError);
  assert.equal(error.code, "DATABASE_ERROR");
  assert.equal(error.name, "DatabaseError");
  assert.equal(isUniqueConstraintError(error), false);
  assert.equal(isConnectionError(error), false);
  assert.equal(error.driverCode, { postgres: "42601", mariadb: "1064", sqlite: "1" }[ctx.database]);
});

suite.test("parseDatabaseError() returns a Kysera error as is", async (ctx) => {
  const error = await provoke(ctx, ctx.db.insertInto("users").values({ email: "ada@example.com" }).execute());
  assert.equal(parseDatabaseError(error, ctx.dialect), error);
});
