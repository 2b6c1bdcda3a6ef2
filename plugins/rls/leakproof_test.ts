/**
 * RLS-19, leakproof: tenant 1 filters with a function that raises when it
 * sees tenant 2's marker. Does the error ever fire (and carry tenant 2's
 * value back)?
 *
 * - Application-level RLS ANDs its predicate onto the query; the order in
 *   which the database evaluates WHERE conjuncts is its own choice. What
 *   holds everywhere: expressions in the select list, and the rows
 *   returned, see only the caller's rows. In WHERE, PostgreSQL orders quals
 *   by cost, so a function costlier than the tenant comparison (plpgsql's
 *   default, COST 100) runs after it, but one declared cheap runs first and
 *   raises on tenant 2's row; SQLite evaluates in written order, so a
 *   data-dependent error fires on tenant 2's row too. (MariaDB 10.11
 *   evaluated the tenant comparison first in every shape tried, but
 *   promises no order, so nothing is asserted there.) That limit is
 *   documented on `rlsPlugin`.
 * - Native PostgreSQL policies are security-barrier quals: PostgreSQL
 *   evaluates them before any non-leakproof function of the query, whatever
 *   its cost. Shown as a non-owner role without BYPASSRLS, with negative
 *   controls: the owner (no policy applies) and a function falsely marked
 *   LEAKPROOF (which only a superuser can mark) both see tenant 2's row.
 */
import assert from "node:assert/strict";
import type { AliasableExpression, ExpressionBuilder, Kysely, SqlBool } from "kysely";
import { expressionBuilder, sql } from "kysely";
import { connectAsRole, dbSuite, plainRows, rejection, type TestDatabase } from "../../_test/harness.ts";
import { createExecutorSync } from "../../executor/mod.ts";
import { checkNativeRLS, generateNativePolicies, rlsContext, rlsPlugin, rlsTransaction } from "./mod.ts";
import { assertNoLeak, type DB, MARK, T1, tables, tenantSchema } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;
type Rows = Record<string, unknown>[];

/**
 * Installs `peek`, a predicate that raises when its argument is tenant 2's
 * marker, and returns it as a function of a column: a plpgsql function on
 * PostgreSQL (not leakproof; `cost` as given), a stored function with
 * SIGNAL on MariaDB, and on SQLite (which has no CREATE FUNCTION) an
 * integer overflow that only the marker triggers.
 */
async function installPeek(
  db: AnyDb,
  database: TestDatabase,
  { name = "peek", cost = 100, leakproof = false } = {},
): Promise<(column: string) => AliasableExpression<SqlBool>> {
  switch (database) {
    case "postgres":
      await sql.raw(
        `create function ${name}(v text) returns boolean language plpgsql ${leakproof ? "leakproof" : ""} ` +
          `cost ${cost} as $$ begin if v = '${MARK}' then raise exception 'peek saw %', v; end if; ` +
          `return true; end $$`,
      ).execute(db);
      // A builder call: a raw `peek(...)` fragment would be refused as raw
      // SQL (an unknown function may read any table).
      return (column) => EB.fn<SqlBool>(name, [sql.ref(column)]);
    case "mariadb":
      await sql.raw(
        `create function ${name}(v varchar(100)) returns int not deterministic begin if v = '${MARK}' then ` +
          `signal sqlstate '45000' set message_text = 'peek saw ${MARK}'; end if; return 1; end`,
      ).execute(db);
      return (column) => EB(EB.fn<number>(name, [sql.ref(column)]), "=", 1);
    case "sqlite":
      return (column) => sql<SqlBool>`abs(-9223372036854775807 - (${sql.ref(column)} = ${MARK})) > 0`;
  }
}

// deno-lint-ignore no-explicit-any
const EB = expressionBuilder<any, any>();

/** The error `peek` raises on tenant 2's marker, as each database reports it. */
const PEEKED: Record<TestDatabase, RegExp> = {
  postgres: new RegExp(`peek saw ${MARK}`),
  mariadb: new RegExp(`peek saw ${MARK}`),
  sqlite: /integer overflow/,
};

function executor(db: AnyDb): AnyDb {
  return createExecutorSync(db, [rlsPlugin({ schema: tenantSchema })]);
}

suite.test("RLS-19 app-level: select-list expressions see only the caller's rows", async ({ db, database }) => {
  const peek = await installPeek(db, database);
  const listed = (k: AnyDb) => k.selectFrom("posts").select(["title", peek("body").as("ok")]).orderBy("id");
  const joined = (k: AnyDb) =>
    k.selectFrom("posts as p").leftJoin("users as u", "u.id", "p.user_id").select(["p.title", peek("u.name").as("ok")])
      .orderBy("p.id");
  const rows = await rlsContext.runAsync(T1, async () => [
    plainRows(await listed(executor(db)).execute()),
    plainRows(await joined(executor(db)).execute()),
  ]);
  assertNoLeak(rows);
  assert.deepEqual(rows.map((r) => r.map((row) => row.title)), [["a1", "a2"], ["a1", "a2"]]);
  // Negative control: without RLS, the same expression meets tenant 2's row and raises.
  assert.match(String(await rejection(listed(db).execute())), PEEKED[database]);
  assert.match(String(await rejection(joined(db).execute())), PEEKED[database]);
});

// Cost-ordered quals are PostgreSQL's planner (SQLite evaluates in written
// order, MariaDB promises none): see the next test for the limit.
suite.test("RLS-19 app-level, PostgreSQL: a WHERE function costlier than the tenant comparison runs after it", async ({
  db,
  database,
}) => {
  const peek = await installPeek(db, database, { cost: 100 });
  const shapes = [
    (k: AnyDb) => k.selectFrom("posts").select("title").where(peek("body")).orderBy("id"),
    (k: AnyDb) =>
      k.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id").select("p.title").where(peek("u.name")),
    (k: AnyDb) =>
      k.selectFrom("users").select("name").where(
        "id",
        "in",
        (eb: AnyEB) => eb.selectFrom("posts").select("user_id").where(peek("body")),
      ),
  ];
  const rows: Rows[] = await rlsContext.runAsync(T1, () => Promise.all(shapes.map((q) => q(executor(db)).execute())));
  assert.deepEqual(rows.map((r) => plainRows(r)), [[{ title: "a1" }, { title: "a2" }], [{ title: "a1" }], [{
    name: "ada",
  }]]);
  for (const q of shapes) assert.match(String(await rejection(q(db).execute())), PEEKED[database]);
}, { databases: ["postgres"] });

// The documented limit. MariaDB 10.11 evaluated the tenant comparison
// first in every shape tried, but promises no order: nothing to assert.
suite.test("RLS-19 app-level limit: a WHERE function the database runs first sees tenant 2's row", async ({
  db,
  database,
}) => {
  // A PostgreSQL function declared as cheap as a comparison (COST 1) is
  // ordered before the appended tenant comparison; SQLite keeps written order.
  const peek = await installPeek(db, database, { cost: 1 });
  const error = await rlsContext.runAsync(
    T1,
    () => rejection(executor(db).selectFrom("posts").select("title").where(peek("body")).execute()),
  );
  assert.match(String(error), PEEKED[database]);
}, { databases: ["postgres", "sqlite"] });

/**
 * Native policies from the tenant schema, applied as the owner; a login
 * role without BYPASSRLS that owns nothing, with SELECT on the tables and
 * EXECUTE on `functions`; a Kysely connected as it.
 */
async function appRole(db: AnyDb, functions: readonly string[]): Promise<{ app: AnyDb; cleanup(): Promise<void> }> {
  for (const statement of generateNativePolicies(tenantSchema, { columnTypes: { tenant_id: "integer" } })) {
    await sql.raw(statement).execute(db);
  }
  const { app, drop } = await connectAsRole(db, "postgres", (role, schema) => [
    `grant select on all tables in schema "${schema}" to ${role}`,
    ...functions.map((fn) => `grant execute on function "${schema}".${fn}(text) to ${role}`),
  ]);
  return { app, cleanup: drop };
}

// Native row-level security and LEAKPROOF are PostgreSQL features.
suite.test("RLS-19 native: a cheap non-leakproof function never sees tenant 2's rows", async ({ db, database }) => {
  // As cheap as a function can be declared: only the security barrier orders it.
  const peek = await installPeek(db, database, { cost: 0.0001 });
  const liar = await installPeek(db, database, { name: "peek_leakproof", cost: 0.0001, leakproof: true });
  const { app, cleanup } = await appRole(db, ["peek", "peek_leakproof"]);
  try {
    const report = await checkNativeRLS(app, ["users", "posts"]);
    assert.deepEqual(report.problems, []);
    const shapes = (p: typeof peek) => [
      (k: AnyDb) => k.selectFrom("posts").select("title").where(p("body")).orderBy("id"),
      (k: AnyDb) =>
        k.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id").select("p.title").where(p("u.name")),
      (k: AnyDb) =>
        k.selectFrom("users").select("name").where(
          "id",
          "in",
          (eb: AnyEB) => eb.selectFrom("posts").select("user_id").where(p("body")),
        ),
    ];
    const expected = [[{ title: "a1" }, { title: "a2" }], [{ title: "a1" }], [{ name: "ada" }]];
    await rlsContext.runAsync(T1, async () => {
      // The app role alone, and the app role under the RLS plugin too.
      for (const k of [app, executor(app)]) {
        const rows: Rows[] = [];
        for (const q of shapes(peek)) {
          rows.push(plainRows(await rlsTransaction(k, (trx): Promise<Rows> => q(trx).execute())));
        }
        assert.deepEqual(rows, expected);
      }
      for (const q of shapes(peek)) {
        // Negative control 1: the owner (a superuser here) is not subject to the policies.
        assert.match(
          String(await rejection(rlsTransaction(db, (trx): Promise<Rows> => q(trx).execute()))),
          PEEKED[database],
        );
      }
      for (const q of shapes(liar)) {
        // Negative control 2: a function marked LEAKPROOF may run before the policy.
        assert.match(
          String(await rejection(rlsTransaction(app, (trx): Promise<Rows> => q(trx).execute()))),
          PEEKED[database],
        );
      }
    });
  } finally {
    await cleanup();
  }
}, { databases: ["postgres"] });
