import assert from "node:assert/strict";
import { type Generated, type Kysely, sql } from "kysely";
import { z } from "zod";
import { addIdColumn, assertSql, dbSuite, plainRows, rejection, type TestDatabase } from "../../_test/harness.ts";
import { isNotFoundError } from "../../core/mod.ts";
import { createQuery, type DbContext, withTransaction } from "../../dal/mod.ts";
import { createExecutorSync, type KyseraPlugin } from "../../executor/mod.ts";
import { createORM } from "../../repository/mod.ts";
import { timestampsPlugin } from "./mod.ts";

type Stamp = Date | string | null;
interface DB {
  notes: { id: Generated<number>; title: string; body: string | null; created_at: Stamp; updated_at: Stamp };
  logs: { id: Generated<number>; title: string; created_at: Stamp; updated_at: Stamp };
  epochs: {
    id: Generated<number>;
    title: string;
    created_at: number | string | null;
    updated_at: number | string | null;
  };
}

const STAMP_TYPE: Record<TestDatabase, string> = { sqlite: "text", postgres: "timestamptz", mariadb: "datetime(6)" };

// deno-lint-ignore no-explicit-any
async function tables(db: Kysely<any>, database: TestDatabase): Promise<void> {
  for (const table of ["notes", "logs"]) {
    let builder = addIdColumn(db.schema.createTable(table), database)
      .addColumn("title", "varchar(50)", (c) => c.notNull().unique());
    if (table === "notes") builder = builder.addColumn("body", "varchar(200)");
    await builder
      // deno-lint-ignore no-explicit-any
      .addColumn("created_at", STAMP_TYPE[database] as any)
      // deno-lint-ignore no-explicit-any
      .addColumn("updated_at", STAMP_TYPE[database] as any)
      .execute();
  }
  await addIdColumn(db.schema.createTable("epochs"), database)
    .addColumn("title", "varchar(50)", (c) => c.notNull().unique())
    .addColumn("created_at", "bigint")
    .addColumn("updated_at", "bigint")
    .execute();
}

const suite = dbSuite<DB>(import.meta, { tables });

const T1 = new Date("2024-05-01T12:00:00.000Z");
const T2 = new Date("2024-05-02T08:30:00.000Z");
const T3 = new Date("2024-05-03T00:00:00.000Z");
const OLD = new Date("2020-01-01T00:00:00.000Z");

/** An injected clock: `clock.now` is what the plugin reads. */
function testClock(start: Date = T1): { now: Date; read: () => Date } {
  const state = { now: start, read: () => state.now };
  return state;
}

/** The value the plugin writes on this dialect with the default format. */
function stored(ctx: { database: TestDatabase }, date: Date): Date | string {
  return ctx.database === "sqlite" ? date.toISOString() : date;
}

/** Reads a stamp back as epoch milliseconds. */
function ms(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.getTime();
  return new Date(String(value)).getTime();
}

async function stamps(db: Kysely<DB>, table: "notes" | "logs" = "notes"): Promise<unknown[]> {
  const rows = await db.selectFrom(table).select(["title", "created_at", "updated_at"]).orderBy("title").execute();
  return plainRows(rows).map((r) => ({ title: r.title, created_at: ms(r.created_at), updated_at: ms(r.updated_at) }));
}

function q(ctx: { dialect: string }, text: string): string {
  return ctx.dialect === "mysql" ? text.replaceAll('"', "`") : text;
}

function expected(ctx: { dialect: string }, text: string, parameters: unknown[]) {
  let n = 0;
  const sqlText = ctx.dialect === "postgres" ? text.replace(/\?/g, () => `$${++n}`) : q(ctx, text);
  return { [ctx.dialect]: { sql: sqlText, parameters } };
}

suite.test("builder inserts set both columns, single and multi-row; explicit values win per row", async (ctx) => {
  const clock = testClock();
  const executor = createExecutorSync(ctx.db, [timestampsPlugin({ tables: "all", clock: clock.read })]);
  const single = executor.insertInto("notes").values({ title: "a" });
  assertSql(
    ctx,
    single,
    expected(ctx, 'insert into "notes" ("title", "created_at", "updated_at") values (?, ?, ?)', [
      "a",
      stored(ctx, T1),
      stored(ctx, T1),
    ]),
  );
  await single.execute();
  clock.now = T2;
  const multi = executor.insertInto("notes").values([
    { title: "b" },
    { title: "c", created_at: stored(ctx, OLD) },
    { title: "d", updated_at: null },
  ]);
  assertSql(
    ctx,
    multi,
    expected(
      ctx,
      'insert into "notes" ("title", "created_at", "updated_at") values (?, ?, ?), (?, ?, ?), (?, ?, ?)',
      [
        "b",
        stored(ctx, T2),
        stored(ctx, T2),
        "c",
        stored(ctx, OLD),
        stored(ctx, T2),
        "d",
        stored(ctx, T2),
        null,
      ],
    ),
  );
  await multi.execute();
  assert.deepEqual(await stamps(ctx.db), [
    { title: "a", created_at: T1.getTime(), updated_at: T1.getTime() },
    { title: "b", created_at: T2.getTime(), updated_at: T2.getTime() },
    { title: "c", created_at: OLD.getTime(), updated_at: T2.getTime() },
    { title: "d", created_at: T2.getTime(), updated_at: null },
  ]);
});

suite.test("builder updates set updated_at only, unless the caller set it", async (ctx) => {
  const clock = testClock();
  const executor = createExecutorSync(ctx.db, [timestampsPlugin({ tables: "all", clock: clock.read })]);
  await executor.insertInto("notes").values([{ title: "a" }, { title: "b" }]).execute();
  clock.now = T2;
  const update = executor.updateTable("notes").set({ body: "x" }).where("title", "=", "a");
  assertSql(
    ctx,
    update,
    expected(ctx, 'update "notes" set "body" = ?, "updated_at" = ? where "title" = ?', ["x", stored(ctx, T2), "a"]),
  );
  await update.execute();
  await executor.updateTable("notes").set({ body: "y", updated_at: stored(ctx, OLD) }).where("title", "=", "b")
    .execute();
  assert.deepEqual(await stamps(ctx.db), [
    { title: "a", created_at: T1.getTime(), updated_at: T2.getTime() },
    { title: "b", created_at: T1.getTime(), updated_at: OLD.getTime() },
  ]);
});

suite.test("upserts stamp the insert path with both columns and the update path with updated_at", async (ctx) => {
  const clock = testClock();
  const executor = createExecutorSync(ctx.db, [timestampsPlugin({ tables: "all", clock: clock.read })]);
  const upsert = (title: string, body: string) => {
    const insert = executor.insertInto("notes").values({ title, body });
    return ctx.dialect === "mysql"
      ? insert.onDuplicateKeyUpdate({ body })
      : insert.onConflict((oc) => oc.column("title").doUpdateSet({ body }));
  };
  await upsert("a", "one").execute();
  clock.now = T2;
  const second = upsert("a", "two");
  const p = [stored(ctx, T2)];
  assertSql(ctx, second, {
    postgres: {
      sql:
        'insert into "notes" ("title", "body", "created_at", "updated_at") values ($1, $2, $3, $4) on conflict ("title") do update set "body" = $5, "updated_at" = $6',
      parameters: ["a", "two", ...p, ...p, "two", ...p],
    },
    sqlite: {
      sql:
        'insert into "notes" ("title", "body", "created_at", "updated_at") values (?, ?, ?, ?) on conflict ("title") do update set "body" = ?, "updated_at" = ?',
      parameters: ["a", "two", ...p, ...p, "two", ...p],
    },
    mysql: {
      sql:
        "insert into `notes` (`title`, `body`, `created_at`, `updated_at`) values (?, ?, ?, ?) on duplicate key update `body` = ?, `updated_at` = ?",
      parameters: ["a", "two", ...p, ...p, "two", ...p],
    },
  });
  await second.execute();
  await upsert("b", "new").execute();
  assert.deepEqual(await stamps(ctx.db), [
    { title: "a", created_at: T1.getTime(), updated_at: T2.getTime() },
    { title: "b", created_at: T2.getTime(), updated_at: T2.getTime() },
  ]);
});

suite.test("insert ... select gets both columns unless it selects them", async (ctx) => {
  const clock = testClock();
  const executor = createExecutorSync(ctx.db, [timestampsPlugin({ clock: clock.read, tables: ["logs"] })]);
  await ctx.db.insertInto("notes").values([{ title: "a", created_at: stored(ctx, OLD) }, { title: "b" }]).execute();
  await executor.insertInto("logs").columns(["title"]).expression((eb) =>
    eb.selectFrom("notes").select("title").where("title", "=", "a")
  ).execute();
  await executor.insertInto("logs").columns(["title", "created_at"]).expression((eb) =>
    eb.selectFrom("notes").select(["title", "created_at"]).where("title", "=", "b")
  ).execute();
  assert.deepEqual(await stamps(ctx.db, "logs"), [
    { title: "a", created_at: T1.getTime(), updated_at: T1.getTime() },
    { title: "b", created_at: null, updated_at: T1.getTime() },
  ]);
});

suite.test("repository writes with zod schemas that do not declare the columns keep the timestamps", async (ctx) => {
  const clock = testClock();
  const orm = createORM(ctx.db, [timestampsPlugin({ tables: "all", clock: clock.read })]);
  const create = z.object({ title: z.string(), body: z.string().optional() });
  const notes = orm.createRepository({
    tableName: "notes",
    primaryKey: "id",
    schemas: { create, update: create.partial() },
  });
  const a = await notes.create({ title: "a" });
  assert.equal(ms(a.created_at), T1.getTime());
  const many = await notes.createMany([{ title: "b" }, { title: "c" }]);
  assert.deepEqual(many.map((r) => ms(r.updated_at)), [T1.getTime(), T1.getTime()]);
  clock.now = T2;
  const updated = await notes.update(a.id, { body: "x" });
  assert.deepEqual([ms(updated.created_at), ms(updated.updated_at)], [T1.getTime(), T2.getTime()]);
  clock.now = T3;
  assert.equal(await notes.updateMany({ title: { $in: ["b", "c"] } }, { body: "y" }), 2);
  clock.now = OLD;
  const upserted = await notes.upsert({ title: "c", body: "z" }, { conflict: ["title"] });
  assert.deepEqual([ms(upserted.created_at), ms(upserted.updated_at)], [T1.getTime(), OLD.getTime()]);
  await notes.upsertMany([{ title: "d" }, { title: "a", body: "w" }], { conflict: ["title"] });
  await notes.transaction(async (trx) => {
    await trx.create({ title: "e" });
  });
  await orm.transaction(async (trxOrm) => {
    const inTrx = trxOrm.createRepository({ tableName: "notes", primaryKey: "id", schemas: { create } });
    await inTrx.update(a.id, { body: "v" });
  });
  assert.deepEqual(await stamps(ctx.db), [
    { title: "a", created_at: T1.getTime(), updated_at: OLD.getTime() },
    { title: "b", created_at: T1.getTime(), updated_at: T3.getTime() },
    { title: "c", created_at: T1.getTime(), updated_at: OLD.getTime() },
    { title: "d", created_at: OLD.getTime(), updated_at: OLD.getTime() },
    { title: "e", created_at: OLD.getTime(), updated_at: OLD.getTime() },
  ]);
});

suite.test("DAL queries and transactions (including savepoints) get timestamps", async (ctx) => {
  const clock = testClock();
  const executor = createExecutorSync(ctx.db, [timestampsPlugin({ tables: "all", clock: clock.read })]);
  const addNote = createQuery((c: DbContext<DB>, title: string) =>
    c.db.insertInto("notes").values({ title }).execute()
  );
  await addNote(executor, "a");
  await withTransaction(executor, async (outer) => {
    clock.now = T2;
    await addNote(outer, "b");
    await withTransaction(outer, async (inner) => {
      await inner.db.updateTable("notes").set({ body: "x" }).where("title", "=", "a").execute();
    });
  });
  const trx = await executor.startTransaction().execute();
  clock.now = T3;
  await trx.insertInto("notes").values({ title: "c" }).execute();
  await trx.commit().execute();
  assert.deepEqual(await stamps(ctx.db), [
    { title: "a", created_at: T1.getTime(), updated_at: T2.getTime() },
    { title: "b", created_at: T2.getTime(), updated_at: T2.getTime() },
    { title: "c", created_at: T3.getTime(), updated_at: T3.getTime() },
  ]);
});

suite.test("tables, excludeTables, custom columns and withoutTimestamps limit the plugin", async (ctx) => {
  const plugin = timestampsPlugin({ tables: "all", clock: () => T1, excludeTables: ["logs"] });
  const executor = createExecutorSync(ctx.db, [plugin]);
  await executor.insertInto("logs").values({ title: "skipped" }).execute();
  await plugin.withoutTimestamps(() => executor.insertInto("notes").values({ title: "opted-out" }).execute());
  await executor.insertInto("notes").values({ title: "stamped" }).execute();
  assert.deepEqual(await stamps(ctx.db, "logs"), [{ title: "skipped", created_at: null, updated_at: null }]);
  assert.deepEqual(await stamps(ctx.db), [
    { title: "opted-out", created_at: null, updated_at: null },
    { title: "stamped", created_at: T1.getTime(), updated_at: T1.getTime() },
  ]);
  const onlyUpdated = createExecutorSync(ctx.db, [
    timestampsPlugin({ clock: () => T2, createdAt: false, tables: ["logs"] }),
  ]);
  await onlyUpdated.insertInto("logs").values({ title: "u" }).execute();
  await onlyUpdated.insertInto("notes").values({ title: "untouched" }).execute();
  assert.deepEqual((await stamps(ctx.db, "logs"))[1], { title: "u", created_at: null, updated_at: T2.getTime() });
  assert.deepEqual((await stamps(ctx.db)).at(-1), { title: "untouched", created_at: null, updated_at: null });
  assert.throws(() => timestampsPlugin({ tables: "all", createdAt: false, updatedAt: false }), TypeError);
});

suite.test("excludeTables matches a table named in another case (SQLite reads LOGS as logs)", async (ctx) => {
  const plugin = timestampsPlugin({ tables: "all", clock: () => T1, excludeTables: ["logs"] });
  const executor = createExecutorSync(ctx.db, [plugin]);
  const insert = executor.insertInto("LOGS" as "logs").values({ title: "skipped" });
  assertSql(ctx, insert, { sqlite: { sql: `insert into "LOGS" ("title") values (?)`, parameters: ["skipped"] } });
  await insert.execute();
  await executor.updateTable("Logs" as "logs").set({ title: "still skipped" }).execute();
  assert.deepEqual(await stamps(ctx.db, "logs"), [{ title: "still skipped", created_at: null, updated_at: null }]);
  // On PostgreSQL "LOGS" would be another table: covered.
  assert.equal(plugin.covers("LOGS", "sqlite"), false);
  assert.equal(plugin.covers("LOGS", "postgres"), true);
}, { databases: ["sqlite"] }); // PostgreSQL and MariaDB (lower_case_table_names=0) have no table LOGS to write

suite.test("clock 'database' writes the database's current timestamp", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [timestampsPlugin({ tables: "all", clock: "database" })]);
  const insert = executor.insertInto("notes").values({ title: "a" });
  const now = {
    postgres: "current_timestamp",
    mysql: "current_timestamp(6)",
    sqlite: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
  }[ctx.dialect as "postgres"];
  assertSql(
    ctx,
    insert,
    expected(ctx, `insert into "notes" ("title", "created_at", "updated_at") values (?, ${now}, ${now})`, ["a"]),
  );
  const before = Date.now();
  await insert.execute();
  await executor.updateTable("notes").set({ body: "x" }).execute();
  const after = Date.now();
  const [row] = await stamps(ctx.db) as { created_at: number; updated_at: number }[];
  assert.ok(row !== undefined);
  // The database's clock may differ from the test's by a little; allow a minute.
  for (const value of [row.created_at, row.updated_at]) {
    assert.ok(value >= before - 60_000 && value <= after + 60_000, `${value} not near ${before}`);
  }
  assert.ok(row.updated_at >= row.created_at);
});

suite.test("formats iso, unix and unix-ms, on the app and the database clock", async (ctx) => {
  for (const [format, expectedValue] of [["unix", 1714564800], ["unix-ms", 1714564800000]] as const) {
    await ctx.db.deleteFrom("epochs").execute();
    const executor = createExecutorSync(ctx.db, [timestampsPlugin({ tables: "all", clock: () => T1, format })]);
    await executor.insertInto("epochs").values({ title: "app" }).execute();
    const database = createExecutorSync(ctx.db, [timestampsPlugin({ tables: "all", clock: "database", format })]);
    const before = Date.now();
    await database.insertInto("epochs").values({ title: "db" }).execute();
    const rows = await ctx.db.selectFrom("epochs").select(["title", "created_at", "updated_at"]).orderBy("title")
      .execute();
    assert.deepEqual(Number(rows[0]?.created_at), expectedValue);
    assert.deepEqual(Number(rows[0]?.updated_at), expectedValue);
    const scale = format === "unix" ? 1000 : 1;
    const dbValue = Number(rows[1]?.created_at) * scale;
    assert.ok(Math.abs(dbValue - before) < 60_000, `${format}: ${dbValue} not near ${before}`);
  }
  await ctx.db.schema.createTable("texts").addColumn("title", "varchar(20)")
    .addColumn("created_at", "varchar(30)").addColumn("updated_at", "varchar(30)").execute();
  // deno-lint-ignore no-explicit-any
  const app = createExecutorSync(ctx.db as Kysely<any>, [
    timestampsPlugin({ tables: "all", clock: () => T1, format: "iso" }),
  ]);
  // deno-lint-ignore no-explicit-any
  const db = createExecutorSync(ctx.db as Kysely<any>, [
    timestampsPlugin({ tables: "all", clock: "database", format: "iso" }),
  ]);
  await app.insertInto("texts").values({ title: "app" }).execute();
  const before = Date.now();
  await db.insertInto("texts").values({ title: "db" }).execute();
  // deno-lint-ignore no-explicit-any
  const rows = await (ctx.db as Kysely<any>).selectFrom("texts").selectAll().orderBy("title").execute();
  assert.deepEqual(plainRows(rows)[0], { title: "app", created_at: T1.toISOString(), updated_at: T1.toISOString() });
  const iso = String(rows[1]?.created_at);
  assert.match(iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(new Date(iso).getTime() - before) < 60_000, `${iso} not near now`);
});

suite.test("repository helpers touch, findCreatedBetween, findUpdatedSince, createWithoutTimestamps", async (ctx) => {
  const clock = testClock();
  const orm = createORM(ctx.db, [timestampsPlugin({ tables: "all", clock: clock.read })]);
  const notes = orm.createRepository({
    tableName: "notes",
    primaryKey: "id",
    schemas: { create: z.object({ title: z.string() }) },
  });
  const a = await notes.create({ title: "a" });
  clock.now = T2;
  const b = await notes.create({ title: "b" });
  const raw = await notes.createWithoutTimestamps({ title: "raw" });
  assert.deepEqual([raw.created_at, raw.updated_at], [null, null]);
  clock.now = T3;
  await notes.touch(a.id);
  assert.equal(isNotFoundError(await rejection(notes.touch(9999))), true);
  const between = await notes.findCreatedBetween(T1, new Date(T2.getTime() - 1));
  assert.deepEqual(between.map((r) => r.title), ["a"]);
  assert.deepEqual((await notes.findCreatedBetween(T1, T2)).map((r) => r.title), ["a", "b"]);
  assert.deepEqual((await notes.findUpdatedSince(T3)).map((r) => r.title), ["a"]);
  assert.deepEqual((await notes.findUpdatedSince(T2)).map((r) => r.title), ["b", "a"]);
  await notes.transaction(async (trx) => {
    clock.now = OLD;
    await trx.touch(b.id);
    assert.deepEqual((await trx.findUpdatedSince(OLD)).map((r) => r.title), ["b", "a"]);
  });
  assert.deepEqual(await stamps(ctx.db), [
    { title: "a", created_at: T1.getTime(), updated_at: T3.getTime() },
    { title: "b", created_at: T2.getTime(), updated_at: OLD.getTime() },
    { title: "raw", created_at: null, updated_at: null },
  ]);
  const logs = orm.createRepository({ tableName: "logs", primaryKey: "id" });
  // The added methods are typed from the repository: rows, not `unknown`.
  const titles: string[] = (await logs.findUpdatedSince(T1)).map((r) => r.title);
  assert.deepEqual(titles, []);
  // @ts-expect-error touch takes the repository's key type
  await rejection(logs.touch("not-a-number" as unknown as { id: number }));
});

suite.test("composes with a row scope and another write hook in both orders", async (ctx) => {
  for (const order of ["first", "last"] as const) {
    await ctx.db.deleteFrom("notes").execute();
    const timestamps = timestampsPlugin({ tables: "all", clock: () => T1 });
    const other: KyseraPlugin = {
      name: "other",
      scopeRows: (ref, eb) => ref.table === "notes" ? eb(ref.column("title"), "!=", "hidden") : undefined,
      onWrite: (write) =>
        write.table === "notes" && write.kind !== "select" ? { set: { body: "by-other" } } : undefined,
    };
    const executor = createExecutorSync(ctx.db, order === "first" ? [timestamps, other] : [other, timestamps]);
    await executor.insertInto("notes").values([{ title: "hidden" }, { title: "a", created_at: stored(ctx, OLD) }])
      .execute();
    await executor.updateTable("notes").set({ title: sql<string>`title` }).execute();
    const rows = await ctx.db.selectFrom("notes").select(["title", "body", "created_at"]).orderBy("title").execute();
    assert.deepEqual(plainRows(rows).map((r) => ({ ...r, created_at: ms(r.created_at) })), [
      { title: "a", body: "by-other", created_at: OLD.getTime() },
      { title: "hidden", body: "by-other", created_at: T1.getTime() },
    ]);
  }
});

// SQLite resolves table names without regard to case; the MariaDB server here
// runs lower_case_table_names=0 and PostgreSQL quotes identifiers, so there
// `NOTES` is another (missing) table.
suite.test("a listed table written under another case is stamped", async (ctx) => {
  const clock = testClock();
  const executor = createExecutorSync(ctx.db, [timestampsPlugin({ clock: clock.read, tables: ["notes"] })]);
  // deno-lint-ignore no-explicit-any
  await (executor as Kysely<any>).insertInto("NOTES").values({ title: "n" }).execute();
  assert.deepEqual(await stamps(ctx.db), [{ title: "n", created_at: T1.getTime(), updated_at: T1.getTime() }]);
}, { databases: ["sqlite"] });
