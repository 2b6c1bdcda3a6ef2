import assert from "node:assert/strict";
import type { Generated } from "kysely";
import { addIdColumn, dbSuite, plainRows, rejection } from "../_test/harness.ts";
import { createExecutorSync } from "../executor/mod.ts";
import {
  chain,
  compose,
  conditional,
  createQuery,
  createTransactionalQuery,
  type DbContext,
  isTransactionRequiredError,
  mapResult,
  parallel,
  type QueryFunction,
  withTransaction,
} from "./mod.ts";

interface DB {
  users: { id: Generated<number>; email: string };
  posts: { id: Generated<number>; user_id: number; title: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("users"), database)
      .addColumn("email", "varchar(50)", (c) => c.notNull()).execute();
    await addIdColumn(db.schema.createTable("posts"), database)
      .addColumn("user_id", "integer", (c) => c.notNull())
      .addColumn("title", "varchar(50)", (c) => c.notNull()).execute();
    await db.insertInto("users").values([{ email: "ada@example.com" }, { email: "bob@example.com" }]).execute();
    await db.insertInto("posts").values([{ user_id: 1, title: "a1" }, { user_id: 1, title: "a2" }, {
      user_id: 2,
      title: "b1",
    }]).execute();
  },
});

const userByEmail = createQuery((ctx: DbContext<DB>, email: string) =>
  ctx.db.selectFrom("users").select(["id", "email"]).where("email", "=", email).executeTakeFirstOrThrow()
);
const titlesOf = createQuery((ctx: DbContext<DB>, userId: number) =>
  ctx.db.selectFrom("posts").select("title").where("user_id", "=", userId).orderBy("title").execute()
);

suite.test("createQuery() runs on a Kysely, an executor, a transaction and a context", async ({ db }) => {
  const executor = createExecutorSync(db, []);
  assert.equal((await userByEmail(db, "ada@example.com")).id, 1);
  assert.equal((await userByEmail(executor, "ada@example.com")).id, 1);
  await db.transaction().execute(async (trx) => assert.equal((await userByEmail(trx, "bob@example.com")).id, 2));
  assert.equal((await userByEmail({ db, isTransaction: false }, "bob@example.com")).id, 2);
  // A context cannot claim to be a transaction: the database decides.
  const refused = await rejection(
    createTransactionalQuery((ctx: DbContext<DB>) => ctx.db.deleteFrom("posts").execute(), "wipe")(
      { db, isTransaction: true },
    ),
  );
  assert.ok(isTransactionRequiredError(refused));
  assert.equal((await db.selectFrom("posts").select("id").execute()).length, 3, "no SQL was sent");
});

suite.test("createTransactionalQuery() refuses to run outside a transaction and runs inside one", async ({ db }) => {
  const moveAll = createTransactionalQuery(async (ctx: DbContext<DB>, from: number, to: number) => {
    const result = await ctx.db.updateTable("posts").set({ user_id: to }).where("user_id", "=", from)
      .executeTakeFirstOrThrow();
    return Number(result.numUpdatedRows);
  }, "moveAll");
  const error = await rejection(moveAll(db, 1, 2));
  assert.ok(isTransactionRequiredError(error));
  assert.equal(error.code, "TRANSACTION_REQUIRED");
  assert.match(error.message, /'moveAll'/);
  assert.deepEqual(plainRows(await titlesOf(db, 2)), [{ title: "b1" }], "nothing moved");
  assert.equal(await withTransaction(db, (ctx) => moveAll(ctx, 1, 2)), 2);
  assert.deepEqual((await titlesOf(db, 2)).map((r) => r.title), ["a1", "a2", "b1"]);
});

suite.test("compose(), chain() and mapResult() thread results on the same database", async ({ db }) => {
  const titlesOfEmail = compose(userByEmail, (ctx, user) => titlesOf(ctx, user.id));
  assert.deepEqual((await titlesOfEmail(db, "ada@example.com")).map((r) => r.title), ["a1", "a2"]);
  const countOfEmail = chain(userByEmail, (ctx, user) => titlesOf(ctx, user.id), (_ctx, rows) => rows.length);
  assert.equal(await countOfEmail(db, "ada@example.com"), 2);
  const upper = mapResult(titlesOf, (rows) => rows.map((r) => r.title.toUpperCase()));
  assert.deepEqual(await upper(db, 1), ["A1", "A2"]);
  // Inside a transaction the whole chain sees the transaction's own writes.
  await withTransaction(db, async (ctx) => {
    await ctx.db.insertInto("posts").values({ user_id: 2, title: "b2" }).execute();
    assert.equal(await countOfEmail(ctx, "bob@example.com"), 2);
  });
  // Types are inferred: a number, not any.
  const n: number = await countOfEmail(db, "bob@example.com");
  // @ts-expect-error: the result is a number
  const s: string = await countOfEmail(db, "bob@example.com");
  assert.equal(typeof n + typeof s, "numbernumber");
});

suite.test("parallel() runs concurrently on a pool and one after another in a transaction", async ({ db }) => {
  const events: string[] = [];
  const tracked = (name: string) =>
    createQuery(async (ctx: DbContext<DB>) => {
      events.push(`start ${name}`);
      const rows = await ctx.db.selectFrom("posts").select("title").execute();
      events.push(`end ${name}`);
      return rows.length;
    });
  const both = parallel({ a: tracked("a"), b: tracked("b") });
  assert.deepEqual(await both(db), { a: 3, b: 3 });
  assert.deepEqual(events, ["start a", "start b", "end a", "end b"], "both started before either ended");
  events.length = 0;
  assert.deepEqual(await withTransaction(db, (ctx) => both(ctx)), { a: 3, b: 3 });
  assert.deepEqual(events, ["start a", "end a", "start b", "end b"], "one after another on the connection");
  const typed: { a: number; b: number } = await both(db);
  assert.deepEqual(typed, { a: 3, b: 3 });
});

suite.test("conditional() picks a query by the arguments and sends nothing when neither applies", async ({ db }) => {
  let sent = 0;
  const counted: QueryFunction<DB, [number | undefined], number> = createQuery(
    async (ctx: DbContext<DB>, id: number | undefined) => {
      sent++;
      return (await ctx.db.selectFrom("posts").select("id").where("user_id", "=", id!).execute()).length;
    },
  );
  const maybe = conditional((id: number | undefined) => id !== undefined, counted);
  assert.equal(await maybe(db, 1), 2);
  assert.equal(await maybe(db, undefined), undefined);
  assert.equal(sent, 1);
  const orZero = conditional((id: number | undefined) => id !== undefined, counted, createQuery(() => 0));
  assert.equal(await orZero(db, undefined), 0);
});
