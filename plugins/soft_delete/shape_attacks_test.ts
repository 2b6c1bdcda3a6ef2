/**
 * Query shapes that took the soft-delete scope apart (issue 13): the
 * caller's OR, raw fragment or operator around the `deleted_at is null`
 * predicate, a CTE named like a written table, a MySQL DELETE target by
 * alias, an upsert's conflict WHERE and a MERGE condition. Each runs through
 * the soft-delete executor (the deleted rows never appear and stay
 * unchanged) and through an executor without the plugin (the negative
 * control: the same shape reaches a deleted row).
 */
import assert from "node:assert/strict";
import { type ExpressionBuilder, type Kysely, sql } from "kysely";
import { dbSuite, plainRows, type TestDatabase } from "../../_test/harness.ts";
import { createExecutorSync } from "../../executor/mod.ts";
import { softDeletePlugin } from "./mod.ts";
import { clock, type DB, tables } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;

// The deleted rows: user 2 bob, post 3 a2 (live: users 1 ada, 3 cy; posts 1 a1, 2 b1, 4 c1).
const DELETED = ["bob", "bob@example.com", "a2"];

interface Attack {
  name: string;
  run: (ex: AnyDb) => Promise<unknown>;
  databases?: readonly TestDatabase[];
}

const attacks: Attack[] = [
  {
    name: "raw OR in WHERE",
    run: (ex) => ex.selectFrom("users").selectAll().where(sql<boolean>`id = 2 or id = 9`).where("id", ">", 0).execute(),
  },
  {
    name: "raw OR as the left side of a comparison",
    run: (ex) => ex.selectFrom("posts").selectAll().where(sql`1 = 1 or id`, "=", 3).execute(),
  },
  {
    name: "MariaDB's || operator",
    run: (ex) =>
      ex.selectFrom("users").selectAll().where((eb: AnyEB) => eb(eb("id", "=", 2), "||", eb("id", "=", 9)))
        .execute(),
    databases: ["mariadb"],
  },
  {
    name: "raw OR in a join's ON",
    run: (ex) =>
      ex.selectFrom("posts as p")
        .innerJoin("users as u", (j) => j.on(sql<boolean>`u.id = p.user_id or u.id = 2`).on("u.id", ">", 0))
        .select(["p.title", "u.name"]).execute(),
  },
  {
    name: "raw OR in an UPDATE's WHERE",
    run: (ex) =>
      ex.updateTable("users").set({ name: "pwn" }).where(sql<boolean>`id = 2 or id = 9`)
        .where("id", ">", 0).execute(),
  },
  {
    name: "raw OR in a DELETE's WHERE",
    run: (ex) => ex.deleteFrom("posts").where(sql<boolean>`id = 3 or id = 9`).where("id", ">", 0).execute(),
  },
  {
    name: "a raw condition in an upsert's DO UPDATE ... WHERE",
    run: (ex) =>
      ex.insertInto("users").values({ id: 2, tenant_id: 1, email: "x@example.com", name: "x" })
        .onConflict((oc) => oc.column("id").doUpdateSet({ name: "pwn" }).where(sql<boolean>`1 = 1 or 1 = 1`))
        .execute(),
    databases: ["postgres", "sqlite"],
  },
  {
    name: "a raw OR in MERGE's WHEN MATCHED AND",
    run: async (ex) => {
      // An uncovered source (notes) matching every user, the deleted one too.
      await ex.insertInto("notes").values([{ body: "n1" }, { body: "n2" }, { body: "n3" }]).execute();
      return await ex.mergeInto("users as u").using("notes as n", "n.id", "u.id")
        .whenMatchedAnd(sql<boolean>`1 = 1 or 1 = 1`).thenUpdateSet({ name: "pwn" }).execute();
    },
    databases: ["postgres"],
  },
  {
    name: "a CTE named like the UPDATE target",
    run: (ex) =>
      ex.with("users", (qc) => qc.selectFrom("notes").select("id")).updateTable("users").set({ name: "pwn" })
        .where("id", "=", 2).execute(),
    databases: ["postgres", "sqlite"],
  },
  {
    name: "a CTE named like the DELETE target",
    run: (ex) =>
      ex.with("posts", (qc) => qc.selectFrom("notes").select("id")).deleteFrom("posts").where("id", "=", 3).execute(),
    databases: ["postgres", "sqlite"],
  },
  {
    name: "DELETE by alias (delete p from posts as p)",
    run: (ex) => ex.deleteFrom("p").using("posts as p").where("p.id", "=", 3).execute(),
    databases: ["mariadb"],
  },
];

/** The deleted rows, read without any plugin. */
async function deletedSnapshot(db: AnyDb): Promise<string> {
  const users = await db.selectFrom("users").selectAll().where("deleted_at", "is not", null).orderBy("id").execute();
  const posts = await db.selectFrom("posts").selectAll().where("deleted_at", "is not", null).orderBy("id").execute();
  return JSON.stringify([plainRows(users), plainRows(posts)]);
}

const text = (result: unknown): string =>
  JSON.stringify(result ?? null, (_k, v) => typeof v === "bigint" ? String(v) : v);
const reached = (result: unknown): boolean => DELETED.some((canary) => text(result).includes(`"${canary}"`));

for (const attack of attacks) {
  const options = attack.databases === undefined ? {} : { databases: attack.databases };
  suite.test(`soft-delete shape attack: ${attack.name}`, async ({ db }) => {
    const before = await deletedSnapshot(db);
    const ex = createExecutorSync(db as AnyDb, [softDeletePlugin({ tables: ["users", "posts"], clock })]);
    const result = await attack.run(ex);
    assert.ok(!reached(result), `a deleted row came back: ${text(result)}`);
    assert.equal(await deletedSnapshot(db), before, "a deleted row changed");
  }, options);

  suite.test(`soft-delete shape attack (negative control, no plugin): ${attack.name}`, async ({ db }) => {
    const before = await deletedSnapshot(db);
    const result = await attack.run(createExecutorSync(db as AnyDb, []));
    assert.ok(reached(result) || (await deletedSnapshot(db)) !== before, "the attack did not reach a deleted row");
  }, options);
}
