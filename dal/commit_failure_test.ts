// A transaction whose COMMIT fails must end and give its connection back to
// the pool (Kysely's controlled transaction releases it only on its own
// abort error). The fault is real: a constraint checked at COMMIT.
//
// - PostgreSQL: a `deferrable initially deferred` unique constraint, on a
//   pool of 2 connections: two leaked connections exhaust it.
// - SQLite: a `deferrable initially deferred` foreign key; after a failed
//   COMMIT SQLite keeps the transaction open, and Kysely's single connection
//   stays locked until it is released.
// - MariaDB is not tested: InnoDB has no deferred constraints (unique keys and
//   foreign keys are checked at each statement), so no data makes COMMIT
//   fail there; a connection lost during COMMIT is another fault.
import assert from "node:assert/strict";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { dbSuite, plainRows, POSTGRES_URL, rejection, type TestDatabase } from "../_test/harness.ts";
import { createExecutorSync } from "../executor/mod.ts";
import { type DbContext, transaction } from "./mod.ts";

interface DB {
  codes: { code: number };
  parents: { id: number };
  children: { id: number; parent_id: number };
  marks: { class: number; value: number };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    if (database === "postgres") {
      await sql`create table codes (code integer not null, constraint codes_code_key unique (code) deferrable initially deferred)`
        .execute(db);
      await sql`insert into codes (code) values (1)`.execute(db);
      await sql`create table marks (class integer not null, value integer not null)`.execute(db);
    } else if (database === "sqlite") {
      await sql`create table parents (id integer primary key)`.execute(db);
      await sql`create table children (id integer primary key, parent_id integer not null
        references parents (id) deferrable initially deferred)`.execute(db);
      await sql`insert into parents (id) values (1)`.execute(db);
    }
  },
});

const FAULTY: readonly TestDatabase[] = ["postgres", "sqlite"];

/** Rejects when `promise` does not settle within `ms` (a leaked connection makes it wait for ever). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Work that succeeds statement by statement and breaks a constraint checked at COMMIT. */
async function violateAtCommit(ctx: DbContext<DB>, database: TestDatabase, n: number): Promise<void> {
  if (database === "postgres") {
    await ctx.db.insertInto("codes").values({ code: 1 }).execute();
  } else {
    await ctx.db.insertInto("children").values({ id: n, parent_id: 999 }).execute();
  }
}

function assertCommitError(error: unknown, database: TestDatabase): void {
  if (database === "postgres") {
    assert.equal((error as { code?: unknown }).code, "23505", String(error));
    assert.match(String(error), /codes_code_key/);
  } else {
    assert.match(String(error), /FOREIGN KEY constraint failed/);
  }
}

async function written(db: Kysely<DB>, database: TestDatabase): Promise<unknown[]> {
  return database === "postgres"
    ? plainRows(await db.selectFrom("codes").select("code").orderBy("code").execute())
    : plainRows(await db.selectFrom("children").select(["id", "parent_id"]).orderBy("id").execute());
}

const SEED: Record<string, unknown[]> = { postgres: [{ code: 1 }], sqlite: [] };

/**
 * The Kysely instance the fault runs on: on PostgreSQL a pool of 2 on the
 * test's schema (acquire timeout 2 s, so a leak fails the test instead of
 * hanging it), on SQLite the harness's own single connection.
 */
async function target(
  db: Kysely<DB>,
  database: TestDatabase,
): Promise<{ db: Kysely<DB>; pool?: pg.Pool; close(): Promise<void> }> {
  if (database !== "postgres") return { db, close: async () => {} };
  const { rows: [current] } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  assert.ok(current !== undefined);
  const pool = new pg.Pool({
    connectionString: POSTGRES_URL,
    options: `-c search_path=${current.schema}`,
    max: 2,
    connectionTimeoutMillis: 2_000,
  });
  const small = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    db: small,
    pool,
    async close() {
      if (closed) return;
      closed = true;
      await within(small.destroy(), 5_000, "destroy()");
    },
  };
}

function assertPoolClean(pool: pg.Pool | undefined): void {
  if (pool === undefined) return;
  assert.deepEqual(
    { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount },
    { total: pool.totalCount, idle: pool.totalCount, waiting: 0 },
    "a connection is still checked out",
  );
}

suite.test(
  "transaction(): 200 COMMITs failing on a deferred constraint leak no connection",
  async ({ db, database }) => {
    const on = await target(db, database);
    try {
      for (let n = 1; n <= 200; n++) {
        const error = await within(
          rejection(transaction(on.db, (ctx) => violateAtCommit(ctx, database, n))),
          5_000,
          `failing transaction ${n}`,
        );
        assertCommitError(error, database);
      }
      assertPoolClean(on.pool);
      // The connection is usable and outside any transaction: a following
      // transaction commits, and nothing of the failed ones was written.
      await within(
        transaction(
          on.db,
          (ctx) =>
            database === "postgres"
              ? ctx.db.insertInto("codes").values({ code: 2 }).execute()
              : ctx.db.insertInto("children").values({ id: 1_000, parent_id: 1 }).execute(),
        ),
        5_000,
        "the following transaction",
      );
      assert.deepEqual(
        await within(written(on.db, database), 5_000, "the following query"),
        database === "postgres" ? [{ code: 1 }, { code: 2 }] : [{ id: 1_000, parent_id: 1 }],
      );
      assertPoolClean(on.pool);
      await on.close();
    } finally {
      await on.close().catch(() => {});
    }
  },
  { databases: FAULTY },
);

suite.test("transaction() on an executor: failed COMMITs leak no connection", async ({ db, database }) => {
  const on = await target(db, database);
  try {
    const executor = createExecutorSync(on.db, []);
    for (let n = 1; n <= 20; n++) {
      const error = await within(
        rejection(transaction(executor, (ctx) => violateAtCommit(ctx, database, n))),
        5_000,
        `failing transaction ${n}`,
      );
      assertCommitError(error, database);
    }
    assertPoolClean(on.pool);
    assert.deepEqual(await within(written(executor, database), 5_000, "the following query"), SEED[database]);
    await on.close();
  } finally {
    await on.close().catch(() => {});
  }
}, { databases: FAULTY });

suite.test("transaction(): a failed COMMIT undoes the released savepoints' work too", async ({ db, database }) => {
  const on = await target(db, database);
  try {
    for (let n = 1; n <= 10; n++) {
      const error = await within(
        rejection(transaction(on.db, (ctx) =>
          transaction(ctx, async (nested) => {
            await transaction(nested, (deeper) => violateAtCommit(deeper, database, n));
          }))),
        5_000,
        `failing transaction ${n}`,
      );
      assertCommitError(error, database);
    }
    assertPoolClean(on.pool);
    assert.deepEqual(await within(written(on.db, database), 5_000, "the following query"), SEED[database]);
    await on.close();
  } finally {
    await on.close().catch(() => {});
  }
}, { databases: FAULTY });

suite.test(
  "transaction(): SERIALIZABLE write skew failing at COMMIT leaks no connection (×50)",
  async ({ db, database }) => {
    // PostgreSQL docs' write-skew shape: each transaction reads the class the
    // other writes. The other commits first, after both inserts, so this
    // transaction's own statements all succeed and its COMMIT fails (40001).
    const on = await target(db, database);
    try {
      for (let n = 1; n <= 50; n++) {
        const other = await db.startTransaction().setIsolationLevel("serializable").execute();
        let workDone = false;
        try {
          const error = await within(
            rejection(transaction(on.db, async (ctx) => {
              await ctx.db.selectFrom("marks").where("class", "=", 1).select("value").execute();
              await other.selectFrom("marks").where("class", "=", 2).select("value").execute();
              await other.insertInto("marks").values({ class: 1, value: n }).execute();
              await ctx.db.insertInto("marks").values({ class: 2, value: n }).execute();
              await other.commit().execute();
              workDone = true;
            }, { isolationLevel: "serializable" })),
            5_000,
            `write skew ${n}`,
          );
          assert.equal(workDone, true, `the failure came before COMMIT: ${error}`);
          assert.equal((error as { code?: unknown }).code, "40001", String(error));
        } finally {
          if (!other.isCommitted && !other.isRolledBack) await other.rollback().execute();
        }
      }
      assertPoolClean(on.pool);
      // Only the transactions that committed first left rows.
      const rows = await within(
        on.db.selectFrom("marks").select(["class"]).select((eb) => eb.fn.countAll<string>().as("n")).groupBy("class")
          .orderBy("class").execute(),
        5_000,
        "the following query",
      );
      assert.deepEqual(plainRows(rows).map((r) => ({ class: r.class, n: Number(r.n) })), [{ class: 1, n: 50 }]);
      await on.close();
    } finally {
      await on.close().catch(() => {});
    }
  },
  { databases: ["postgres"] },
);
