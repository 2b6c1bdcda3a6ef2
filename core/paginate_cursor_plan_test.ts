/**
 * Keyset pages must be index range scans, so a page deep in a large table
 * costs about what page one costs. These tests read each database's own plan
 * (EXPLAIN) for the predicates paginateCursor sends; they assert plan shapes,
 * never timings.
 */
import assert from "node:assert/strict";
import { type CompiledQuery, type Kysely, sql } from "kysely";
import { type CursorOrderBy, paginateCursor } from "./mod.ts";
import { captureSql, dbSuite, type DbTestContext } from "../_test/harness.ts";

interface DB {
  t: { id: number; a: number; b: number };
}

const ROWS = 20_000;

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await db.schema.createTable("t")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("a", "integer", (c) => c.notNull())
      .addColumn("b", "integer", (c) => c.notNull())
      .execute();
    await sql`create index t_a_id on t (a desc, id desc)`.execute(db);
    await sql`create index t_a_b_id on t (a, b desc, id desc)`.execute(db);
    const fill = {
      sqlite: sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < ${sql.lit(ROWS)})
        insert into t select i, (i * 7919) % 1000, (i * 104729) % 100 from n`,
      postgres: sql`insert into t select i, (i::bigint * 7919) % 1000, (i::bigint * 104729) % 100
        from generate_series(1, ${sql.lit(ROWS)}) i`,
      mariadb: sql`insert into t select seq, (seq * 7919) % 1000, (seq * 104729) % 100 from seq_1_to_${
        sql.raw(String(ROWS))
      }`,
    }[database];
    await fill.execute(db);
    await sql.raw(database === "mariadb" ? "analyze table t" : "analyze").execute(db);
  },
});

const ONE: CursorOrderBy<DB, "t">[] = [{ column: "a", direction: "desc", type: "number" }];
const MIXED: CursorOrderBy<DB, "t">[] = [
  { column: "a", direction: "asc", type: "number" },
  { column: "b", direction: "desc", type: "number" },
];

/** The SQL paginateCursor sends for the page after the middle row of `orderBy`. */
async function deepPageSql(db: Kysely<DB>, orderBy: CursorOrderBy<DB, "t">[]): Promise<CompiledQuery> {
  const middle = await paginateCursor(db.selectFrom("t").selectAll(), { db, orderBy, limit: ROWS / 2 });
  const capture = captureSql(db);
  await paginateCursor(capture.db.selectFrom("t").selectAll(), { db, orderBy, limit: 20, after: middle.nextCursor! });
  return capture.last();
}

async function plan(ctx: DbTestContext<DB>, query: CompiledQuery): Promise<string[]> {
  const explain = {
    sqlite: "explain query plan ",
    postgres: "explain (costs off) ",
    mariadb: "explain ",
  }[ctx.database];
  const { rows } = await ctx.db.executeQuery<Record<string, unknown>>(
    { ...query, sql: explain + query.sql, query: query.query },
  );
  return rows.map((row) =>
    ctx.database === "sqlite"
      ? String(row.detail)
      : ctx.database === "postgres"
      ? String(row["QUERY PLAN"]).trim()
      : `${row.type} ${row.key}`
  );
}

for (const [label, orderBy] of [["one column", ONE], ["two columns, mixed directions", MIXED]] as const) {
  suite.test(`paginateCursor() deep pages are index range scans (${label})`, async (ctx) => {
    const lines = await plan(ctx, await deepPageSql(ctx.db, orderBy));
    const text = lines.join(" | ");
    switch (ctx.database) {
      case "sqlite":
        // SEARCH = a range on the index; SCAN would read the table from its start.
        assert.match(text, /SEARCH t USING (COVERING )?INDEX t_a(_b)?_id \(a[<>]\?\)/, text);
        assert.doesNotMatch(text, /USE TEMP B-TREE FOR ORDER BY/, text);
        break;
      case "postgres":
        assert.match(text, /Index (Only )?Scan using t_a(_b)?_id on t/, text);
        assert.match(text, /Index Cond: /, text);
        assert.doesNotMatch(text, /Sort|Seq Scan/, text);
        break;
      case "mariadb":
        // `range`, not `index` (a full index scan) or `ALL`: why MySQL gets the expansion, not row values.
        assert.match(text, /^range t_a(_b)?_id$/, text);
        break;
    }
  });
}
