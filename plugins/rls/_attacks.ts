/** The read attacks of the RLS suites, run as tenant 1 (private). */
import assert from "node:assert/strict";
import { type ExpressionBuilder, type Kysely, sql } from "kysely";
import { plainRows, type TestDatabase } from "../../_test/harness.ts";
import { assertNoLeak, normal } from "./_test_helpers.ts";

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;
// deno-lint-ignore no-explicit-any
type Query = { compile(): any; execute(): Promise<any[]> };

/** Where the attack runs: the schema (PostgreSQL), database (MariaDB) or `main` (SQLite) holding the tables. */
export interface AttackEnv {
  readonly schema: string;
}

/** One read attack and the rows tenant 1 must get. */
export interface ReadCase {
  name: string;
  query: (db: AnyDb, env: AttackEnv) => Query;
  rows: readonly Record<string, unknown>[];
  /** Compare as a multiset (NULL ordering differs between databases). */
  unordered?: boolean;
  databases?: readonly TestDatabase[];
}

/** Every read attack. */
export const reads: ReadCase[] = [
  {
    name: "plain select",
    query: (db) => db.selectFrom("posts").select(["id", "title"]).orderBy("id"),
    rows: [{ id: 1, title: "a1" }, { id: 2, title: "a2" }],
  },
  {
    name: "aliased select",
    query: (db) => db.selectFrom("posts as p").select(["p.id", "p.body"]).orderBy("p.id"),
    rows: [{ id: 1, body: "one" }, { id: 2, body: "two" }],
  },
  {
    name: "select by tenant 2's id",
    query: (db) => db.selectFrom("posts").selectAll().where("id", "=", 3),
    rows: [],
  },
  {
    name: "select asking for tenant 2 outright",
    query: (db) => db.selectFrom("users").select("name").where("tenant_id", "=", 2),
    rows: [],
  },
  {
    name: "inner join to a tenant 2 parent drops the row",
    query: (db) =>
      db.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id").select(["p.title", "u.name"])
        .orderBy("p.id"),
    rows: [{ title: "a1", name: "ada" }],
  },
  {
    name: "left join to a tenant 2 parent gives null",
    query: (db) =>
      db.selectFrom("posts as p").leftJoin("users as u", "u.id", "p.user_id").select(["p.title", "u.name"])
        .orderBy("p.id"),
    rows: [{ title: "a1", name: "ada" }, { title: "a2", name: null }],
  },
  {
    name: "right join",
    query: (db) =>
      db.selectFrom("users as u").rightJoin("posts as p", "p.user_id", "u.id").select(["p.title", "u.name"])
        .orderBy("p.id"),
    rows: [{ title: "a1", name: "ada" }, { title: "a2", name: null }],
  },
  {
    name: "full join",
    query: (db) =>
      db.selectFrom("users as u").fullJoin("posts as p", "p.user_id", "u.id").select(["p.title", "u.name"])
        .orderBy("u.name").orderBy("p.title"),
    rows: [{ title: "a1", name: "ada" }, { title: "a2", name: null }, { title: null, name: "bo" }],
    unordered: true,
    // MariaDB has no FULL JOIN.
    databases: ["sqlite", "postgres"],
  },
  {
    name: "cross join",
    query: (db) => db.selectFrom("users as u").crossJoin("posts as p").select((eb) => eb.fn.countAll().as("n")),
    rows: [{ n: 4 }],
  },
  {
    name: "join from an uncovered table (inner)",
    query: (db) =>
      db.selectFrom("tags as t").innerJoin("posts as p", "p.id", "t.post_id").select(["t.label", "p.body"])
        .orderBy("t.id"),
    rows: [{ label: "x", body: "one" }],
  },
  {
    name: "join from an uncovered table (left)",
    query: (db) =>
      db.selectFrom("tags as t").leftJoin("posts as p", "p.id", "t.post_id").select(["t.label", "p.body"])
        .orderBy("t.id"),
    rows: [{ label: "x", body: "one" }, { label: "y", body: null }],
  },
  {
    name: "self join",
    query: (db) =>
      db.selectFrom("posts as a").innerJoin("posts as b", "b.user_id", "a.user_id").select(["a.id", "b.body"])
        .orderBy("a.id"),
    rows: [{ id: 1, body: "one" }, { id: 2, body: "two" }],
  },
  {
    name: "scalar subquery in select",
    query: (db) =>
      db.selectFrom("users").select((eb: AnyEB) => [
        "name",
        eb.selectFrom("posts").select((e: AnyEB) => e.fn.countAll().as("c")).as("n"),
      ]).where("id", "=", 1),
    rows: [{ name: "ada", n: 2 }],
  },
  {
    name: "subquery in where (in)",
    query: (db) =>
      db.selectFrom("users").select("name").where("id", "in", (eb: AnyEB) => eb.selectFrom("posts").select("user_id"))
        .orderBy("id"),
    rows: [{ name: "ada" }],
  },
  {
    name: "subquery in from",
    query: (db) =>
      db.selectFrom((eb: AnyEB) => eb.selectFrom("posts").select(["id", "body"]).as("x")).selectAll().orderBy("id"),
    rows: [{ id: 1, body: "one" }, { id: 2, body: "two" }],
  },
  {
    name: "CTE",
    query: (db) =>
      db.with("x", (qb) => qb.selectFrom("posts").select(["id", "body"])).selectFrom("x").selectAll().orderBy("id"),
    rows: [{ id: 1, body: "one" }, { id: 2, body: "two" }],
  },
  {
    name: "union of two covered tables",
    query: (db) =>
      db.selectFrom("posts").select("body as v").union(db.selectFrom("users").select("name as v")).orderBy("v"),
    rows: [{ v: "ada" }, { v: "bo" }, { v: "one" }, { v: "two" }],
  },
  {
    name: "count",
    query: (db) => db.selectFrom("posts").select((eb) => eb.fn.countAll().as("n")),
    rows: [{ n: 2 }],
  },
  {
    name: "exists on tenant 2's row",
    query: (db) =>
      db.selectNoFrom((eb: AnyEB) => eb.exists(eb.selectFrom("posts").select("id").where("id", "=", 3)).as("e")),
    rows: [{ e: 0 }],
  },
  {
    name: "recursive CTE over a covered table",
    // From tenant 1's post 2 (whose user is tenant 2's) to every post of
    // that user: tenant 2's post must not be reached.
    query: (db) =>
      db.withRecursive(
        "r(id, user_id, body, depth)",
        (qb) =>
          qb.selectFrom("posts").select((eb: AnyEB) => ["id", "user_id", "body", eb.lit(0).as("depth")])
            .where("id", "=", 2)
            .unionAll((q) =>
              q.selectFrom("posts as p").innerJoin("r", "r.user_id", "p.user_id")
                .select((eb: AnyEB) => ["p.id", "p.user_id", "p.body", eb("r.depth", "+", 1).as("depth")])
                .where("r.depth", "<", 1)
            ) as never, // the row type of an untyped database cannot name the CTE's columns
      ).selectFrom("r").select(["id", "body", "depth"]).orderBy("depth").orderBy("id"),
    rows: [{ id: 2, body: "two", depth: 0 }, { id: 2, body: "two", depth: 1 }],
  },
  {
    name: "recursive CTE anchored on tenant 2's row",
    query: (db) =>
      db.withRecursive("r(id, body)", (qb) =>
        qb.selectFrom("posts").select(["id", "body"]).where("id", "=", 3)
          .union((q) => q.selectFrom("posts as p").innerJoin("r", "r.id", "p.id").select(["p.id", "p.body"])))
        .selectFrom("r").selectAll(),
    rows: [],
  },
  {
    name: "CTE named after the covered table, reading it",
    // `with posts as (select ... from posts)`: the inner `posts` is the
    // table. SQLite refuses the self-reference as circular (leak_test.ts
    // asserts that).
    query: (db) =>
      db.with("posts", (qb) => qb.selectFrom("posts").select(["id", "body"])).selectFrom("posts").selectAll()
        .orderBy("id"),
    rows: [{ id: 1, body: "one" }, { id: 2, body: "two" }],
    databases: ["postgres", "mariadb"],
  },
  {
    name: "intersect of two covered tables",
    query: (db) => db.selectFrom("users").select("name as v").intersect(db.selectFrom("posts").select("title as v")),
    rows: [],
  },
  {
    name: "intersect with the covered table second",
    query: (db) =>
      db.selectFrom("tags").select("post_id as v").intersect(db.selectFrom("posts").select("id as v")).orderBy("v"),
    rows: [{ v: 1 }],
  },
  {
    name: "except with the covered table first",
    query: (db) =>
      db.selectFrom("posts").select("body as v").except(db.selectFrom("tags").select("label as v")).orderBy("v"),
    rows: [{ v: "one" }, { v: "two" }],
  },
  {
    name: "except with the covered table second",
    // Tenant 2's post id 3 must not be subtracted.
    query: (db) =>
      db.selectFrom("tags").select("post_id as v").except(db.selectFrom("posts").select("id as v")).orderBy("v"),
    rows: [{ v: 3 }],
  },
  {
    name: "intersect all with the covered table second",
    // SQLite has no INTERSECT ALL / EXCEPT ALL.
    query: (db) =>
      db.selectFrom("tags").select("post_id as v").intersectAll(db.selectFrom("posts").select("id as v")).orderBy("v"),
    rows: [{ v: 1 }],
    databases: ["postgres", "mariadb"],
  },
  {
    name: "except all with the covered table second",
    query: (db) =>
      db.selectFrom("tags").select("post_id as v").exceptAll(db.selectFrom("posts").select("id as v")).orderBy("v"),
    rows: [{ v: 3 }],
    databases: ["postgres", "mariadb"],
  },
  {
    name: "withSchema",
    query: (db, env) => db.withSchema(env.schema).selectFrom("posts").select("title").orderBy("id"),
    rows: [{ title: "a1" }, { title: "a2" }],
  },
  {
    name: "withSchema with a subquery and a join",
    query: (db, env) =>
      db.withSchema(env.schema).selectFrom("users as u").leftJoin("posts as p", "p.user_id", "u.id")
        .select(["u.name", "p.title"])
        .where("u.id", "in", (eb: AnyEB) => eb.selectFrom("posts").select("user_id")).orderBy("u.id"),
    rows: [{ name: "ada", title: "a1" }],
  },
  {
    name: "schema-qualified table",
    query: (db, env) => db.selectFrom(`${env.schema}.posts`).select("title").orderBy("id"),
    rows: [{ title: "a1" }, { title: "a2" }],
  },
  {
    name: "schema-qualified tables, aliased and joined",
    query: (db, env) =>
      db.selectFrom(`${env.schema}.posts as p`).innerJoin(`${env.schema}.users as u`, "u.id", "p.user_id")
        .select(["p.title", "u.name"]).orderBy("p.id"),
    rows: [{ title: "a1", name: "ada" }],
  },
  {
    name: "group by tenant",
    query: (db) => db.selectFrom("posts").select(["tenant_id", (eb) => eb.fn.countAll().as("n")]).groupBy("tenant_id"),
    rows: [{ tenant_id: 1, n: 2 }],
  },
];

/** The rows of a case, normalised for comparison. */
export function shape(c: ReadCase, rows: readonly object[]): Record<string, unknown>[] {
  const out = normal(plainRows(rows));
  return c.unordered ? out.sort((a, b) => String(a["title"]).localeCompare(String(b["title"]))) : out;
}

/**
 * The schema (PostgreSQL), database (MariaDB) or `main` (SQLite) of `db`'s
 * tables. Read with a builder query (raw SQL would be refused under RLS).
 */
export async function attackEnv(db: AnyDb, database: TestDatabase): Promise<AttackEnv> {
  if (database === "sqlite") return { schema: "main" };
  const fn = database === "postgres" ? sql<string>`current_schema()` : sql<string>`database()`;
  const row = await db.selectNoFrom(fn.as("s")).executeTakeFirstOrThrow();
  return { schema: String(row.s) };
}

/** Runs every read case as tenant 1 on `db`. */
export async function allReads(db: AnyDb, database: TestDatabase): Promise<void> {
  const env = await attackEnv(db, database);
  for (const c of reads) {
    if (c.databases !== undefined && !c.databases.includes(database)) continue;
    const rows = await c.query(db, env).execute();
    assertNoLeak(rows, c.name);
    assert.deepEqual(shape(c, rows), c.rows, c.name);
  }
}
