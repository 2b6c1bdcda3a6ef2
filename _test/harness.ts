/**
 * The shared database test harness (private; not published).
 *
 * A test file declares its tables once with {@linkcode dbSuite} and each
 * `suite.test(...)` runs on every test database: SQLite (`node:sqlite`
 * through Kysera's adapter), PostgreSQL (`npm:pg`) and MariaDB/MySQL
 * (`npm:mysql2`). Every test gets its own isolated schema (PostgreSQL),
 * database (MariaDB) or database file (SQLite), named after the test file and
 * the process, so test files can run in parallel. Test names carry the
 * database: `parseDatabaseError() maps ... [postgres]`.
 *
 * Connection settings come from the environment, defaulting to the local
 * services:
 * - `KYSERA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
 * - `KYSERA_TEST_MARIADB_URL` (default `mysql://root@127.0.0.1:3306/test`)
 * - `KYSERA_TEST_DATABASES` (default `sqlite,postgres,mariadb`): a developer
 *   without a server may narrow it; the harness then says loudly what it left
 *   out. CI never sets it. An unreachable server fails the tests.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  type Compilable,
  type CompiledQuery,
  type ControlledTransaction,
  type CreateTableBuilder,
  type DatabaseConnection,
  Kysely,
  MysqlDialect,
  PostgresDialect,
  type QueryResult,
  sql,
  SqliteDialect,
} from "kysely";
import pg from "pg";
import Cursor from "pg-cursor";
import { createPool } from "mysql2";
import mysqlPromise from "mysql2/promise";
import type { DialectName } from "../core/mod.ts";
import { guardPostgresPool, wrapSyncSqlite } from "../dialects/mod.ts";

/** A database server the tests run on. */
export type TestDatabase = "sqlite" | "postgres" | "mariadb";

/** Every test database, in the order tests run. */
export const ALL_DATABASES: readonly TestDatabase[] = ["sqlite", "postgres", "mariadb"];

const DIALECT_OF: Record<TestDatabase, DialectName> = {
  sqlite: "sqlite",
  postgres: "postgres",
  mariadb: "mysql",
};

/** The databases this run covers (all, unless `KYSERA_TEST_DATABASES` narrows it). */
export const TEST_DATABASES: readonly TestDatabase[] = (() => {
  const raw = Deno.env.get("KYSERA_TEST_DATABASES");
  if (raw === undefined || raw.trim() === "") return ALL_DATABASES;
  const chosen = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of chosen) {
    if (!ALL_DATABASES.includes(name as TestDatabase)) {
      throw new RangeError(
        `Cannot read KYSERA_TEST_DATABASES: each entry must be one of ${
          ALL_DATABASES.join(", ")
        }: current value is ${name}`,
      );
    }
  }
  const left = ALL_DATABASES.filter((d) => !chosen.includes(d));
  if (left.length > 0) {
    console.warn(`\n!!! KYSERA_TEST_DATABASES leaves out ${left.join(", ")}: those databases are NOT tested\n`);
  }
  return ALL_DATABASES.filter((d) => chosen.includes(d));
})();

/** Connection settings of the PostgreSQL test server. */
export const POSTGRES_URL: string = Deno.env.get("KYSERA_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
/** Connection settings of the MariaDB/MySQL test server. */
export const MARIADB_URL: string = Deno.env.get("KYSERA_TEST_MARIADB_URL") ??
  "mysql://root@127.0.0.1:3306/test";

// deno-lint-ignore no-explicit-any
export type AnyDB = any;

/** What a database test receives. */
export interface DbTestContext<DB> {
  /** A Kysely instance on this test's isolated schema/database. */
  readonly db: Kysely<DB>;
  /** The database server. */
  readonly database: TestDatabase;
  /** The Kysely dialect (`"mysql"` for MariaDB). */
  readonly dialect: DialectName;
  /**
   * Opens another, independent Kysely instance (its own connections) on the
   * same isolated schema/database, for tests of concurrent transactions. The
   * harness destroys it after the test.
   */
  connect(): Kysely<DB>;
}

/** Options of a database test. */
export interface DbTestOptions {
  /**
   * The databases this test runs on, when it cannot run on all (an error
   * that one database cannot raise, say). Say why in the test name or a
   * comment; the default is every database.
   */
  databases?: readonly TestDatabase[];
}

/** A declared suite: its tables, and the tests that run on every database. */
export interface DbSuite<DB> {
  /** Declares a test that runs once per database. */
  test(name: string, fn: (ctx: DbTestContext<DB>) => Promise<void>, options?: DbTestOptions): void;
}

/** Options of {@linkcode dbSuite}. */
export interface DbSuiteOptions {
  /**
   * Creates the suite's tables on a fresh schema/database before each test.
   * Use {@linkcode addIdColumn} for an auto-increment primary key.
   */
  tables?: (db: Kysely<AnyDB>, database: TestDatabase) => Promise<void>;
}

/**
 * Declares a suite of database tests for one test file.
 *
 * @param meta The test file's `import.meta` (names its isolated schemas).
 * @param options The tables the tests need.
 */
export function dbSuite<DB>(meta: ImportMeta, options: DbSuiteOptions = {}): DbSuite<DB> {
  const slug = new URL(meta.url).pathname.split("/").slice(-2).join("_")
    .replace(/\.ts$/, "").replace(/[^a-z0-9_]/gi, "_").toLowerCase();
  const isolation = `k_${slug}_${Deno.pid}`.slice(0, 60);
  return {
    test(name, fn, testOptions = {}) {
      const databases = testOptions.databases ?? ALL_DATABASES;
      for (const database of TEST_DATABASES) {
        if (!databases.includes(database)) continue;
        Deno.test(`${name} [${database}]`, async () => {
          await runIsolated<DB>(database, isolation, options.tables, fn);
        });
      }
    },
  };
}

async function runIsolated<DB>(
  database: TestDatabase,
  name: string,
  tables: DbSuiteOptions["tables"],
  fn: (ctx: DbTestContext<DB>) => Promise<void>,
): Promise<void> {
  const isolated = await openIsolated(database, name);
  const extra: Kysely<DB>[] = [];
  const db = isolated.open() as Kysely<DB>;
  try {
    if (tables) await tables(db as Kysely<AnyDB>, database);
    await fn({
      db,
      database,
      dialect: DIALECT_OF[database],
      connect() {
        const another = isolated.open() as Kysely<DB>;
        extra.push(another);
        return another;
      },
    });
  } finally {
    // A test that fails with a transaction open leaves a connection checked
    // out, and destroying its pool would wait forever: bound the wait.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const release = Promise.all([...extra, db].map((k) => k.destroy()));
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`The test left a connection in use on ${database} (a transaction still open?)`)),
        10_000,
      );
    });
    try {
      await Promise.race([release, stuck]);
    } finally {
      clearTimeout(timer);
    }
    await isolated.drop();
  }
}

/**
 * Runs `check` in a controlled transaction of `db` (`startTransaction()`)
 * and again in a savepoint of it, then commits; rolls back if `check` fails.
 * For tests that a guarantee holds on Kysely's controlled-transaction path.
 */
export async function inTransactionAndSavepoint<DB>(
  db: Kysely<DB>,
  check: (db: Kysely<DB>) => Promise<void>,
): Promise<void> {
  const trx = await db.startTransaction().execute();
  try {
    await check(trx);
    const sp = await trx.savepoint("inner").execute();
    await check(sp);
    await sp.releaseSavepoint("inner").execute();
    await trx.commit().execute();
  } finally {
    await rollbackOpen(trx as ControlledTransaction<AnyDB>);
  }
}

/**
 * Rolls back every controlled transaction that is still open; for the
 * `finally` of tests that interleave transactions.
 */
export async function rollbackOpen(...transactions: ControlledTransaction<AnyDB>[]): Promise<void> {
  for (const trx of transactions) {
    if (!trx.isCommitted && !trx.isRolledBack) await trx.rollback().execute().catch(() => {});
  }
}

interface Isolated {
  open(): Kysely<AnyDB>;
  drop(): Promise<void>;
}

async function openIsolated(database: TestDatabase, name: string): Promise<Isolated> {
  switch (database) {
    case "sqlite": {
      const dir = await Deno.makeTempDir({ prefix: name });
      const file = `${dir}/test.db`;
      return {
        open: () => {
          const handle = new DatabaseSync(file);
          handle.exec("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000");
          return new Kysely({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
        },
        drop: () => Deno.remove(dir, { recursive: true }),
      };
    }
    case "postgres": {
      const admin = async (statement: string) => {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        try {
          await client.connect();
        } catch (error) {
          throw new Error(`PostgreSQL is unreachable at ${POSTGRES_URL} (set KYSERA_TEST_POSTGRES_URL)`, {
            cause: error,
          });
        }
        try {
          await client.query(statement);
        } finally {
          await client.end();
        }
      };
      await admin(`DROP SCHEMA IF EXISTS "${name}" CASCADE; CREATE SCHEMA "${name}"`);
      return {
        open: () =>
          new Kysely({
            dialect: new PostgresDialect({
              pool: guardPostgresPool(
                new pg.Pool({ connectionString: POSTGRES_URL, options: `-c search_path=${name}`, max: 4 }),
              ),
              cursor: Cursor,
            }),
          }),
        drop: () => admin(`DROP SCHEMA IF EXISTS "${name}" CASCADE`),
      };
    }
    case "mariadb": {
      const url = new URL(MARIADB_URL);
      const settings = {
        host: url.hostname,
        port: Number(url.port || 3306),
        user: decodeURIComponent(url.username || "root"),
        password: decodeURIComponent(url.password),
      };
      const admin = async (statements: string[]) => {
        let connection: mysqlPromise.Connection;
        try {
          connection = await mysqlPromise.createConnection(settings);
        } catch (error) {
          throw new Error(`MariaDB is unreachable at ${MARIADB_URL} (set KYSERA_TEST_MARIADB_URL)`, {
            cause: error,
          });
        }
        try {
          for (const statement of statements) await connection.query(statement);
        } finally {
          await connection.end();
        }
      };
      await admin([`DROP DATABASE IF EXISTS \`${name}\``, `CREATE DATABASE \`${name}\``]);
      return {
        open: () =>
          new Kysely({
            dialect: new MysqlDialect({
              pool: createPool({ ...settings, database: name, connectionLimit: 4 }),
            }),
          }),
        drop: () => admin([`DROP DATABASE IF EXISTS \`${name}\``]),
      };
    }
  }
}

/**
 * Adds an auto-increment integer primary key `id` in each database's idiom
 * (`serial` on PostgreSQL, `integer ... auto_increment` on MariaDB,
 * `integer primary key autoincrement` on SQLite).
 */
export function addIdColumn<TB extends string, C extends string>(
  table: CreateTableBuilder<TB, C>,
  database: TestDatabase,
  column = "id",
): CreateTableBuilder<TB, C | string> {
  return database === "postgres"
    ? table.addColumn(column, "serial", (c) => c.primaryKey())
    : table.addColumn(column, "integer", (c) => c.primaryKey().autoIncrement());
}

/** The SQL and parameters a query must compile to, per dialect. */
export type ExpectedSql = Partial<Record<DialectName, { sql: string; parameters: readonly unknown[] }>>;

/**
 * Asserts the SQL a query compiles to on this test's dialect. Whitespace
 * runs are collapsed on both sides. A dialect missing from `expected` fails.
 */
export function assertSql(
  ctx: Pick<DbTestContext<unknown>, "dialect">,
  query: Compilable,
  expected: ExpectedSql,
): void {
  const want = expected[ctx.dialect];
  if (want === undefined) throw new Error(`assertSql: no expected SQL for dialect ${ctx.dialect}`);
  const compiled = query.compile();
  assert.equal(squash(compiled.sql), squash(want.sql));
  assert.deepEqual(compiled.parameters, want.parameters);
}

function squash(sql: string): string {
  return sql.replace(/\s+/g, " ").trim();
}

/**
 * Copies rows into plain objects (node:sqlite returns null-prototype rows),
 * so they compare with `assert.deepEqual` against object literals.
 */
export function plainRows<R extends object>(rows: readonly R[]): R[] {
  return rows.map((row) => ({ ...row }));
}

/** Asserts that `promise` rejects, and returns what it rejected with. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new assert.AssertionError({ message: "Expected the promise to reject, but it resolved" });
}

/**
 * Records the SQL of every statement sent on `db`'s connections until
 * `stop()`, plugins' own statements included (what `captureSql` cannot see:
 * it records the queries of one Kysely view only).
 */
export async function recordStatements<DB>(db: Kysely<DB>): Promise<{ sql: string[]; stop(): void }> {
  const proto = await db.getExecutor().provideConnection((c) => Promise.resolve(Object.getPrototypeOf(c)));
  const original = proto.executeQuery as DatabaseConnection["executeQuery"];
  const sent: string[] = [];
  proto.executeQuery = function (this: DatabaseConnection, query: CompiledQuery): Promise<QueryResult<unknown>> {
    sent.push(query.sql.replace(/\s+/g, " ").trim());
    return original.call(this, query);
  };
  return { sql: sent, stop: () => void (proto.executeQuery = original) };
}

/**
 * A view of `db` that records the compiled form of every query it sends
 * (after every transform), for tests and benches that must see the SQL a
 * function built internally.
 */
export function captureSql<DB>(db: Kysely<DB>): { db: Kysely<DB>; last(): CompiledQuery } {
  let sent: CompiledQuery | undefined;
  const capturing = db.withPlugin({
    transformQuery: (args) => {
      sent = db.getExecutor().compileQuery(args.node, args.queryId);
      return args.node;
    },
    transformResult: (args) => Promise.resolve(args.result),
  });
  return {
    db: capturing,
    last() {
      if (sent === undefined) throw new Error("captureSql: no query was sent");
      return sent;
    },
  };
}

/** What {@linkcode connectAsRole} returns. */
export interface RoleConnection<DB> {
  /** A Kysely connected as the role, on the test's schema (PostgreSQL) or database (MariaDB). */
  readonly app: Kysely<DB>;
  /** The role's (user's) name. */
  readonly role: string;
  /** Destroys `app` and drops the role with what it owns. */
  drop(): Promise<void>;
}

/**
 * Creates a throwaway login role (PostgreSQL: no superuser, no BYPASSRLS,
 * owning nothing) or user (MariaDB), runs `grants(role, schema)` as the
 * test's own connection, and connects as it to the test's schema/database,
 * for tests of what the database enforces on an application's role (native
 * RLS, append-only grants).
 *
 * @param db The test's Kysely (the owner's connection).
 * @param database `postgres` or `mariadb`.
 * @param grants The GRANT statements, given the role and the schema (PostgreSQL) or database (MariaDB) name.
 * @param options `max` pooled connections (default 1); each statement's SQL pushed to `log`.
 */
export async function connectAsRole<DB>(
  db: Kysely<DB>,
  database: TestDatabase,
  grants: (role: string, schema: string) => readonly string[],
  options: { max?: number; log?: string[] } = {},
): Promise<RoleConnection<DB>> {
  const role = `kysera_role_${Deno.pid}_${Math.floor(Math.random() * 1e6)}`;
  const { max = 1, log } = options;
  const logged = log === undefined ? {} : { log: (event: { query: CompiledQuery }) => void log.push(event.query.sql) };
  const run = async (statements: readonly string[]) => {
    for (const statement of statements) await sql.raw(statement).execute(db);
  };
  const connected = (app: Kysely<DB>, dropStatements: readonly string[]): RoleConnection<DB> => ({
    app,
    role,
    drop: async () => {
      await app.destroy();
      await run(dropStatements);
    },
  });
  if (database === "postgres") {
    const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]!.s;
    await run([`create role ${role} login nosuperuser nobypassrls`, `grant usage on schema "${schema}" to ${role}`]);
    await run(grants(role, schema));
    const url = new URL(POSTGRES_URL);
    url.username = role;
    url.password = "";
    const app = new Kysely<DB>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: url.href, options: `-c search_path=${schema}`, max }),
        cursor: Cursor,
      }),
      ...logged,
    });
    return connected(app, [`drop owned by ${role}`, `drop role ${role}`]);
  }
  if (database !== "mariadb") throw new TypeError(`Cannot create a role on ${database}`);
  const name = (await sql<{ d: string }>`select database() as d`.execute(db)).rows[0]!.d;
  await run([`create user '${role}'@'%'`]);
  await run(grants(`'${role}'@'%'`, name));
  const url = new URL(MARIADB_URL);
  const app = new Kysely<DB>({
    dialect: new MysqlDialect({
      pool: createPool({
        host: url.hostname,
        port: Number(url.port || 3306),
        user: role,
        database: name,
        connectionLimit: max,
      }),
    }),
    ...logged,
  });
  return connected(app, [`drop user '${role}'@'%'`]);
}
