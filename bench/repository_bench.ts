/**
 * The repository's cost against hand-written Kysely (baseline) on SQLite
 * (`node:sqlite`): findById, find with three conditions, findAll of 100
 * rows, create and createMany(100). Target: at most 1.1x each.
 */
import { DatabaseSync } from "node:sqlite";
import { type Generated, Kysely, SqliteDialect } from "kysely";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import { createORM } from "../repository/mod.ts";

interface DB {
  users: { id: Generated<number>; email: string; status: string; age: number };
}

const handle = new DatabaseSync(":memory:");
handle.exec(
  "create table users (id integer primary key, email text not null, status text not null, age integer not null)",
);
for (let i = 1; i <= 1000; i++) {
  handle.exec(
    `insert into users (email, status, age) values ('u${i}@x.com', '${i % 2 ? "live" : "draft"}', ${i % 90})`,
  );
}
const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
const users = createORM(db).createRepository({ tableName: "users", primaryKey: "id" });
const batch = Array.from({ length: 100 }, (_, i) => ({ email: `b${i}@x.com`, status: "live", age: i }));
let n = 0;

Deno.bench("kysely findById", { group: "findById", baseline: true }, async () => {
  await db.selectFrom("users").selectAll().where("id", "=", 500).executeTakeFirst();
});
Deno.bench("repository findById", { group: "findById" }, async () => {
  await users.findById(500);
});

Deno.bench("kysely find (3 conditions)", { group: "find", baseline: true }, async () => {
  await db.selectFrom("users").selectAll().where("status", "=", "live").where("age", ">=", 30)
    .where("email", "like", "u1%").execute();
});
Deno.bench("repository find (3 conditions)", { group: "find" }, async () => {
  await users.find({ where: { status: "live", age: { $gte: 30 }, email: { $like: "u1%" } } });
});

Deno.bench("kysely findAll (100 rows)", { group: "findAll", baseline: true }, async () => {
  await db.selectFrom("users").selectAll().limit(100).execute();
});
Deno.bench("repository findAll (100 rows)", { group: "findAll" }, async () => {
  await users.findAll({ limit: 100 });
});

Deno.bench("kysely create", { group: "create", baseline: true }, async () => {
  await db.insertInto("users").values({ email: `k${n++}@x.com`, status: "live", age: 1 }).returningAll()
    .executeTakeFirstOrThrow();
});
Deno.bench("repository create", { group: "create" }, async () => {
  await users.create({ email: `r${n++}@x.com`, status: "live", age: 1 });
});

Deno.bench("kysely createMany(100)", { group: "createMany", baseline: true }, async () => {
  await db.insertInto("users").values(batch).returningAll().execute();
});
Deno.bench("repository createMany(100)", { group: "createMany" }, async () => {
  await users.createMany(batch);
});
