import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DummyDriver,
  Kysely,
  type KyselyPlugin,
  MysqlAdapter,
  MysqlIntrospector,
  MysqlQueryCompiler,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryId,
  type RootOperationNode,
  sql,
} from "kysely";
import { type CursorOrderBy, type CursorPage, isInvalidCursorError, paginateCursor } from "./mod.ts";
import { assertSql, captureSql, dbSuite, plainRows, rejection } from "../_test/harness.ts";

interface Item {
  id: number;
  a: number | null;
  b: string | null;
  c: number | null;
}
interface DB {
  items: Item;
  others: { id: number; a: number | null };
  events: { id: number; created_at: string | Date };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await db.schema.createTable("items")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("a", "integer")
      .addColumn("b", "varchar(8)")
      .addColumn("c", "integer")
      .execute();
    await db.schema.createTable("others")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("a", "integer")
      .execute();
    const timestamp = { sqlite: "text", postgres: "timestamptz(6)", mariadb: "datetime(6)" }[database];
    await db.schema.createTable("events")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("created_at", sql.raw(timestamp), (c) => c.notNull())
      .execute();
  },
});

const SEED = Number(Deno.env.get("KYSERA_FC_SEED") ?? 20240917);
const RUNS = Number(Deno.env.get("KYSERA_FC_RUNS") ?? 1000);

type Spec = CursorOrderBy<DB, "items">;

/** Records the queries that were executed (not merely compiled). */
function recorder(): KyselyPlugin & { executed: { node: RootOperationNode; queryId: QueryId }[] } {
  const seen = new WeakMap<QueryId, RootOperationNode>();
  const executed: { node: RootOperationNode; queryId: QueryId }[] = [];
  return {
    executed,
    transformQuery({ node, queryId }) {
      seen.set(queryId, node);
      return node;
    },
    transformResult({ result, queryId }) {
      const node = seen.get(queryId);
      if (node !== undefined) executed.push({ node, queryId });
      return Promise.resolve(result);
    },
  };
}

function compiled(db: Kysely<DB>, entry: { node: RootOperationNode; queryId: QueryId }) {
  return { compile: () => db.getExecutor().compileQuery(entry.node, entry.queryId) };
}

/** The JS oracle of the order: explicit NULL placement, then the `id` tiebreaker in the last direction. */
function comparator(spec: readonly Spec[]): (x: Item, y: Item) => number {
  return (x, y) => {
    for (const s of spec) {
      const key = s.column as keyof Item;
      const vx = x[key], vy = y[key];
      if (vx === null && vy === null) continue;
      if (vx === null) return s.nulls === "first" ? -1 : 1;
      if (vy === null) return s.nulls === "first" ? 1 : -1;
      const v = vx < vy ? -1 : vx > vy ? 1 : 0;
      if (v !== 0) return s.direction === "desc" ? -v : v;
    }
    const v = x.id - y.id;
    return spec.at(-1)?.direction === "desc" ? -v : v;
  };
}

const rowArb = fc.record({
  a: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 3 }),
  b: fc.option(fc.constantFrom("a", "ab", "b", "c"), { freq: 3 }),
  c: fc.option(fc.integer({ min: -2, max: 2 }), { freq: 3 }),
});
const specArb = fc.uniqueArray(
  fc.record({
    column: fc.constantFrom("a", "b", "c"),
    direction: fc.constantFrom("asc" as const, "desc" as const),
    nulls: fc.constantFrom("first" as const, "last" as const),
  }),
  { minLength: 1, maxLength: 3, selector: (s) => s.column },
);

async function walkForward(db: Kysely<DB>, orderBy: readonly Spec[], limit: number): Promise<Item[][]> {
  const pages: Item[][] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const page: CursorPage<Item> = await paginateCursor(db.selectFrom("items").selectAll(), {
      db,
      orderBy,
      limit,
      after,
    });
    pages.push(plainRows(page.data));
    assert.equal(page.hasPrev, after !== undefined);
    if (page.nextCursor === null) {
      assert.equal(page.hasNext, false);
      return pages;
    }
    assert.equal(page.data.length, limit);
    after = page.nextCursor;
  }
  throw new Error("the walk did not end");
}

suite.test("paginateCursor() returns each row once across pages, forward and backward", async ({ db }) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(rowArb, { maxLength: 40 }),
      specArb,
      fc.integer({ min: 1, max: 12 }),
      async (raw, orderBy, limit) => {
        await db.deleteFrom("items").execute();
        const rows = raw.map((r, i) => ({ id: i + 1, ...r }));
        if (rows.length > 0) await db.insertInto("items").values(rows).execute();
        const expected = rows.slice().sort(comparator(orderBy)).map((r) => r.id);

        const forward = await walkForward(db, orderBy, limit);
        assert.deepEqual(forward.flat().map((r) => r.id), expected);

        const backward: Item[][] = [];
        let before: string | undefined;
        for (let guard = 0; guard < 1000; guard++) {
          const page = await paginateCursor(db.selectFrom("items").selectAll(), {
            db,
            orderBy,
            limit,
            before,
            fromEnd: true,
          });
          backward.unshift(plainRows(page.data));
          assert.equal(page.hasNext, before !== undefined);
          if (page.prevCursor === null) break;
          assert.equal(page.data.length, limit);
          before = page.prevCursor;
        }
        assert.deepEqual(backward.flat().map((r) => r.id), expected);
      },
    ),
    { seed: SEED, numRuns: RUNS },
  );
});

suite.test("paginateCursor() skips and repeats no stable row while rows are inserted and deleted", async ({ db }) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(rowArb, { minLength: 1, maxLength: 40 }),
      specArb,
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.record({ insert: fc.array(rowArb, { maxLength: 3 }), deletes: fc.nat({ max: 3 }) }), {
        maxLength: 40,
      }),
      async (raw, orderBy, limit, writes) => {
        await db.deleteFrom("items").execute();
        const initial = raw.map((r, i) => ({ id: i + 1, ...r }));
        await db.insertInto("items").values(initial).execute();
        const live = new Map(initial.map((r) => [r.id, r]));
        const deleted = new Set<number>();
        let nextId = 1000;
        const seen: Item[] = [];
        let after: string | undefined;
        for (let step = 0; step < 1000; step++) {
          const page = await paginateCursor(db.selectFrom("items").selectAll(), { db, orderBy, limit, after });
          seen.push(...plainRows(page.data));
          if (page.nextCursor === null) break;
          after = page.nextCursor;
          // The writer stops after its writes: one that always inserts just
          // ahead of the cursor would keep any keyset walk going forever.
          const write = writes[step];
          if (write === undefined) continue;
          const fresh = write.insert.map((r) => ({ id: nextId++, ...r }));
          if (fresh.length > 0) await db.insertInto("items").values(fresh).execute();
          for (const r of fresh) live.set(r.id, r);
          const victims = [...live.keys()].sort((x, y) => (x * 7919) % 101 - (y * 7919) % 101).slice(0, write.deletes);
          if (victims.length > 0) await db.deleteFrom("items").where("id", "in", victims).execute();
          for (const id of victims) {
            live.delete(id);
            deleted.add(id);
          }
        }
        const ids = seen.map((r) => r.id);
        assert.equal(new Set(ids).size, ids.length, "a row was returned twice");
        for (const r of initial) {
          if (!deleted.has(r.id)) assert.ok(ids.includes(r.id), `stable row ${r.id} was skipped`);
        }
        const cmp = comparator(orderBy);
        for (let i = 1; i < seen.length; i++) assert.ok(cmp(seen[i - 1]!, seen[i]!) < 0, "rows out of order");
      },
    ),
    { seed: SEED, numRuns: RUNS },
  );
});

async function seed(db: Kysely<DB>): Promise<void> {
  await db.insertInto("items").values([
    { id: 1, a: 1, b: "x", c: null },
    { id: 2, a: 2, b: "y", c: 5 },
    { id: 3, a: 2, b: "z", c: null },
    { id: 4, a: 3, b: "x", c: 1 },
  ]).execute();
}

suite.test("paginateCursor() compiles a row-value comparison for same-direction NOT NULL columns", async (ctx) => {
  const { db } = ctx;
  await seed(db);
  const rec = recorder();
  const traced = db.withPlugin(rec);
  const orderBy = [{ column: "a", direction: "desc", type: "number" }] as const;
  const first = await paginateCursor(traced.selectFrom("items").select(["id", "a"]), { db, orderBy, limit: 2 });
  assert.deepEqual(plainRows(first.data), [{ id: 4, a: 3 }, { id: 3, a: 2 }]);
  const second = await paginateCursor(traced.selectFrom("items").select(["id", "a"]), {
    db,
    orderBy,
    limit: 2,
    after: first.nextCursor!,
  });
  assert.deepEqual(plainRows(second.data), [{ id: 2, a: 2 }, { id: 1, a: 1 }]);
  assert.deepEqual([second.hasNext, second.hasPrev, second.nextCursor], [false, true, null]);
  assertSql(ctx, compiled(db, rec.executed[1]!), {
    postgres: {
      sql: 'select "id", "a" from "items" where ("a", "id") < ($1, $2) order by "a" desc, "id" desc limit $3',
      parameters: [2, 3, 3],
    },
    sqlite: {
      sql: 'select "id", "a" from "items" where ("a", "id") < (?, ?) order by "a" desc, "id" desc limit ?',
      parameters: [2, 3, 3],
    },
    mysql: {
      sql:
        "select `id`, `a` from `items` where (`a` <= ? and (`a` < ? or `id` < ?)) order by `a` desc, `id` desc limit ?",
      parameters: [2, 2, 3, 3],
    },
  });
});

suite.test("paginateCursor() expands mixed directions and places NULLs the same on every dialect", async (ctx) => {
  const { db } = ctx;
  await seed(db);
  const rec = recorder();
  const traced = db.withPlugin(rec);
  const orderBy: Spec[] = [{ column: "c", direction: "asc", nulls: "last" }, { column: "b", direction: "desc" }];
  const query = traced.selectFrom("items").select(["id", "b", "c"]);
  const first = await paginateCursor(query, { db, orderBy, limit: 2 });
  assert.deepEqual(plainRows(first.data), [{ id: 4, b: "x", c: 1 }, { id: 2, b: "y", c: 5 }]);
  const second = await paginateCursor(query, { db, orderBy, limit: 2, after: first.nextCursor! });
  assert.deepEqual(plainRows(second.data), [{ id: 3, b: "z", c: null }, { id: 1, b: "x", c: null }]);
  const back = await paginateCursor(query, { db, orderBy, limit: 2, before: second.prevCursor! });
  assert.deepEqual(plainRows(back.data), plainRows(first.data));
  const orderPg = 'order by "c" asc nulls last, "b" desc, "id" desc limit';
  assertSql(ctx, compiled(db, rec.executed[1]!), {
    postgres: {
      sql: `select "id", "b", "c" from "items" where (("c" >= $1 or "c" is null) and (("c" > $2 or "c" is null) or ` +
        `("b", "id") < ($3, $4))) ${orderPg} $5`,
      parameters: [5, 5, "y", 2, 3],
    },
    sqlite: {
      sql: `select "id", "b", "c" from "items" where (("c" >= ? or "c" is null) and (("c" > ? or "c" is null) or ` +
        `("b", "id") < (?, ?))) ${orderPg} ?`,
      parameters: [5, 5, "y", 2, 3],
    },
    mysql: {
      sql: "select `id`, `b`, `c` from `items` where ((`c` >= ? or `c` is null) and ((`c` > ? or `c` is null) or " +
        "(`b` <= ? and (`b` < ? or `id` < ?)))) order by case when `c` is null then 1 else 0 end asc, `c` asc, " +
        "`b` desc, `id` desc limit ?",
      parameters: [5, 5, "y", "y", 2, 3],
    },
  });
});

suite.test("paginateCursor() follows an order array changed in place between pages", async ({ db }) => {
  await seed(db);
  // Plans are cached by the orderBy array; a change in place must not page by the old order.
  const orderBy: Spec[] = [{ column: "a", direction: "asc", type: "number" }];
  const tiebreaker = { column: "id" as const };
  const query = db.selectFrom("items").select(["id", "a", "b"]);
  const page = (after?: string) => paginateCursor(query, { db, orderBy, limit: 2, after, tiebreaker });
  const ids = (p: CursorPage<{ id: number }>) => p.data.map((r) => Number(r.id));
  const first = await page();
  assert.deepEqual(ids(first), [1, 2]);
  assert.deepEqual(ids(await page(first.nextCursor!)), [3, 4]);
  (orderBy[0] as { direction: string }).direction = "desc";
  assert.deepEqual(ids(await page()), [4, 3]);
  const error = await rejection(page(first.nextCursor!));
  assert.ok(isInvalidCursorError(error), `a cursor of the old order must be rejected, got ${error}`);
  orderBy[0] = { column: "b", type: "string" };
  assert.deepEqual(ids(await page()), [1, 4]);
  orderBy.push({ column: "a", direction: "desc", type: "number" });
  assert.deepEqual(ids(await page()), [4, 1]);
  tiebreaker.column = "items.id" as "id";
  const capture = captureSql(db);
  await paginateCursor(capture.db.selectFrom("items").select(["id", "a", "b"]), { db, orderBy, limit: 2, tiebreaker });
  assert.match(capture.last().sql, /order by ["`]b["`] asc, ["`]a["`] desc, ["`]items["`]\.["`]id["`] desc/);
});

suite.test("paginateCursor() keeps one order's cursors apart by bind and size cap", async ({ db }) => {
  await seed(db);
  const orderBy: Spec[] = [{ column: "a", type: "number" }];
  const query = db.selectFrom("items").select(["id", "a"]);
  const token = (await paginateCursor(query, { db, orderBy, limit: 1, bind: "tenant:1" })).nextCursor!;
  const other = await rejection(paginateCursor(query, { db, orderBy, limit: 1, bind: "tenant:2", after: token }));
  assert.ok(isInvalidCursorError(other) && other.reason === "context", `got ${other}`);
  const capped = await rejection(
    paginateCursor(query, { db, orderBy, limit: 1, bind: "tenant:1", maxCursorLength: 8, after: token }),
  );
  assert.ok(isInvalidCursorError(capped) && capped.reason === "too-large", `got ${capped}`);
  const page = await paginateCursor(query, { db, orderBy, limit: 1, bind: "tenant:1", after: token });
  assert.deepEqual(page.data.map((r) => Number(r.id)), [2]);
});

suite.test("paginateCursor() pages one order array on two dialects, each in its own SQL", async (ctx) => {
  const { db } = ctx;
  await seed(db);
  const orderBy: Spec[] = [{ column: "c", nulls: "last", type: "number" }];
  // A second, compile-only database of another dialect, sharing the order array.
  const other = ctx.dialect === "mysql"
    ? { adapter: new PostgresAdapter(), compiler: new PostgresQueryCompiler(), introspector: PostgresIntrospector }
    : { adapter: new MysqlAdapter(), compiler: new MysqlQueryCompiler(), introspector: MysqlIntrospector };
  const dummy = new Kysely<DB>({
    dialect: {
      createAdapter: () => other.adapter,
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new other.introspector(k),
      createQueryCompiler: () => other.compiler,
    },
  });
  const nullOrder = (mysql: boolean) =>
    mysql
      ? /order by case when `c` is null then 1 else 0 end asc, `c` asc, `id` asc limit/
      : /order by "c" asc nulls last, "id" asc limit/;
  for (const target of [db, dummy, db]) {
    const capture = captureSql(target);
    const page = await paginateCursor(capture.db.selectFrom("items").select(["id", "c"]), {
      db: target,
      orderBy,
      limit: 3,
    });
    const mysql = target === db ? ctx.dialect === "mysql" : ctx.dialect !== "mysql";
    assert.match(capture.last().sql, nullOrder(mysql));
    if (target === db) assert.deepEqual(page.data.map((r) => Number(r.id)), [4, 2, 1]);
  }
  await dummy.destroy();
});

suite.test("paginateCursor() rejects tampered cursors with InvalidCursorError and sends no SQL", async (ctx) => {
  const { db } = ctx;
  await seed(db);
  const orderBy: Spec[] = [{ column: "a", type: "number" }];
  // The same order on the other table (an order typed for one table does not compile for another).
  const othersOrder: CursorOrderBy<DB, "others">[] = [{ column: "a", type: "number" }];
  for (const secret of [undefined, "a-very-secret-key-of-at-least-32-bytes"]) {
    const query = db.selectFrom("items").select(["id", "a"]);
    const page = await paginateCursor(query, { db, orderBy, limit: 1, secret });
    const token = page.nextCursor!;
    const other = await paginateCursor(db.selectFrom("others").select(["id", "a"]), {
      db,
      orderBy: othersOrder,
      limit: 1,
      secret,
    })
      .catch(() => undefined);
    await db.insertInto("others").values([{ id: 1, a: 1 }, { id: 2, a: 2 }]).execute();
    const otherTable = (await paginateCursor(db.selectFrom("others").select(["id", "a"]), {
      db,
      orderBy: othersOrder,
      limit: 1,
      secret,
    })).nextCursor!;
    assert.equal(other?.nextCursor ?? null, null);
    const otherOrder = (await paginateCursor(query, {
      db,
      orderBy: [{ column: "a", direction: "desc", type: "number" }],
      limit: 1,
      secret,
    })).nextCursor!;
    const otherFilter = (await paginateCursor(query.where("a", ">", 0), { db, orderBy, limit: 1, secret }))
      .nextCursor!;
    // The same page served to another tenant (CP-02).
    const otherTenant = (await paginateCursor(query, { db, orderBy, limit: 1, secret, bind: "tenant:2" }))
      .nextCursor!;
    const forged = [
      token.slice(0, -2),
      token.slice(0, 5) + (token[5] === "A" ? "B" : "A") + token.slice(6),
      token + "AAAA",
      "A".repeat(5000),
      btoa("not json"),
      otherOrder,
      // Signed cursors are bound to the query too. Unsigned ones are bound to
      // the order only (anyone can forge them, so binding proves nothing).
      ...(secret === undefined ? [] : [otherTable, otherFilter, otherTenant]),
    ];
    if (secret === undefined) {
      const page = await paginateCursor(query, { db, orderBy, limit: 1, after: otherTable });
      assert.deepEqual(plainRows(page.data).map((r) => r.a), [2], "an unsigned cursor carries values only");
    }
    for (const bad of forged) {
      const rec = recorder();
      const error = await rejection(
        paginateCursor(db.withPlugin(rec).selectFrom("items").select(["id", "a"]), {
          db,
          orderBy,
          limit: 1,
          secret,
          after: bad,
        }),
      );
      assert.ok(isInvalidCursorError(error), `expected InvalidCursorError, got ${error}`);
      assert.equal(rec.executed.length, 0, "SQL was sent for a rejected cursor");
    }
    await db.deleteFrom("others").execute();
  }
});

suite.test("paginateCursor() binds cursor values as parameters, never as SQL", async (ctx) => {
  const { db } = ctx;
  await seed(db);
  const rec = recorder();
  const orderBy: Spec[] = [{ column: "b", type: "string" }];
  const query = db.withPlugin(rec).selectFrom("items").select(["id", "b"]);
  // An unsigned cursor is forgeable by design: forge one whose value is SQL.
  const real = (await paginateCursor(query, { db, orderBy, limit: 1 })).nextCursor!;
  const bytes = Uint8Array.from(atob(real.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const payload = JSON.parse(new TextDecoder().decode(bytes.subarray(1)));
  payload[1] = "x' OR '1'='1";
  const forged = btoa(String.fromCharCode(1, ...new TextEncoder().encode(JSON.stringify(payload))))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const page = await paginateCursor(query, { db, orderBy, limit: 10, after: forged });
  assert.deepEqual(plainRows(page.data).map((r) => r.id), [2, 3]);
  const last = rec.executed.at(-1)!;
  assert.ok(last.queryId !== undefined);
  const { parameters } = db.getExecutor().compileQuery(last.node, last.queryId);
  assert.ok(parameters.includes("x' OR '1'='1"));
  assert.equal((await db.selectFrom("items").select("id").execute()).length, 4);
});

suite.test("paginateCursor() validates its arguments", async ({ db }) => {
  const query = db.selectFrom("items").selectAll();
  await assert.rejects(
    paginateCursor(query, { db, orderBy: [{ column: "a" }], limit: 0 }),
    new RangeError("Cannot paginate: 'limit' must be a positive integer: current value is 0"),
  );
  await assert.rejects(paginateCursor(query, { db, orderBy: [{ column: "a" }], limit: 1.5 }), RangeError);
  await assert.rejects(paginateCursor(query, { db, orderBy: [], limit: 1 }), TypeError);
  await assert.rejects(
    paginateCursor(query, { db, orderBy: [{ column: "a" }], limit: 1, after: "x", before: "y" }),
    TypeError,
  );
  await assert.rejects(
    paginateCursor(query, { db, orderBy: [{ column: "a", direction: "up" as "asc" }], limit: 1 }),
    TypeError,
  );
  await db.insertInto("items").values({ id: 1, a: null, b: null, c: null }).execute();
  await assert.rejects(
    paginateCursor(query, { db, orderBy: [{ column: "a" }], limit: 1 }),
    /order column 'a' holds NULL: set 'nulls'/,
  );
  await assert.rejects(
    paginateCursor(db.selectFrom("items").select("a"), { db, orderBy: [{ column: "a", nulls: "last" }], limit: 1 }),
    /must include order column 'id'/,
  );
});

suite.test("paginateCursor() pages a join ordered by qualified columns and a named tiebreaker", async ({ db }) => {
  await seed(db);
  await db.insertInto("others").values([{ id: 1, a: 10 }, { id: 2, a: 20 }, { id: 3, a: 20 }, { id: 4, a: 30 }])
    .execute();
  const query = db.selectFrom("items").innerJoin("others as o", "o.id", "items.id")
    .select(["items.id as item_id", "o.a as oa"]);
  const orderBy = [{ column: "o.a", key: "oa", direction: "desc" }] as const;
  const ids: number[] = [];
  let after: string | undefined;
  do {
    const page = await paginateCursor(query, {
      db,
      orderBy,
      limit: 1,
      after,
      tiebreaker: { column: "items.id", key: "item_id" },
    });
    ids.push(...page.data.map((r) => r.item_id));
    after = page.nextCursor ?? undefined;
  } while (after !== undefined);
  assert.deepEqual(ids, [4, 3, 2, 1]);
});

suite.test("paginateCursor() keeps microsecond timestamps exact when they are selected as text (PP-05)", async (ctx) => {
  const { db } = ctx;
  // Twelve events inside one millisecond, with ties: a JS Date cannot tell them apart.
  const micros = [1, 1, 2, 3, 3, 3, 4, 5, 6, 6, 7, 8];
  await db.insertInto("events").values(
    micros.map((us, i) => ({ id: i + 1, created_at: `2024-01-02 03:04:05.123${String(us).padStart(3, "0")}` })),
  ).execute();
  const expected = micros.map((us, i) => ({ us, id: i + 1 }))
    .sort((x, y) => y.us - x.us || y.id - x.id).map((r) => r.id);
  // The exact text of the timestamp, in each database's idiom; the predicate
  // compares it with the column, which keeps its microseconds.
  const asText = {
    sqlite: sql<string>`created_at`,
    postgres: sql<string>`to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US')`,
    mariadb: sql<string>`date_format(created_at, '%Y-%m-%d %H:%i:%s.%f')`,
  }[ctx.database];
  const walk = async (page: (after: string | undefined) => Promise<CursorPage<{ id: number }>>) => {
    const ids: number[] = [];
    let after: string | undefined;
    for (let guard = 0; guard < 20; guard++) {
      const { data, nextCursor } = await page(after);
      ids.push(...data.map((r) => Number(r.id)));
      if (nextCursor === null) break;
      after = nextCursor;
    }
    return ids;
  };
  const exact = await walk((after) =>
    paginateCursor(db.selectFrom("events").select(["id", asText.as("created_at_text")]), {
      db,
      orderBy: [{ column: "created_at", key: "created_at_text", direction: "desc", type: "string" }],
      limit: 3,
      after,
    })
  );
  assert.deepEqual(exact, expected);
  if (ctx.database === "postgres") {
    // Negative control: as a Date the cursor keeps milliseconds only, and the
    // walk goes wrong (here it repeats rows), which is why the text is needed.
    const lossy = await walk((after) =>
      paginateCursor(db.selectFrom("events").select(["id", "created_at"]), {
        db,
        orderBy: [{ column: "created_at", direction: "desc", type: "date" }],
        limit: 3,
        after,
      })
    );
    assert.notDeepEqual(lossy, expected);
  }
});

suite.test("paginateCursor() walks case-insensitive ties once each, in the database's own order (PP-06)", async (ctx) => {
  const { db } = ctx;
  // MariaDB's default collation is case-insensitive: 'a' and 'A' tie there.
  const values = ["a", "A", "b", "B", "a", "A", "ab", "Ab", "b"];
  await db.insertInto("items").values(values.map((b, i) => ({ id: i + 1, a: 0, b, c: 0 }))).execute();
  const oracle = (await db.selectFrom("items").select("id").orderBy("b").orderBy("id").execute())
    .map((r) => Number(r.id));
  for (const limit of [1, 2, 4]) {
    const ids: number[] = [];
    let after: string | undefined;
    for (let guard = 0; guard < 20; guard++) {
      const page = await paginateCursor(db.selectFrom("items").select(["id", "b"]), {
        db,
        orderBy: [{ column: "b", type: "string" }],
        limit,
        after,
      });
      ids.push(...page.data.map((r) => Number(r.id)));
      if (page.nextCursor === null) break;
      after = page.nextCursor;
    }
    assert.deepEqual(ids, oracle, `page size ${limit}`);
  }
});
