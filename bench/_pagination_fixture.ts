/**
 * The pagination benches' shared fixture (private): a 100k-row table on
 * SQLite (node:sqlite) and PostgreSQL, and the four keyset pages (one column
 * and two columns of mixed directions; page 1 and a page at 90% depth), each
 * written three ways:
 *
 * - `raw`: a prebuilt `sql` template, executed as is: the floor (no cursor
 *   decoded, no query built, no cursor encoded).
 * - `handWritten`: what an application writes by hand on each request with
 *   Kysely's builder: decode the client's cursor (base64url of a JSON array),
 *   build the same query (same predicate, ORDER BY and LIMIT + 1 probe), run
 *   it, and encode the next cursor.
 * - `paginateCursor`: the same page through `paginateCursor()`.
 *
 * `pageCases()` checks once that `paginateCursor()` sends exactly the SQL and
 * parameters of the hand-written page.
 */
import { DatabaseSync } from "node:sqlite";
import { Kysely, PostgresDialect, type RawBuilder, sql, SqliteDialect } from "kysely";
import pg from "pg";
import { type CursorOrderBy, paginateCursor } from "../core/mod.ts";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import { captureSql } from "../_test/harness.ts";

/** The bench table. */
export interface DB {
  t: { id: number; a: number; b: number };
}

type Row = DB["t"];

/** Rows in the table. */
export const ROWS = 100_000;
/** Rows per page. */
export const LIMIT = 20;
/** The 0-based position of the first row of the deep page (90% of the table). */
export const DEPTH: number = Math.floor(ROWS * 0.9);

const POSTGRES_URL = Deno.env.get("KYSERA_TEST_POSTGRES_URL") ?? "postgres://postgres@127.0.0.1:5432/test";

/** One column, descending (plus the `id` tiebreaker). */
export const ONE: CursorOrderBy<DB, "t">[] = [{ column: "a", direction: "desc", type: "number" }];
/** Two columns of mixed directions (plus the `id` tiebreaker). */
export const MIXED: CursorOrderBy<DB, "t">[] = [
  { column: "a", direction: "asc", type: "number" },
  { column: "b", direction: "desc", type: "number" },
];

/** The table on an in-memory SQLite database, with an index per order. */
export function sqliteDb(): Kysely<DB> {
  const handle = new DatabaseSync(":memory:");
  handle.exec("create table t (id integer primary key, a integer not null, b integer not null)");
  handle.exec("create index t_a_id on t (a desc, id desc)");
  handle.exec("create index t_a_b_id on t (a, b desc, id desc)");
  const insert = handle.prepare("insert into t (id, a, b) values (?, ?, ?)");
  handle.exec("begin");
  for (let i = 1; i <= ROWS; i++) insert.run(i, (i * 7919) % 1000, (i * 104729) % 100);
  handle.exec("commit");
  handle.exec("analyze");
  return new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
}

/** The table in schema `kysera_bench` on PostgreSQL; `undefined` (with a warning) when unreachable. */
export async function postgresDb(): Promise<Kysely<DB> | undefined> {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1, options: "-c search_path=kysera_bench" });
  try {
    const client = await pool.connect();
    try {
      await client.query("drop schema if exists kysera_bench cascade; create schema kysera_bench");
      await client.query(
        "create table kysera_bench.t (id integer primary key, a integer not null, b integer not null)",
      );
      await client.query(
        `insert into kysera_bench.t select i, (i::bigint * 7919) % 1000, (i::bigint * 104729) % 100 from generate_series(1, ${ROWS}) i`,
      );
      await client.query("create index t_a_id on kysera_bench.t (a desc, id desc)");
      await client.query("create index t_a_b_id on kysera_bench.t (a, b desc, id desc)");
      await client.query("analyze kysera_bench.t");
    } finally {
      client.release();
    }
  } catch (error) {
    console.warn(`PostgreSQL unreachable at ${POSTGRES_URL}: its benches are skipped (${error})`);
    await pool.end();
    return undefined;
  }
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

/** One page, three ways (see the module doc). */
export interface PageCase {
  /** `"1-col page 1"`, `"1-col 90%"`, `"2-col page 1"` or `"2-col 90%"`. */
  readonly name: string;
  readonly raw: () => Promise<unknown>;
  readonly handWritten: () => Promise<unknown>;
  readonly paginateCursor: () => Promise<unknown>;
  /** The same page by OFFSET (deep pages only). */
  readonly offset?: () => Promise<unknown>;
}

/** A cursor as an application writes one by hand: base64url of the JSON of the order values. */
function encodeHand(values: readonly unknown[]): string {
  return btoa(JSON.stringify(values)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeHand(token: string): unknown[] {
  return JSON.parse(atob(token.replace(/-/g, "+").replace(/_/g, "/")));
}

/** The LIMIT + 1 probe and the next cursor, as an application writes them by hand. */
function handPage(rows: Row[], keys: readonly (keyof Row)[]) {
  const hasNext = rows.length > LIMIT;
  const data = hasNext ? rows.slice(0, LIMIT) : rows;
  const last = data[data.length - 1];
  return { data, hasNext, nextCursor: hasNext && last !== undefined ? encodeHand(keys.map((k) => last[k])) : null };
}

/** The cursor `paginateCursor()` issues for the row at 0-based position `DEPTH - 1` in `orderBy`. */
async function cursorAt(db: Kysely<DB>, orderBy: CursorOrderBy<DB, "t">[]): Promise<string> {
  const tail = await paginateCursor(db.selectFrom("t").selectAll(), {
    db,
    orderBy,
    limit: ROWS - DEPTH + 1,
    fromEnd: true,
  });
  return tail.prevCursor!;
}

async function rowAt(db: Kysely<DB>, order: "one" | "mixed"): Promise<Row> {
  const q = db.selectFrom("t").selectAll();
  const ordered = order === "one"
    ? q.orderBy("a", "desc").orderBy("id", "desc")
    : q.orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc");
  return await ordered.offset(DEPTH - 1).limit(1).executeTakeFirstOrThrow();
}

/**
 * The four pages on `db`. `rowValueMixed`: whether the dialect's keyset uses
 * row values (PostgreSQL, SQLite) or the nested expansion (MySQL).
 *
 * @throws {Error} When `paginateCursor()` sends other SQL than the hand-written page.
 */
export async function pageCases(db: Kysely<DB>, rowValueMixed = true): Promise<PageCase[]> {
  const query = db.selectFrom("t").selectAll();
  const oneToken = await cursorAt(db, ONE);
  const mixedToken = await cursorAt(db, MIXED);
  const one = await rowAt(db, "one");
  const mixed = await rowAt(db, "mixed");
  const handOneToken = encodeHand([one.a, one.id]);
  const handMixedToken = encodeHand([mixed.a, mixed.b, mixed.id]);

  const raw: Record<string, RawBuilder<unknown>> = {
    onePage1: sql`select * from t order by a desc, id desc limit ${LIMIT + 1}`,
    oneDeep: sql`select * from t where (a, id) < (${one.a}, ${one.id})
      order by a desc, id desc limit ${LIMIT + 1}`,
    mixedPage1: sql`select * from t order by a asc, b desc, id desc limit ${LIMIT + 1}`,
    mixedDeep: rowValueMixed
      ? sql`select * from t where a >= ${mixed.a} and (a > ${mixed.a} or (b, id) < (${mixed.b}, ${mixed.id}))
        order by a asc, b desc, id desc limit ${LIMIT + 1}`
      : sql`select * from t where a >= ${mixed.a} and (a > ${mixed.a} or (b <= ${mixed.b} and (b < ${mixed.b} or id < ${mixed.id})))
        order by a asc, b desc, id desc limit ${LIMIT + 1}`,
  };

  // The queries a hand-written page builds, from the decoded cursor values.
  const build = {
    onePage1: () => query.orderBy("a", "desc").orderBy("id", "desc").limit(LIMIT + 1),
    oneDeep: (a: number, id: number) =>
      query.where((eb) => eb(eb.refTuple("a", "id"), "<", eb.tuple(a, id)))
        .orderBy("a", "desc").orderBy("id", "desc").limit(LIMIT + 1),
    mixedPage1: () => query.orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc").limit(LIMIT + 1),
    mixedDeep: (a: number, b: number, id: number) =>
      query.where((eb) =>
        eb.and([
          eb("a", ">=", a),
          eb.or([
            eb("a", ">", a),
            rowValueMixed
              ? eb(eb.refTuple("b", "id"), "<", eb.tuple(b, id))
              : eb.and([eb("b", "<=", b), eb.or([eb("b", "<", b), eb("id", "<", id)])]),
          ]),
        ])
      ).orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc").limit(LIMIT + 1),
  };
  const oneKeys = ["a", "id"] as const;
  const mixedKeys = ["a", "b", "id"] as const;

  const cases: PageCase[] = [
    {
      name: "1-col page 1",
      raw: () => raw.onePage1!.execute(db),
      handWritten: async () => handPage(await build.onePage1().execute(), oneKeys),
      paginateCursor: () => paginateCursor(query, { db, orderBy: ONE, limit: LIMIT }),
    },
    {
      name: "1-col 90%",
      raw: () => raw.oneDeep!.execute(db),
      handWritten: async () => {
        const [a, id] = decodeHand(handOneToken) as [number, number];
        return handPage(await build.oneDeep(a, id).execute(), oneKeys);
      },
      paginateCursor: () => paginateCursor(query, { db, orderBy: ONE, limit: LIMIT, after: oneToken }),
      offset: () => query.orderBy("a", "desc").orderBy("id", "desc").limit(LIMIT + 1).offset(DEPTH).execute(),
    },
    {
      name: "2-col page 1",
      raw: () => raw.mixedPage1!.execute(db),
      handWritten: async () => handPage(await build.mixedPage1().execute(), mixedKeys),
      paginateCursor: () => paginateCursor(query, { db, orderBy: MIXED, limit: LIMIT }),
    },
    {
      name: "2-col 90%",
      raw: () => raw.mixedDeep!.execute(db),
      handWritten: async () => {
        const [a, b, id] = decodeHand(handMixedToken) as [number, number, number];
        return handPage(await build.mixedDeep(a, b, id).execute(), mixedKeys);
      },
      paginateCursor: () => paginateCursor(query, { db, orderBy: MIXED, limit: LIMIT, after: mixedToken }),
      offset: () =>
        query.orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc").limit(LIMIT + 1).offset(DEPTH)
          .execute(),
    },
  ];

  // paginateCursor must send exactly the hand-written SQL: check once.
  const expected = [
    build.onePage1(),
    build.oneDeep(one.a, one.id),
    build.mixedPage1(),
    build.mixedDeep(mixed.a, mixed.b, mixed.id),
  ];
  const tokens = [undefined, oneToken, undefined, mixedToken];
  const orders = [ONE, ONE, MIXED, MIXED];
  for (let i = 0; i < cases.length; i++) {
    const capture = captureSql(db);
    const after = tokens[i];
    await paginateCursor(capture.db.selectFrom("t").selectAll(), {
      db,
      orderBy: orders[i]!,
      limit: LIMIT,
      ...(after === undefined ? {} : { after }),
    });
    const sent = capture.last();
    const want = expected[i]!.compile();
    if (sent.sql !== want.sql || JSON.stringify(sent.parameters) !== JSON.stringify(want.parameters)) {
      throw new Error(
        `${cases[i]!.name}: paginateCursor sent ${sent.sql} ${JSON.stringify(sent.parameters)}, expected ${want.sql} ${
          JSON.stringify(want.parameters)
        }`,
      );
    }
  }
  return cases;
}
