import assert from "node:assert/strict";
import FakeTimers from "@sinonjs/fake-timers";
import { type Kysely, Kysely as KyselyClass, MysqlDialect, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { createPool } from "mysql2";
import {
  DeadlockError,
  isConnectionError,
  isDeadlockError,
  isLockTimeoutError,
  isSerializationError,
  isUniqueConstraintError,
  parseDatabaseError,
} from "../core/mod.ts";
import { createExecutorSync } from "../executor/mod.ts";
import { guardPostgresPool } from "../dialects/mod.ts";
import {
  isAfterCommitError,
  isCommitOutcomeUnknownError,
  isRetryInTransactionError,
  type RetryInfo,
  retryTransaction,
} from "./mod.ts";
import { dbSuite, MARIADB_URL, plainRows, POSTGRES_URL, rejection, type TestDatabase } from "../_test/harness.ts";

interface DB {
  counters: { id: number; n: number };
  effects: { pair: number; side: string };
  log: { attempt: number };
  doctors: { name: string; on_call: number };
}

const suite = dbSuite<DB>(import.meta, {
  tables: async (db) => {
    await db.schema.createTable("counters")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("n", "integer", (c) => c.notNull())
      .execute();
    await db.schema.createTable("effects")
      .addColumn("pair", "integer", (c) => c.notNull())
      .addColumn("side", "varchar(10)", (c) => c.notNull())
      .addUniqueConstraint("effects_once", ["pair", "side"])
      .execute();
    await db.schema.createTable("log").addColumn("attempt", "integer", (c) => c.notNull()).execute();
    await db.schema.createTable("doctors")
      .addColumn("name", "varchar(20)", (c) => c.primaryKey())
      .addColumn("on_call", "integer", (c) => c.notNull())
      .execute();
  },
});

const deadlock = (): DeadlockError => new DeadlockError("deadlock detected", { dialect: "postgres" });

/**
 * Runs `start()` under fake time and lets each backoff sleep pass, recording
 * the fake clock at each attempt. `onRetry` fires just before the sleep's
 * timer is set, so the driver ticks exactly the announced delay.
 */
async function underFakeTime<R>(
  start: (hooks: { onRetry: (info: RetryInfo) => void; now: () => number }) => Promise<R>,
  options: { abortAfterRetries?: AbortController; random?: number } = {},
): Promise<{ outcome: PromiseSettledResult<R>; retries: RetryInfo[]; timersLeft: number; backoffTimers: number }> {
  const clock = FakeTimers.install({
    now: 0,
    toFake: ["setTimeout", "clearTimeout", "Date"],
    shouldClearNativeTimers: true, // pg.Pool clears an idle timer set before the install
  });
  // Drivers set timers of their own (pg.Pool's idle timeout): watch only
  // the backoff timers, those set from retry_transaction.ts, until they
  // fire or are cleared.
  const fakeSetTimeout = globalThis.setTimeout;
  const fakeClearTimeout = globalThis.clearTimeout;
  const pending = new Set<unknown>();
  let backoffTimers = 0;
  globalThis.setTimeout = ((callback: () => void, ms?: number) => {
    if (!new Error().stack?.includes("/infra/retry_transaction.ts:")) return fakeSetTimeout(callback, ms);
    backoffTimers++;
    const id = fakeSetTimeout(() => {
      pending.delete(id);
      callback();
    }, ms);
    pending.add(id);
    return id;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((id: unknown) => {
    pending.delete(id);
    fakeClearTimeout(id as number);
  }) as typeof clearTimeout;
  const random = Math.random;
  if (options.random !== undefined) Math.random = () => options.random!;
  try {
    const retries: RetryInfo[] = [];
    let wake = (): void => {};
    const promise = start({
      onRetry: (info) => {
        retries.push(info);
        wake();
      },
      now: () => clock.now,
    });
    let done = false;
    const settled = promise.then(
      (value) => ({ status: "fulfilled", value }) as const,
      (reason) => ({ status: "rejected", reason }) as const,
    ).finally(() => {
      done = true;
      wake();
    });
    // A retry may be announced while the driver is still ticking: count them, never miss one.
    let handled = 0;
    while (!done) {
      if (retries.length > handled) {
        const info = retries[handled++]!;
        if (options.abortAfterRetries !== undefined) options.abortAfterRetries.abort(new Error("shutting down"));
        else await clock.tickAsync(info.delayMs);
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    const outcome = await settled;
    return { outcome, retries, timersLeft: pending.size, backoffTimers };
  } finally {
    Math.random = random;
    clock.uninstall();
  }
}

async function attemptsLogged(db: Kysely<DB>): Promise<number[]> {
  return (await db.selectFrom("log").select("attempt").orderBy("attempt").execute()).map((r) => r.attempt);
}

suite.test("retryTransaction() backs off exponentially with no jitter, capped, up to maxAttempts", async ({ db }) => {
  const startedAt: number[] = [];
  const { outcome, retries, timersLeft, backoffTimers } = await underFakeTime(({ onRetry, now }) =>
    retryTransaction(db, async (ctx) => {
      startedAt.push(now());
      await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
      throw deadlock();
    }, { jitter: "none", baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 6, onRetry })
  );
  assert.equal(outcome.status, "rejected");
  assert.ok(isDeadlockError((outcome as PromiseRejectedResult).reason), "the last attempt's error, as thrown");
  assert.deepEqual(retries.map((r) => r.delayMs), [100, 200, 400, 800, 1000]);
  assert.deepEqual(retries.map((r) => r.attempt), [1, 2, 3, 4, 5]);
  assert.deepEqual(startedAt, [0, 100, 300, 700, 1500, 2500]);
  assert.equal(backoffTimers, 5, "one timer per backoff sleep");
  assert.equal(timersLeft, 0);
  assert.deepEqual(await attemptsLogged(db), [], "every attempt was rolled back");
});

suite.test("retryTransaction() full jitter draws between 0 and the exponential delay", async ({ db }) => {
  const { outcome, retries } = await underFakeTime(({ onRetry }) =>
    retryTransaction(db, async (ctx) => {
      await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
      if (ctx.attempt < 4) throw deadlock();
      return ctx.attempt;
    }, { baseDelayMs: 100, maxDelayMs: 10_000, onRetry }), { random: 0.5 });
  assert.deepEqual(outcome, { status: "fulfilled", value: 4 });
  assert.deepEqual(retries.map((r) => r.delayMs), [50, 100, 200]);
  assert.deepEqual(await attemptsLogged(db), [4], "only the committing attempt's write is kept");
});

suite.test("retryTransaction() decorrelated jitter grows from the previous delay, capped", async ({ db }) => {
  const { retries } = await underFakeTime(({ onRetry }) =>
    retryTransaction(db, async (ctx) => {
      await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
      throw deadlock();
    }, { jitter: "decorrelated", baseDelayMs: 100, maxDelayMs: 500, maxAttempts: 5, onRetry }), { random: 0.5 });
  // 100 + 0.5 * (3 * prev - 100), prev starting at 100: 200, 350, then capped at 500
  assert.deepEqual(retries.map((r) => r.delayMs), [200, 350, 500, 500]);
});

suite.test("retryTransaction() starts no retry whose backoff would pass maxElapsedMs", async ({ db }) => {
  let attempts = 0;
  const { outcome, retries } = await underFakeTime(({ onRetry }) =>
    retryTransaction(db, async (ctx) => {
      attempts++;
      await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
      throw deadlock();
    }, { jitter: "none", baseDelayMs: 100, maxElapsedMs: 250, onRetry })
  );
  assert.equal(outcome.status, "rejected");
  assert.equal(attempts, 2, "at 100 ms a 200 ms sleep would end at 300 > 250");
  assert.deepEqual(retries.map((r) => r.delayMs), [100]);
});

suite.test("retryTransaction() aborted during a backoff sleep rejects with the reason, no further attempt, no timer left", async ({ db }) => {
  const controller = new AbortController();
  let attempts = 0;
  const { outcome, retries, timersLeft, backoffTimers } = await underFakeTime(
    ({ onRetry }) =>
      retryTransaction(db, async (ctx) => {
        attempts++;
        await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
        throw deadlock();
      }, { jitter: "none", baseDelayMs: 60_000, signal: controller.signal, onRetry }),
    {
      abortAfterRetries: controller,
    },
  );
  assert.equal(outcome.status, "rejected");
  assert.equal(((outcome as PromiseRejectedResult).reason as Error).message, "shutting down");
  assert.equal(retries.length, 1);
  assert.equal(attempts, 1);
  assert.equal(backoffTimers, 1);
  assert.equal(timersLeft, 0, "the backoff timer was cleared");
  // An already aborted signal: not a single attempt.
  const reason = await rejection(retryTransaction(db, () => {
    attempts++;
    return Promise.resolve();
  }, { signal: AbortSignal.abort(new Error("gone")) }));
  assert.equal((reason as Error).message, "gone");
  assert.equal(attempts, 1);
});

suite.test("retryTransaction() retryOn overrides the default test and onRetry sees each failure", async ({ db }) => {
  const seen: unknown[] = [];
  let attempts = 0;
  // A transient error that retryOn declines: thrown at once.
  const declined = await rejection(retryTransaction(db, () => {
    attempts++;
    return Promise.reject(deadlock());
  }, { retryOn: (error) => (seen.push(error), false), baseDelayMs: 0 }));
  assert.ok(isDeadlockError(declined));
  assert.equal(attempts, 1);
  assert.deepEqual(seen, [declined]);
  // An application error that retryOn accepts: retried.
  const infos: RetryInfo[] = [];
  const flaky = new Error("flaky upstream");
  const value = await retryTransaction(db, async (ctx) => {
    await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
    if (ctx.attempt < 3) throw flaky;
    return "done";
  }, { retryOn: (error) => error === flaky, onRetry: (info) => infos.push(info), baseDelayMs: 0 });
  assert.equal(value, "done");
  assert.deepEqual(infos, [{ attempt: 1, error: flaky, delayMs: 0 }, { attempt: 2, error: flaky, delayMs: 0 }]);
  assert.deepEqual(await attemptsLogged(db), [3]);
  // By default an application error is not retried.
  attempts = 0;
  await rejection(retryTransaction(db, () => {
    attempts++;
    return Promise.reject(flaky);
  }, { baseDelayMs: 0 }));
  assert.equal(attempts, 1);
});

suite.test("retryTransaction() does not retry a constraint violation, which it throws as thrown", async ({ db }) => {
  await db.insertInto("effects").values({ pair: 1, side: "a" }).execute();
  let attempts = 0;
  const error = await rejection(retryTransaction(db, async (ctx) => {
    attempts++;
    await ctx.db.insertInto("effects").values({ pair: 1, side: "a" }).execute();
  }, { baseDelayMs: 0 }));
  assert.equal(attempts, 1);
  assert.ok(isUniqueConstraintError(parseDatabaseError(error, getDialectOf(db))));
});

function getDialectOf(db: Kysely<DB>): "sqlite" | "postgres" | "mysql" {
  const name = db.getExecutor().adapter.constructor.name;
  return name.startsWith("Postgres") ? "postgres" : name.startsWith("Mysql") ? "mysql" : "sqlite";
}

suite.test("retryTransaction() refuses to run inside an open transaction, sending no SQL", async ({ db }) => {
  let ran = 0;
  const work = (): Promise<void> => {
    ran++;
    return Promise.resolve();
  };
  await db.transaction().execute(async (trx) => {
    assert.ok(isRetryInTransactionError(await rejection(retryTransaction(trx as never, work))));
    assert.ok(
      isRetryInTransactionError(await rejection(retryTransaction({ db: trx, isTransaction: true } as never, work))),
    );
  });
  const trx = await db.startTransaction().execute();
  assert.ok(isRetryInTransactionError(await rejection(retryTransaction(trx as never, work))));
  await trx.rollback().execute();
  // The executor itself, from inside one of its transaction callbacks.
  const executor = createExecutorSync(db, []);
  await executor.transaction().execute(async (tx) => {
    const error = await rejection(retryTransaction(executor, work));
    assert.ok(isRetryInTransactionError(error));
    await tx.insertInto("log").values({ attempt: 1 }).execute();
  });
  assert.equal(ran, 0);
  assert.deepEqual(await attemptsLogged(db), [1]);
});

suite.test("retryTransaction() runs afterCommit callbacks once, only after the committing attempt", async ({ db }) => {
  const calls: string[] = [];
  const value = await retryTransaction(db, async (ctx) => {
    await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
    ctx.afterCommit(async () => {
      // Runs after COMMIT: the write is visible outside the transaction.
      calls.push(`attempt ${ctx.attempt} sees ${(await attemptsLogged(db)).join(",")}`);
    });
    ctx.afterCommit(() => void calls.push(`second of attempt ${ctx.attempt}`));
    if (ctx.attempt < 3) throw deadlock();
    assert.deepEqual(calls, [], "not before COMMIT");
    return ctx.attempt;
  }, { baseDelayMs: 0 });
  assert.equal(value, 3);
  assert.deepEqual(calls, ["attempt 3 sees 3", "second of attempt 3"]);
  // An attempt that never commits runs none.
  const failed: string[] = [];
  await rejection(retryTransaction(db, (ctx) => {
    ctx.afterCommit(() => void failed.push("never"));
    return Promise.reject(deadlock());
  }, { baseDelayMs: 0, maxAttempts: 2 }));
  assert.deepEqual(failed, []);
  const after: string[] = [];
  // A failing callback: the others run, the commit stands, the result is carried.
  const error = await rejection(retryTransaction(db, async (ctx) => {
    await ctx.db.insertInto("log").values({ attempt: 9 }).execute();
    ctx.afterCommit(() => Promise.reject(new Error("mail down")));
    ctx.afterCommit(() => void after.push("still ran"));
    return "committed";
  }));
  assert.ok(isAfterCommitError(error));
  assert.equal(error.result, "committed");
  assert.deepEqual(after, ["still ran"]);
  assert.deepEqual(await attemptsLogged(db), [3, 9]);
});

suite.test("retryTransaction() validates its options", async ({ db }) => {
  await assert.rejects(retryTransaction(db, () => Promise.resolve(), { maxAttempts: 0 }), {
    name: "RangeError",
    message: "Cannot retry the transaction: 'maxAttempts' must be a positive integer: current value is 0",
  });
  await assert.rejects(retryTransaction(db, () => Promise.resolve(), { jitter: "half" as never }), TypeError);
  await assert.rejects(retryTransaction(db, () => Promise.resolve(), { baseDelayMs: -1 }), RangeError);
});

// --- real faults -------------------------------------------------------------

suite.test(
  "retryTransaction() completes 50 pairs of deadlocking transactions, each effect applied exactly once",
  async ({ db, database, connect }) => {
    await db.insertInto("counters").values([{ id: 1, n: 0 }, { id: 2, n: 0 }]).execute();
    const other = connect();
    const retriesPerPair: number[] = [];
    const errors: unknown[] = [];
    for (let pair = 0; pair < 50; pair++) {
      let arrived = 0;
      let release = (): void => {};
      const barrier = new Promise<void>((resolve) => {
        release = resolve;
      });
      let retries = 0;
      const side = (conn: Kysely<DB>, name: string, first: number, second: number): Promise<void> =>
        retryTransaction(conn, async (ctx) => {
          if (database === "postgres") await sql`set local deadlock_timeout = '20ms'`.execute(ctx.db);
          await ctx.db.updateTable("counters").set((eb) => ({ n: eb("n", "+", 1) })).where("id", "=", first).execute();
          if (ctx.attempt === 1) {
            if (++arrived === 2) release();
            await barrier; // both now hold one row lock
          }
          await ctx.db.updateTable("counters").set((eb) => ({ n: eb("n", "+", 1) })).where("id", "=", second)
            .execute();
          await ctx.db.insertInto("effects").values({ pair, side: name }).execute();
        }, {
          baseDelayMs: 5,
          maxAttempts: 10,
          onRetry: ({ error }) => {
            retries++;
            errors.push(error);
          },
        });
      await Promise.all([side(db, "a", 1, 2), side(other, "b", 2, 1)]);
      retriesPerPair.push(retries);
    }
    const counters = plainRows(await db.selectFrom("counters").selectAll().orderBy("id").execute());
    assert.deepEqual(counters, [{ id: 1, n: 100 }, { id: 2, n: 100 }], "every transaction applied once");
    const effects = await db.selectFrom("effects").select(["pair", "side"]).execute();
    assert.equal(effects.length, 100);
    assert.ok(retriesPerPair.every((r) => r >= 1), `every pair retried: ${retriesPerPair.join(",")}`);
    const dialect = database === "postgres" ? "postgres" : "mysql";
    assert.ok(errors.every((e) => isDeadlockError(parseDatabaseError(e, dialect))), "the retried errors are deadlocks");
    console.log(`${database}: retries per pair ${retriesPerPair.join(",")}`);
  },
  { databases: ["postgres", "mariadb"] }, // SQLite has one writer: no row-lock deadlock
);

suite.test(
  "retryTransaction() retries a SERIALIZABLE write skew to success, keeping the invariant",
  async ({ db, connect }) => {
    await db.insertInto("doctors").values([{ name: "alice", on_call: 1 }, { name: "bob", on_call: 1 }]).execute();
    const other = connect();
    let arrived = 0;
    let release = (): void => {};
    const barrier = new Promise<void>((resolve) => {
      release = resolve;
    });
    const errors: unknown[] = [];
    const goOffCall = (conn: Kysely<DB>, name: string): Promise<boolean> =>
      retryTransaction(conn, async (ctx) => {
        const { count } = await ctx.db.selectFrom("doctors").select((eb) => eb.fn.countAll<string>().as("count"))
          .where("on_call", "=", 1).executeTakeFirstOrThrow();
        if (ctx.attempt === 1) {
          if (++arrived === 2) release();
          await barrier; // both have read two doctors on call
        }
        if (Number(count) < 2) return false;
        await ctx.db.updateTable("doctors").set({ on_call: 0 }).where("name", "=", name).execute();
        return true;
      }, { isolationLevel: "serializable", baseDelayMs: 5, onRetry: ({ error }) => void errors.push(error) });
    const results = await Promise.all([goOffCall(db, "alice"), goOffCall(other, "bob")]);
    assert.deepEqual(results.sort(), [false, true], "exactly one went off call");
    const onCall = await db.selectFrom("doctors").select("name").where("on_call", "=", 1).execute();
    assert.equal(onCall.length, 1);
    assert.equal(errors.length, 1);
    assert.ok(isSerializationError(parseDatabaseError(errors[0], "postgres")));
  },
  { databases: ["postgres"] }, // MariaDB's SERIALIZABLE locks reads (a deadlock, covered above); SQLite has one writer
);

suite.test(
  "retryTransaction() retries SQLITE_BUSY from a second connection holding BEGIN IMMEDIATE",
  async ({ db, connect }) => {
    const holder = connect();
    // The harness waits 5 s on a lock (busy_timeout): fail at once instead.
    await sql`pragma busy_timeout = 0`.execute(db);
    const errors: unknown[] = [];
    await holder.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      await conn.insertInto("log").values({ attempt: 0 }).execute();
      const value = await retryTransaction(db, async (ctx) => {
        await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
        return ctx.attempt;
      }, {
        baseDelayMs: 1,
        onRetry: ({ error }) => {
          errors.push(error);
          if (errors.length === 2) void sql`commit`.execute(conn);
        },
      });
      assert.equal(value, 3);
    });
    assert.equal(errors.length, 2);
    assert.ok(errors.every((e) => isLockTimeoutError(parseDatabaseError(e, "sqlite"))));
    assert.deepEqual(await attemptsLogged(db), [0, 3]);
  },
  { databases: ["sqlite"] }, // SQLITE_BUSY is SQLite's
);

/** A Kysely instance on its own one-connection pool (it gets killed), on the test's schema/database. */
async function killableDb(admin: Kysely<DB>, database: TestDatabase): Promise<Kysely<DB>> {
  if (database === "postgres") {
    const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(admin)).rows[0]!.s;
    const pool = guardPostgresPool(
      new pg.Pool({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}`, max: 1 }),
    );
    return new KyselyClass<DB>({ dialect: new PostgresDialect({ pool }) });
  }
  const name = (await sql<{ d: string }>`select database() as d`.execute(admin)).rows[0]!.d;
  const url = new URL(MARIADB_URL);
  const pool = createPool({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: "root",
    database: name,
    connectionLimit: 1,
  });
  pool.on("error" as never, () => {});
  return new KyselyClass<DB>({ dialect: new MysqlDialect({ pool }) });
}

async function backendId(trx: Kysely<DB>, database: TestDatabase): Promise<number> {
  const query = database === "postgres" ? sql<{ id: number }>`select pg_backend_pid() as id` : sql<
    { id: number }
  >`select connection_id() as id`;
  return Number((await query.execute(trx)).rows[0]!.id);
}

async function kill(admin: Kysely<DB>, database: TestDatabase, id: number): Promise<void> {
  if (database === "postgres") {
    await sql`select pg_terminate_backend(${id})`.execute(admin);
    for (let i = 0; i < 500; i++) {
      const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where pid = ${id}`
        .execute(admin);
      if (Number(rows[0]!.n) === 0) return;
    }
    throw new Error(`Backend ${id} survived`);
  }
  await sql.raw(`KILL ${id}`).execute(admin);
}

suite.test(
  "retryTransaction() retries a connection lost before COMMIT, on a new connection",
  async ({ db, database }) => {
    const killable = await killableDb(db, database);
    try {
      const errors: unknown[] = [];
      const value = await retryTransaction(killable, async (ctx) => {
        await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
        if (ctx.attempt === 1) await kill(db, database, await backendId(ctx.db as Kysely<DB>, database));
        await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
        return ctx.attempt;
      }, { baseDelayMs: 1, onRetry: ({ error }) => void errors.push(error) });
      assert.equal(value, 2);
      assert.equal(errors.length, 1);
      assert.ok(isConnectionError(parseDatabaseError(errors[0], database === "postgres" ? "postgres" : "mysql")));
      assert.deepEqual(await attemptsLogged(db), [2, 2], "nothing of the lost attempt committed");
    } finally {
      await killable.destroy();
    }
  },
  { databases: ["postgres", "mariadb"] }, // an embedded SQLite connection cannot be killed
);

suite.test(
  "retryTransaction() throws CommitOutcomeUnknownError for a connection lost at COMMIT, retries it when idempotent",
  async ({ db, database }) => {
    const killable = await killableDb(db, database);
    try {
      let attempts = 0;
      const error = await rejection(retryTransaction(killable, async (ctx) => {
        attempts++;
        await ctx.db.insertInto("log").values({ attempt: ctx.attempt }).execute();
        await kill(db, database, await backendId(ctx.db as Kysely<DB>, database));
      }, { baseDelayMs: 1 }));
      assert.ok(isCommitOutcomeUnknownError(error), String(error));
      assert.equal(error.attempt, 1);
      assert.equal(attempts, 1, "not retried");
      const value = await retryTransaction(killable, async (ctx) => {
        await ctx.db.insertInto("log").values({ attempt: 10 + ctx.attempt }).execute();
        if (ctx.attempt === 1) await kill(db, database, await backendId(ctx.db as Kysely<DB>, database));
        return ctx.attempt;
      }, { baseDelayMs: 1, idempotent: true });
      assert.equal(value, 2);
      assert.deepEqual(await attemptsLogged(db), [12]);
    } finally {
      await killable.destroy();
    }
  },
  { databases: ["postgres", "mariadb"] }, // an embedded SQLite connection cannot be killed
);
