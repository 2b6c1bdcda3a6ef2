/**
 * Pagination benches: a keyset page of `paginateCursor()` against the same
 * page written by hand (row-value / expanded keyset SQL, the baseline) and
 * against OFFSET at the same depth, on a 100k-row table: SQLite (node:sqlite)
 * and PostgreSQL when reachable (`KYSERA_TEST_POSTGRES_URL`). Also the cursor
 * codec: encode and decode, 1 and 3 columns, unsigned and signed.
 *
 * Each page group also has the same page built with Kysely's builder per call
 * ("hand-written Kysely"). `CODEC_ONLY=1` runs the codec groups alone.
 *
 * Run: `deno bench -A bench/pagination_bench.ts`
 */
import { DatabaseSync } from "node:sqlite";
import { Kysely, PostgresDialect, sql, SqliteDialect } from "kysely";
import pg from "pg";
import { createCursorCodec, type CursorOrderBy, paginateCursor } from "../core/mod.ts";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import { captureSql } from "../_test/harness.ts";

interface DB {
  t: { id: number; a: number; b: number };
}

const ROWS = 100_000;
const LIMIT = 20;
const DEPTH = Math.floor(ROWS * 0.9);
const POSTGRES_URL = Deno.env.get("KYSERA_TEST_POSTGRES_URL") ?? "postgres://postgres@127.0.0.1:5432/test";

const ONE: CursorOrderBy<DB, "t">[] = [{ column: "a", direction: "desc", type: "number" }];
const MIXED: CursorOrderBy<DB, "t">[] = [
  { column: "a", direction: "asc", type: "number" },
  { column: "b", direction: "desc", type: "number" },
];

function sqliteDb(): Kysely<DB> {
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

async function postgresDb(): Promise<Kysely<DB> | undefined> {
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

/** The cursor of the row at 0-based position `DEPTH - 1` in `orderBy`, by walking from the end once. */
async function cursorAt(db: Kysely<DB>, orderBy: CursorOrderBy<DB, "t">[]): Promise<string> {
  const tail = await paginateCursor(db.selectFrom("t").selectAll(), {
    db,
    orderBy,
    limit: ROWS - DEPTH + 1,
    fromEnd: true,
  });
  return tail.prevCursor!;
}

async function rowAt(db: Kysely<DB>, order: "one" | "mixed") {
  const q = db.selectFrom("t").selectAll();
  const ordered = order === "one"
    ? q.orderBy("a", "desc").orderBy("id", "desc")
    : q.orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc");
  return await ordered.offset(DEPTH - 1).limit(1).executeTakeFirstOrThrow();
}

async function register(name: string, db: Kysely<DB>, rowValueMixed: boolean) {
  const query = db.selectFrom("t").selectAll();
  const oneToken = await cursorAt(db, ONE);
  const mixedToken = await cursorAt(db, MIXED);
  const one = await rowAt(db, "one");
  const mixed = await rowAt(db, "mixed");

  const handOnePage1 = sql`select * from t order by a desc, id desc limit ${LIMIT + 1}`;
  const handOneDeep = sql`select * from t where (a, id) < (${one.a}, ${one.id})
    order by a desc, id desc limit ${LIMIT + 1}`;
  const handMixedPage1 = sql`select * from t order by a asc, b desc, id desc limit ${LIMIT + 1}`;
  const handMixedDeep = rowValueMixed
    ? sql`select * from t where a >= ${mixed.a} and (a > ${mixed.a} or (b, id) < (${mixed.b}, ${mixed.id}))
      order by a asc, b desc, id desc limit ${LIMIT + 1}`
    : sql`select * from t where a >= ${mixed.a} and (a > ${mixed.a} or (b <= ${mixed.b} and (b < ${mixed.b} or id < ${mixed.id})))
      order by a asc, b desc, id desc limit ${LIMIT + 1}`;

  // The same pages built with Kysely's query builder on every call, as an
  // application writes them by hand: what paginateCursor competes with once
  // the query is built in Kysely at all.
  const kysely = {
    onePage1: () => query.orderBy("a", "desc").orderBy("id", "desc").limit(LIMIT + 1),
    oneDeep: () =>
      query.where((eb) => eb(eb.refTuple("a", "id"), "<", eb.tuple(one.a, one.id)))
        .orderBy("a", "desc").orderBy("id", "desc").limit(LIMIT + 1),
    mixedPage1: () => query.orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc").limit(LIMIT + 1),
    mixedDeep: () =>
      query.where((eb) =>
        eb.and([
          eb("a", ">=", mixed.a),
          eb.or([
            eb("a", ">", mixed.a),
            rowValueMixed
              ? eb(eb.refTuple("b", "id"), "<", eb.tuple(mixed.b, mixed.id))
              : eb.and([eb("b", "<=", mixed.b), eb.or([eb("b", "<", mixed.b), eb("id", "<", mixed.id)])]),
          ]),
        ])
      ).orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc").limit(LIMIT + 1),
  };
  // paginateCursor must send exactly the hand-written SQL: check once.
  for (
    const [orderBy, after, build] of [
      [ONE, undefined, kysely.onePage1],
      [ONE, oneToken, kysely.oneDeep],
      [MIXED, undefined, kysely.mixedPage1],
      [MIXED, mixedToken, kysely.mixedDeep],
    ] as const
  ) {
    const capture = captureSql(db);
    await paginateCursor(capture.db.selectFrom("t").selectAll(), {
      db,
      orderBy,
      limit: LIMIT,
      ...(after ? { after } : {}),
    });
    const sent = capture.last();
    const expected = build().compile();
    if (sent.sql !== expected.sql || JSON.stringify(sent.parameters) !== JSON.stringify(expected.parameters)) {
      throw new Error(
        `${name}: paginateCursor sent ${sent.sql} ${JSON.stringify(sent.parameters)}, expected ${expected.sql} ${
          JSON.stringify(expected.parameters)
        }`,
      );
    }
  }
  for (
    const [group, build] of [
      ["1-col page 1", kysely.onePage1],
      ["1-col 90%", kysely.oneDeep],
      ["2-col page 1", kysely.mixedPage1],
      ["2-col 90%", kysely.mixedDeep],
    ] as const
  ) {
    Deno.bench({
      name: `${name} ${group}: hand-written Kysely`,
      group: `${name} ${group}`,
      fn: async () => {
        await build().execute();
      },
    });
  }

  Deno.bench({
    name: `${name} 1-col page 1: hand-written`,
    group: `${name} 1-col page 1`,
    baseline: true,
    fn: async () => {
      await handOnePage1.execute(db);
    },
  });
  Deno.bench({
    name: `${name} 1-col page 1: paginateCursor`,
    group: `${name} 1-col page 1`,
    fn: async () => {
      await paginateCursor(query, { db, orderBy: ONE, limit: LIMIT });
    },
  });
  Deno.bench({
    name: `${name} 1-col 90%: hand-written row-value`,
    group: `${name} 1-col 90%`,
    baseline: true,
    fn: async () => {
      await handOneDeep.execute(db);
    },
  });
  Deno.bench({
    name: `${name} 1-col 90%: paginateCursor`,
    group: `${name} 1-col 90%`,
    fn: async () => {
      await paginateCursor(query, { db, orderBy: ONE, limit: LIMIT, after: oneToken });
    },
  });
  Deno.bench({
    name: `${name} 1-col 90%: OFFSET`,
    group: `${name} 1-col 90%`,
    fn: async () => {
      await query.orderBy("a", "desc").orderBy("id", "desc").limit(LIMIT + 1).offset(DEPTH).execute();
    },
  });
  Deno.bench({
    name: `${name} 2-col mixed page 1: hand-written`,
    group: `${name} 2-col page 1`,
    baseline: true,
    fn: async () => {
      await handMixedPage1.execute(db);
    },
  });
  Deno.bench({
    name: `${name} 2-col mixed page 1: paginateCursor`,
    group: `${name} 2-col page 1`,
    fn: async () => {
      await paginateCursor(query, { db, orderBy: MIXED, limit: LIMIT });
    },
  });
  Deno.bench({
    name: `${name} 2-col mixed 90%: hand-written keyset`,
    group: `${name} 2-col 90%`,
    baseline: true,
    fn: async () => {
      await handMixedDeep.execute(db);
    },
  });
  Deno.bench({
    name: `${name} 2-col mixed 90%: paginateCursor`,
    group: `${name} 2-col 90%`,
    fn: async () => {
      await paginateCursor(query, { db, orderBy: MIXED, limit: LIMIT, after: mixedToken });
    },
  });
  Deno.bench({
    name: `${name} 2-col mixed 90%: OFFSET`,
    group: `${name} 2-col 90%`,
    fn: async () => {
      await query.orderBy("a", "asc").orderBy("b", "desc").orderBy("id", "desc").limit(LIMIT + 1).offset(DEPTH)
        .execute();
    },
  });
}

if (!Deno.env.get("CODEC_ONLY")) await register("sqlite", sqliteDb(), true);
const postgres = Deno.env.get("CODEC_ONLY") ? undefined : await postgresDb();
if (postgres !== undefined) await register("postgres", postgres, true);

// Codec.
const SECRET = "bench-secret-of-at-least-thirty-two-bytes";
const one = [{ name: "id", type: "number" as const, nullable: false }];
const three = [
  { name: "created_at", type: "date" as const, nullable: false },
  { name: "title", type: "string" as const, nullable: true },
  { name: "id", type: "number" as const, nullable: false },
];
const threeValues = [new Date("2024-01-02T03:04:05.678Z"), "hello world", 123456];
for (const [label, columns, values] of [["1-col", one, [123456]], ["3-col", three, threeValues]] as const) {
  const unsigned = createCursorCodec({ columns, context: "bench" });
  const signed = createCursorCodec({ columns, context: "bench", secret: SECRET });
  const token = unsigned.encodeSync(values);
  const signedToken = await signed.encode(values);
  const json = JSON.stringify(values);
  Deno.bench({
    name: `decode ${label}: JSON.parse baseline`,
    group: `decode ${label}`,
    baseline: true,
    fn: () => {
      JSON.parse(json);
    },
  });
  Deno.bench({
    name: `decode ${label}: unsigned`,
    group: `decode ${label}`,
    fn: () => {
      unsigned.decodeSync(token);
    },
  });
  Deno.bench({
    name: `decode ${label}: signed`,
    group: `decode ${label}`,
    fn: async () => {
      await signed.decode(signedToken);
    },
  });
  Deno.bench({
    name: `encode ${label}: JSON.stringify baseline`,
    group: `encode ${label}`,
    baseline: true,
    fn: () => {
      JSON.stringify(values);
    },
  });
  Deno.bench({
    name: `encode ${label}: unsigned`,
    group: `encode ${label}`,
    fn: () => {
      unsigned.encodeSync(values);
    },
  });
  Deno.bench({
    name: `encode ${label}: signed`,
    group: `encode ${label}`,
    fn: async () => {
      await signed.encode(values);
    },
  });
}
