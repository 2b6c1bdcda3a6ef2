import assert from "node:assert/strict";
import type { Generated } from "kysely";
import { addIdColumn, captureSql, dbSuite, plainRows, rejection } from "../_test/harness.ts";
import { dialectOfQuery, paginateCursor } from "../core/mod.ts";
import { createORM } from "../repository/mod.ts";
import { createExecutorSync } from "./mod.ts";

interface DB {
  posts: { id: Generated<number>; score: number; title: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("posts"), database)
      .addColumn("score", "integer", (c) => c.notNull())
      .addColumn("title", "varchar(20)", (c) => c.notNull())
      .execute();
    await db.insertInto("posts").values([
      { score: 5, title: "a" },
      { score: 7, title: "b" },
      { score: 5, title: "c" },
    ]).execute();
  },
});

async function walk(
  page: (after: string | undefined) => Promise<{ data: { id: number }[]; nextCursor: string | null }>,
): Promise<number[][]> {
  const pages: number[][] = [];
  let after: string | undefined;
  do {
    const p = await page(after);
    pages.push(p.data.map((r) => Number(r.id)));
    after = p.nextCursor ?? undefined;
  } while (after !== undefined);
  return pages;
}

suite.test("paginateCursor() without 'db' on a query of an executor, of a transaction and of a derived instance", async ({ db, dialect }) => {
  const executor = createExecutorSync(db, []);
  assert.equal(dialectOfQuery(executor.selectFrom("posts").select("id")), dialect);
  assert.equal(dialectOfQuery(db.selectFrom("posts").select("id")), undefined);
  const pages = await walk((after) =>
    paginateCursor(executor.selectFrom("posts").select(["id", "score"]), {
      orderBy: { column: "score", direction: "desc" },
      limit: 2,
      after,
    })
  );
  assert.deepEqual(pages, [[2, 3], [1]]);
  await executor.transaction().execute(async (trx) => {
    const page = await paginateCursor(trx.selectFrom("posts").select(["id"]), { orderBy: "id", limit: 5 });
    assert.deepEqual(plainRows(page.data).map((r) => Number(r.id)), [1, 2, 3]);
  });
});

suite.test("paginateCursor() without 'db' on a plain Kysely query is a TypeError naming the fix", async ({ db }) => {
  const error = await rejection(paginateCursor(db.selectFrom("posts").select("id"), { orderBy: "id", limit: 1 }));
  assert.ok(error instanceof TypeError);
  assert.equal(
    error.message,
    "Cannot paginate: the query's dialect is unknown: pass 'db' (the Kysely instance the query was built from) or build the query from a Kysera executor",
  );
});

suite.test("paginateCursor() accepts a column, an entry or an array, with the same SQL as the array form", async ({ db }) => {
  const executor = createExecutorSync(db, []);
  const forms = [
    "score",
    { column: "score" },
    ["score"],
    [{ column: "score", direction: "asc" }],
  ] as const;
  const sent: string[] = [];
  for (const orderBy of forms) {
    const capture = captureSql(executor);
    const first = await paginateCursor(capture.db.selectFrom("posts").select(["id", "score"]), { orderBy, limit: 2 });
    const second = await paginateCursor(capture.db.selectFrom("posts").select(["id", "score"]), {
      orderBy,
      limit: 2,
      after: first.nextCursor!,
    });
    sent.push(capture.last().sql);
    assert.deepEqual(plainRows([...first.data, ...second.data]).map((r) => Number(r.id)), [1, 3, 2]);
  }
  assert.equal(new Set(sent).size, 1, `one SQL for every form: ${sent.join(" | ")}`);
});

suite.test("a hoisted order without 'as const' pages like the literal one; its strings are checked at run time", async ({ db }) => {
  const executor = createExecutorSync(db, []);
  const orderBy = [{ column: "score", direction: "desc" }];
  const pages = await walk((after) =>
    paginateCursor(executor.selectFrom("posts").select(["id", "score"]), { orderBy, limit: 2, after })
  );
  assert.deepEqual(pages, [[2, 3], [1]]);
  const bad = [{ column: "score", direction: "down" }];
  const error = await rejection(paginateCursor(executor.selectFrom("posts").select("id"), { orderBy: bad, limit: 1 }));
  assert.ok(error instanceof TypeError);
  assert.match(error.message, /'orderBy\[0\]\.direction' must be "asc" or "desc": current value is down/);
});

suite.test("repo.paginateCursor() accepts a column or an entry; findByIdOrThrow() reads naturally when missing", async ({ db }) => {
  const posts = createORM(createExecutorSync(db, [])).createRepository({ tableName: "posts" });
  const byColumn = await posts.paginateCursor({ orderBy: "score", limit: 3 });
  assert.deepEqual(byColumn.data.map((r) => Number(r.id)), [1, 3, 2]);
  const byEntry = await posts.paginateCursor({ orderBy: { column: "score", direction: "desc" }, limit: 3 });
  assert.deepEqual(byEntry.data.map((r) => Number(r.id)), [2, 3, 1]);
  assert.equal((await posts.findByIdOrThrow(2)).title, "b");
  const error = await rejection(posts.findByIdOrThrow(99));
  assert.ok(error instanceof Error);
  assert.equal(error.message, "Cannot find posts row with id 99");
  assert.deepEqual({ ...(error as unknown as { key: object }).key }, { id: 99 });
  assert.equal((error as unknown as { table: string }).table, "posts");
});
