import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { mock } from "node:test";
import { type Generated, Kysely, sql, SqliteDialect } from "kysely";
import { addIdColumn, dbSuite, plainRows, rejection } from "../_test/harness.ts";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import { transaction } from "../dal/mod.ts";
import { createORM } from "../repository/mod.ts";
import {
  allowOutsideTransaction,
  createExecutor,
  createExecutorSync,
  inTransactionScope,
  isOutsideTransactionError,
  type KyseraPlugin,
  OutsideTransactionError,
} from "./mod.ts";

interface DB {
  posts: { id: Generated<number>; title: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("posts"), database)
      .addColumn("title", "varchar(50)", (c) => c.notNull())
      .execute();
  },
});

async function titles(db: Kysely<DB>): Promise<string[]> {
  return (await db.selectFrom("posts").select("title").orderBy("id").execute()).map((r) => r.title);
}

/** A plugin that records every statement the executor sends. */
function recorder(): { plugin: KyseraPlugin; sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    plugin: {
      name: "recorder",
      aroundQuery: (execution, next) => {
        sent.push(execution.query.sql);
        return next();
      },
    },
  };
}

const rollback = new Error("rollback");

suite.test("an unbound repository inside transaction(executor, fn) is refused before any SQL, and the rollback holds", async ({ db }) => {
  const { plugin, sent } = recorder();
  const executor = createExecutorSync(db, [plugin]);
  const posts = createORM(executor).createRepository({ tableName: "posts" });
  let refused: unknown;
  const thrown = await rejection(transaction(executor, async (ctx) => {
    await ctx.db.insertInto("posts").values({ title: "in trx" }).execute();
    const before = sent.length;
    refused = await rejection(posts.create({ title: "outside" }));
    assert.equal(sent.length, before, "no statement was sent for the refused write");
    throw rollback;
  }));
  assert.equal(thrown, rollback);
  assert.ok(refused instanceof OutsideTransactionError && isOutsideTransactionError(refused));
  assert.equal(refused.code, "OUTSIDE_TRANSACTION");
  assert.match(refused.message, /repo\.bind\(trx\)/);
  assert.deepEqual(await titles(db), []);
});

suite.test("executor.transaction().execute(fn): a query on the executor itself is refused, one on trx runs", async ({ db }) => {
  const executor = createExecutorSync(db, []);
  await executor.transaction().execute(async (trx) => {
    await trx.insertInto("posts").values({ title: "a" }).execute();
    assert.ok(isOutsideTransactionError(await rejection(executor.selectFrom("posts").selectAll().execute())));
    // Derived instances of the executor are not the transaction either.
    assert.ok(
      isOutsideTransactionError(await rejection(executor.withSchema("x").selectFrom("posts").selectAll().execute())),
    );
    assert.ok(isOutsideTransactionError(await rejection(sql`select 1`.execute(executor))));
    // A nested transaction on the executor, instead of a savepoint on trx, too.
    assert.ok(isOutsideTransactionError(await rejection(executor.transaction().execute(() => Promise.resolve()))));
    assert.ok(isOutsideTransactionError(await rejection(transaction(executor, () => Promise.resolve()))));
  });
  assert.deepEqual(await titles(db), ["a"]);
});

suite.test("repo.transaction(fn) and orm.transaction(fn): the outer handle is refused, the bound one runs", async ({ db }) => {
  const orm = createORM(createExecutorSync(db, []));
  const posts = orm.createRepository({ tableName: "posts" });
  await posts.transaction(async (tx) => {
    await tx.create({ title: "repo" });
    assert.ok(isOutsideTransactionError(await rejection(posts.findAll())));
  });
  await orm.transaction(async (tx) => {
    const bound = tx.createRepository({ tableName: "posts" });
    await bound.create({ title: "orm" });
    assert.ok(isOutsideTransactionError(await rejection(posts.create({ title: "outside" }))));
    assert.ok(isOutsideTransactionError(await rejection(orm.executor.selectFrom("posts").selectAll().execute())));
    // bind() on the transaction's handle is the fix the message names.
    await posts.bind(tx.executor).create({ title: "bound" });
    await orm.bind(tx.executor).createRepository({ tableName: "posts" }).create({ title: "orm bound" });
    throw rollback;
  }).catch((error) => assert.equal(error, rollback));
  assert.deepEqual(await titles(db), ["repo"]);
});

suite.test("queries all on the transaction (Promise.all), nested savepoints and another executor are not refused", async ({ db }) => {
  const orm = createORM(createExecutorSync(db, []));
  const other = new Kysely<DB>({
    dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
  });
  const otherExecutor = createExecutorSync(other, []);
  try {
    await otherExecutor.schema.createTable("posts").addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("title", "text").execute();
    await orm.transaction(async (tx) => {
      const posts = tx.createRepository({ tableName: "posts" });
      // Plain statements: a repository create on MariaDB is a savepoint, and
      // concurrent savepoints on one connection interleave (not this check).
      await Promise.all([
        tx.executor.insertInto("posts").values({ title: "p1" }).execute(),
        tx.executor.insertInto("posts").values({ title: "p2" }).execute(),
        posts.findAll(),
      ]);
      await otherExecutor.insertInto("posts").values({ title: "elsewhere" }).execute();
      await tx.transaction(async (inner) => {
        await inner.createRepository({ tableName: "posts" }).create({ title: "savepoint" });
        await transaction(inner.executor, async (deeper) => {
          await deeper.db.insertInto("posts").values({ title: "undone" }).execute();
          throw rollback;
        }).catch((error) => assert.equal(error, rollback));
      });
    });
    assert.deepEqual((await titles(db)).sort(), ["p1", "p2", "savepoint"]);
    assert.deepEqual(await titles(otherExecutor), ["elsewhere"]);
  } finally {
    await other.destroy();
  }
});

suite.test("work a transaction callback left running is free once the callback is over", async ({ db }) => {
  const executor = createExecutorSync(db, []);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let later: Promise<unknown> | undefined;
  await transaction(executor, () => {
    // Started inside the callback (so in its asynchronous context), run after it.
    later = gate.then(() => executor.selectFrom("posts").selectAll().execute());
    return Promise.resolve();
  });
  release();
  assert.deepEqual(await later, []);
  assert.deepEqual(plainRows(await executor.selectFrom("posts").select("title").execute()), []);
});

// SQLite: its one connection cannot serve a query while another transaction holds it.
suite.test(
  "work a closed callback left running is free while another transaction of the executor is open",
  async ({ db }) => {
    const executor = createExecutorSync(db, []);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    let later: Promise<unknown> | undefined;
    await transaction(executor, () => {
      later = gate.then(() => executor.selectFrom("posts").selectAll().execute());
      return Promise.resolve();
    });
    await transaction(executor, async (ctx) => {
      release();
      assert.deepEqual(await later, []);
      await ctx.db.insertInto("posts").values({ title: "second" }).execute();
    });
    assert.deepEqual(await titles(db), ["second"]);
  },
  { databases: ["postgres", "mariadb"] },
);

suite.test("inTransactionScope() guards a transaction started with startTransaction()", async ({ db }) => {
  const executor = createExecutorSync(db, []);
  const trx = await executor.startTransaction().execute();
  try {
    await inTransactionScope(trx, async () => {
      await trx.insertInto("posts").values({ title: "controlled" }).execute();
      assert.ok(isOutsideTransactionError(await rejection(executor.selectFrom("posts").selectAll().execute())));
    });
  } finally {
    await trx.rollback().execute();
  }
  assert.deepEqual(await titles(db), []);
});

// SQLite: Kysely's SQLite driver has one connection, so a query outside the
// open transaction waits for it for ever; these run where it gets its own.
suite.test(
  "outsideTransaction 'allow' and allowOutsideTransaction(): the row commits on its own and survives the rollback",
  async ({ db }) => {
    for (
      const make of [
        () => ({ executor: createExecutorSync(db, [], { outsideTransaction: "allow" }), wrap: <R>(f: () => R) => f() }),
        () => ({ executor: createExecutorSync(db, []), wrap: allowOutsideTransaction }),
      ]
    ) {
      const { executor, wrap } = make();
      const posts = createORM(executor).createRepository({ tableName: "posts" });
      await transaction(executor, async () => {
        await wrap(() => posts.create({ title: "independent" }));
        throw rollback;
      }).catch((error) => assert.equal(error, rollback));
    }
    assert.deepEqual(await titles(db), ["independent", "independent"]);
  },
  { databases: ["postgres", "mariadb"] },
);

suite.test("outsideTransaction 'warn' lets the query run and warns with the same message", async ({ db }) => {
  const executor = await createExecutor(db, [], { outsideTransaction: "warn" });
  const warn = mock.method(console, "warn", () => {});
  try {
    await transaction(executor, async () => {
      await executor.insertInto("posts").values({ title: "warned" }).execute();
      throw rollback;
    }).catch((error) => assert.equal(error, rollback));
    assert.equal(warn.mock.callCount(), 1);
    assert.equal(warn.mock.calls[0]!.arguments[0], new OutsideTransactionError().message);
  } finally {
    warn.mock.restore();
  }
  assert.deepEqual(await titles(db), ["warned"]);
}, { databases: ["postgres", "mariadb"] });

Deno.test("createExecutor() refuses an unknown outsideTransaction policy", () => {
  const db = new Kysely<DB>({
    dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
  });
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => createExecutorSync(db, [], { outsideTransaction: "ignore" as any }),
    {
      name: "TypeError",
      message:
        `Cannot create the executor: 'outsideTransaction' must be "throw", "warn" or "allow": current value is ignore`,
    },
  );
});
