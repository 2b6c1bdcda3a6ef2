import { type Expression, type Kysely, sql } from "kysely";
import { type DialectName, getDialect, NotFoundError } from "../../core/mod.ts";
import {
  type AnyKysely,
  type KyseraPlugin,
  PluginContext,
  tableCoverage,
  type WriteChange,
  type WriteInfo,
} from "../../executor/mod.ts";
import type { RepositoryHandle } from "../../repository/mod.ts";
import { verifyTables } from "../_schema_check.ts";

/**
 * How a timestamp is written:
 *
 * - `"date"`: a `Date` (PostgreSQL `timestamptz`/`timestamp`, MariaDB
 *   `DATETIME(3)`/`TIMESTAMP(3)`). SQLite has no date type and `node:sqlite`
 *   cannot bind a `Date`, so on SQLite `"date"` writes what `"iso"` writes.
 * - `"iso"`: an ISO 8601 UTC string, `2024-05-01T12:00:00.000Z` (text columns).
 * - `"unix"`: whole seconds since the epoch (integer columns).
 * - `"unix-ms"`: milliseconds since the epoch (`bigint` columns).
 * - `"auto"`: `"iso"` on SQLite, `"date"` everywhere else.
 *
 * @example Epoch milliseconds in a bigint column
 * ```ts
 * import assert from "node:assert/strict";
 * import { timestampsPlugin, type TimestampFormat } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * const format: TimestampFormat = "unix-ms";
 * const plugin = timestampsPlugin({ tables: ["events"], format });
 * assert.equal(plugin.toStored(new Date(1_000), "postgres"), 1000);
 * ```
 */
export type TimestampFormat = "auto" | "date" | "iso" | "unix" | "unix-ms";

/**
 * Where the time comes from: `"app"` (`new Date()` in the application),
 * `"database"` (the database's current-timestamp expression, so every
 * writer shares one clock), or a function returning the current `Date`
 * (an injected clock, for tests).
 *
 * @example An injected clock
 * ```ts
 * import assert from "node:assert/strict";
 * import { type TimestampClock, timestampsPlugin } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * const clock: TimestampClock = () => new Date("2024-05-01T12:00:00.000Z");
 * assert.ok(timestampsPlugin({ tables: ["posts"], clock }).options.clock === clock);
 * ```
 */
export type TimestampClock = "app" | "database" | (() => Date);

/**
 * Options of {@linkcode timestampsPlugin}.
 *
 * @example Custom columns on some tables
 * ```ts
 * import assert from "node:assert/strict";
 * import { timestampsPlugin, type TimestampsOptions } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * const options: TimestampsOptions = { createdAt: "inserted", updatedAt: "modified", tables: ["posts"] };
 * const plugin = timestampsPlugin(options);
 * assert.equal(plugin.covers("posts"), true);
 * assert.equal(plugin.covers("users"), false);
 * ```
 */
export interface TimestampsOptions<T extends string = string> {
  /** The creation column, or `false` for none. @default {"created_at"} */
  readonly createdAt?: string | false;
  /** The last-update column, or `false` for none. @default {"updated_at"} */
  readonly updatedAt?: string | false;
  /**
   * The tables that get timestamps (required): each must have the columns.
   * `"all"` covers every table not in `excludeTables`, so every such table
   * must have them. `createExecutor` checks once that each listed table
   * exists and that each covered table has the columns, and throws
   * `PluginSchemaError` otherwise (`createExecutorSync` cannot look).
   */
  readonly tables: readonly T[] | "all";
  /** These tables never get timestamps (wins over `tables`; matched in any case where the database does, see `tableCoverage`). @default {[]} */
  readonly excludeTables?: readonly string[];
  /** Where the time comes from. @default {"app"} */
  readonly clock?: TimestampClock;
  /** How the time is written. @default {"auto"} */
  readonly format?: TimestampFormat;
}

/**
 * The per-call value of {@linkcode TimestampsPlugin.context}.
 *
 * @example Reading the opt-out
 * ```ts
 * import assert from "node:assert/strict";
 * import { timestampsPlugin } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * const plugin = timestampsPlugin({ tables: ["posts"] });
 * assert.ok(plugin.withoutTimestamps(() => plugin.context.get()?.skip));
 * ```
 */
export interface TimestampsContext {
  /** Leave timestamps alone for every write of the call. */
  readonly skip: boolean;
}

/**
 * The methods {@linkcode timestampsPlugin} adds to every repository (the
 * config form of `createRepository`, or a factory's object with
 * `tableName`, `executor`, `find` and `create`). The `this` types let a
 * method's argument and result take the repository's own types.
 *
 * @example The methods on a repository
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createORM } from "@kysera/kysera/repository"; // npm: "kysera/repository"
 * import { timestampsPlugin } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * interface DB { tags: { id: number; name: string; created_at: string | null; updated_at: string | null } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("tags").addColumn("id", "integer", (c) => c.primaryKey()).addColumn("name", "text")
 *   .addColumn("created_at", "text").addColumn("updated_at", "text").execute();
 * const tags = createORM(db, [timestampsPlugin<DB>({ tables: ["tags"], clock: () => new Date("2024-05-01T00:00:00.000Z") })])
 *   .createRepository({ tableName: "tags", primaryKey: "id" });
 * await tags.create({ id: 1, name: "a" });
 * const raw = await tags.createWithoutTimestamps({ id: 2, name: "b" });
 * await tags.touch(1);
 * assert.equal(raw.created_at, null);
 * assert.deepEqual((await tags.findCreatedBetween(new Date(0), new Date())).map((t) => t.name), ["a"]);
 * await db.destroy();
 * ```
 */
export interface TimestampsRepositoryMethods<T extends string = string> {
  /**
   * Sets the update column of the row with this key to now, changing
   * nothing else.
   *
   * @throws {NotFoundError} When no row has the key.
   */
  touch<K>(this: { readonly tableName: T; findById(id: K): Promise<unknown> }, id: K): Promise<void>;
  /** The rows created between `from` and `to` (both inclusive), oldest first. */
  findCreatedBetween<O>(
    this: { readonly tableName: T; find(options?: never): Promise<O[]> },
    from: Date,
    to: Date,
  ): Promise<O[]>;
  /** The rows updated at or after `since`, oldest update first. */
  findUpdatedSince<O>(this: { readonly tableName: T; find(options?: never): Promise<O[]> }, since: Date): Promise<O[]>;
  /**
   * `create(input)` with the plugin switched off for the call: the row gets
   * the timestamps the input carries (if the create schema keeps them) or
   * the columns' defaults.
   */
  createWithoutTimestamps<I, O>(this: { create(input: I): Promise<O> }, input: I): Promise<O>;
}

/**
 * The plugin {@linkcode timestampsPlugin} returns.
 *
 * @example Switching the plugin off for one call
 * ```ts
 * import assert from "node:assert/strict";
 * import { timestampsPlugin, type TimestampsPlugin } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * const plugin: TimestampsPlugin = timestampsPlugin({ tables: ["t"] });
 * const change = plugin.withoutTimestamps(() =>
 *   plugin.onWrite({
 *     operation: "update", table: "t", schema: undefined, kind: "set", columns: [], rows: [{}],
 *     context: plugin.context.get(), dialect: "postgres",
 *   })
 * );
 * assert.equal(plugin.name, "timestamps");
 * assert.equal(change, undefined);
 * ```
 */
export interface TimestampsPlugin<T extends string = string> extends KyseraPlugin<TimestampsContext> {
  /** `"timestamps"`. */
  readonly name: string;
  /** The per-call opt-out (see {@linkcode TimestampsPlugin.withoutTimestamps}). */
  readonly context: PluginContext<TimestampsContext>;
  /** The resolved options. */
  readonly options: Readonly<{
    createdAt: string | false;
    updatedAt: string | false;
    clock: TimestampClock;
    format: TimestampFormat;
  }>;
  /** Whether `table` gets timestamps (on `dialect`, when known; see `tableCoverage`). */
  covers(table: string, dialect?: DialectName): boolean;
  /** The value the plugin writes for `date` on `dialect` (app clock's form). */
  toStored(date: Date, dialect: DialectName | undefined): unknown;
  /** Runs `fn` with the plugin switched off for every write it makes. */
  withoutTimestamps<R>(fn: () => R): R;
  /** Sets the timestamp columns on each INSERT/UPDATE. */
  onWrite(write: WriteInfo<TimestampsContext>): WriteChange | undefined;
  /** Adds {@linkcode TimestampsRepositoryMethods}. */
  /** Checks, at `createExecutor`, that the listed tables exist and every covered table has the columns. */
  verifySchema(executor: AnyKysely): Promise<void>;
  /** Adds {@linkcode TimestampsRepositoryMethods}. */
  extendRepository(repository: object): TimestampsRepositoryMethods<T>;
}

type Resolved = Exclude<TimestampFormat, "auto">;

function resolveFormat(format: TimestampFormat, dialect: DialectName | undefined): Resolved {
  if (format === "auto" || format === "date") return dialect === "sqlite" ? "iso" : "date";
  return format;
}

function appValue(date: Date, format: Resolved): unknown {
  switch (format) {
    case "date":
      return date;
    case "iso":
      return date.toISOString();
    case "unix":
      return Math.floor(date.getTime() / 1000);
    case "unix-ms":
      return date.getTime();
  }
}

const DATABASE_NOW: Record<DialectName, Record<Resolved, Expression<unknown>>> = {
  postgres: {
    date: sql`current_timestamp`,
    iso: sql`to_char(current_timestamp at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
    unix: sql`floor(extract(epoch from current_timestamp))::bigint`,
    "unix-ms": sql`floor(extract(epoch from current_timestamp) * 1000)::bigint`,
  },
  mysql: {
    date: sql`current_timestamp(6)`,
    iso: sql`concat(substring(date_format(utc_timestamp(3), '%Y-%m-%dT%H:%i:%s.%f'), 1, 23), 'Z')`,
    unix: sql`unix_timestamp()`,
    "unix-ms": sql`floor(unix_timestamp(current_timestamp(3)) * 1000)`,
  },
  sqlite: {
    date: sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
    iso: sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
    unix: sql`cast(strftime('%s', 'now') as integer)`,
    "unix-ms": sql`cast(round((julianday('now') - 2440587.5) * 86400000) as integer)`,
  },
  mssql: {
    date: sql`sysutcdatetime()`,
    iso: sql`convert(varchar(23), sysutcdatetime(), 126) + 'Z'`,
    unix: sql`datediff_big(second, '1970-01-01', sysutcdatetime())`,
    "unix-ms": sql`datediff_big(millisecond, '1970-01-01', sysutcdatetime())`,
  },
};

interface RepositoryShape extends Partial<Pick<RepositoryHandle, "keyOf">> {
  readonly tableName?: unknown;
  readonly primaryKey?: unknown;
  readonly executor?: unknown;
  find?(options: unknown): Promise<unknown[]>;
  create?(input: unknown): Promise<unknown>;
}

/**
 * Creates the timestamps plugin: every INSERT through the executor
 * (single row, multi-row, `insert ... select`, the insert path of an upsert,
 * MySQL `replace`) sets the creation and update columns, and every UPDATE
 * (`updateTable`, the repository's `update`/`updateMany`, the update path of
 * `onConflict(... doUpdateSet)` / `onDuplicateKeyUpdate`) sets the update
 * column, through the repository, the DAL and plain builders, in and out of
 * transactions. Values are set on the query tree when the query runs, after
 * input validation, so a schema that does not declare the columns cannot
 * strip them.
 *
 * A value the caller wrote wins: a row (or SET) that names a timestamp
 * column (even as `null`) keeps it; in a multi-row insert only the rows that
 * leave it out get the plugin's value. All rows of one statement share one
 * timestamp. `plugin.withoutTimestamps(fn)` switches the plugin off for one
 * call.
 *
 * Formats (see {@linkcode TimestampFormat}), with the default `"auto"`:
 * PostgreSQL and MariaDB get a `Date` (app clock) or `current_timestamp`
 * (`current_timestamp(6)` on MariaDB); SQLite gets an ISO string
 * (`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` with the database clock).
 *
 * @param options Columns, covered tables, clock and format.
 * @returns The plugin, for `createExecutor`/`createORM`.
 * `tables` is required: a default that covered every table would break
 * every table without the columns. `timestampsPlugin<DB>({ tables: [...] })`
 * checks the names against the database type as you type them; without
 * `<DB>` they are inferred, and the added repository methods then compile
 * only on repositories of those tables.
 *
 * @typeParam DB The database type, to check `tables` against its table names.
 * @typeParam T The covered tables' names (inferred from `tables`).
 * @throws {TypeError} When `tables` is missing or empty, both columns are `false`, or a column is empty.
 *
 * @example Timestamps on a builder insert and update
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { timestampsPlugin } from "@kysera/kysera/timestamps"; // npm: "kysera/timestamps"
 *
 * interface DB { notes: { id: number; body: string; created_at: string | null; updated_at: string | null } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("notes").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("body", "text").addColumn("created_at", "text").addColumn("updated_at", "text").execute();
 *
 * let now = new Date("2024-05-01T12:00:00.000Z");
 * const executor = createExecutorSync(db, [timestampsPlugin<DB>({ tables: ["notes"], clock: () => now })]);
 * const insert = executor.insertInto("notes").values({ id: 1, body: "hi" });
 * assert.equal(insert.compile().sql, 'insert into "notes" ("id", "body", "created_at", "updated_at") values (?, ?, ?, ?)');
 * await insert.execute();
 * now = new Date("2024-05-02T08:00:00.000Z");
 * await executor.updateTable("notes").set({ body: "hello" }).where("id", "=", 1).execute();
 * const note = await db.selectFrom("notes").select(["created_at", "updated_at"]).executeTakeFirstOrThrow();
 * assert.equal(note.created_at, "2024-05-01T12:00:00.000Z");
 * assert.equal(note.updated_at, "2024-05-02T08:00:00.000Z");
 * await db.destroy();
 * ```
 */
export function timestampsPlugin<
  DB = Record<string, unknown>,
  const T extends keyof DB & string = keyof DB & string,
>(options: TimestampsOptions<T>): TimestampsPlugin<T> {
  const listed = (options as Partial<TimestampsOptions<T>> | undefined)?.tables;
  if (listed !== "all" && (!Array.isArray(listed) || listed.length === 0)) {
    throw new TypeError(
      `Cannot create the timestamps plugin: 'tables' must list the tables that have the timestamp columns, or be "all": current value is ${
        Array.isArray(listed) ? "[]" : String(listed)
      }`,
    );
  }
  const createdAt = options.createdAt ?? "created_at";
  const updatedAt = options.updatedAt ?? "updated_at";
  if (createdAt === false && updatedAt === false) {
    throw new TypeError("Cannot create the timestamps plugin: 'createdAt' and 'updatedAt' are both false");
  }
  for (const [name, value] of [["createdAt", createdAt], ["updatedAt", updatedAt]] as const) {
    if (value === "") {
      throw new TypeError(`Cannot create the timestamps plugin: '${name}' must be a column name: current value is ""`);
    }
  }
  const clock = options.clock ?? "app";
  const format = options.format ?? "auto";
  const tables = listed === "all" ? undefined : new Set<string>(listed);
  const excluded = new Set(options.excludeTables ?? []);
  const context = new PluginContext<TimestampsContext>("timestamps");
  const stampColumns = [createdAt, updatedAt].filter((c): c is string => c !== false);

  const coverage = tableCoverage({ tables, excludeTables: excluded });
  const covers = (table: string, dialect?: DialectName): boolean => coverage(table, dialect) !== undefined;
  const toStored = (date: Date, dialect: DialectName | undefined): unknown =>
    appValue(date, resolveFormat(format, dialect));
  const now = (dialect: DialectName | undefined): unknown => {
    if (clock === "database") return DATABASE_NOW[dialect ?? "postgres"][resolveFormat(format, dialect)];
    return toStored(clock === "app" ? new Date() : clock(), dialect);
  };

  const requireTable = (repository: RepositoryShape, method: string): { table: string; db: Kysely<never> } => {
    const { tableName, executor } = repository;
    if (typeof tableName !== "string" || typeof executor !== "object" || executor === null) {
      throw new TypeError(`Cannot call ${method}(): the repository has no 'tableName' and 'executor'`);
    }
    if (!covers(tableName, getDialect(executor as Kysely<never>))) {
      throw new TypeError(`Cannot call ${method}(): table '${tableName}' is not covered by the timestamps plugin`);
    }
    return { table: tableName, db: executor as Kysely<never> };
  };
  const requireColumn = (column: string | false, option: string, method: string): string => {
    if (column === false) throw new TypeError(`Cannot call ${method}(): the plugin's '${option}' is false`);
    return column;
  };

  const plugin: TimestampsPlugin<T> = {
    name: "timestamps",
    context,
    options: Object.freeze({ createdAt, updatedAt, clock, format }),
    covers,
    toStored,
    withoutTimestamps: <R>(fn: () => R): R => context.run({ skip: true }, fn),
    onWrite(write) {
      if (!covers(write.table, write.dialect) || write.context?.skip === true) return undefined;
      if (write.kind === "set" || write.kind === "upsert-set") {
        if (updatedAt === false || write.columns.includes(updatedAt)) return undefined;
        return { set: { [updatedAt]: now(write.dialect) } };
      }
      const value = now(write.dialect);
      if (write.kind === "select") {
        const set: Record<string, unknown> = {};
        for (const column of stampColumns) if (!write.columns.includes(column)) set[column] = value;
        return { set };
      }
      let partial = false;
      const rows = write.rows.map((row) => {
        const set: Record<string, unknown> = {};
        for (const column of stampColumns) {
          if (Object.hasOwn(row, column)) partial = true;
          else set[column] = value;
        }
        return set;
      });
      if (!partial) return { set: Object.fromEntries(stampColumns.map((c) => [c, value])) };
      return { rows };
    },
    verifySchema: (executor: AnyKysely): Promise<void> =>
      verifyTables(executor, {
        plugin: "timestamps",
        tables: tables === undefined ? undefined : [...tables],
        covers: (table) => covers(table, getDialect(executor)),
        columns: stampColumns,
      }),
    extendRepository(repository: object): TimestampsRepositoryMethods<T> {
      const repo = repository as RepositoryShape;
      const range = (method: string, column: string, filter: Record<string, unknown>): Promise<never[]> => {
        if (typeof repo.find !== "function") {
          throw new TypeError(`Cannot call ${method}(): the repository has no find()`);
        }
        return repo.find({ where: { [column]: filter }, orderBy: [{ column }] }) as Promise<never[]>;
      };
      return {
        async touch(id) {
          const { table, db } = requireTable(repo, "touch");
          const column = requireColumn(updatedAt, "updatedAt", "touch");
          // A config-form repository reads its own keys (RepositoryHandle.keyOf).
          const primaryKey = repo.primaryKey ?? "id";
          const key: Record<string, unknown> = typeof repo.keyOf === "function"
            ? repo.keyOf(id)
            : typeof primaryKey === "string"
            ? { [primaryKey]: id }
            : id as Record<string, unknown>;
          // deno-lint-ignore no-explicit-any
          let query = (db as unknown as Kysely<any>).updateTable(table).set({ [column]: now(getDialect(db)) });
          for (const [c, v] of Object.entries(key)) query = query.where(c, "=", v);
          const result = await query.executeTakeFirst();
          if (result.numUpdatedRows === 0n) throw new NotFoundError(table, key);
        },
        findCreatedBetween(from, to) {
          const { db } = requireTable(repo, "findCreatedBetween");
          const column = requireColumn(createdAt, "createdAt", "findCreatedBetween");
          const dialect = getDialect(db);
          return range("findCreatedBetween", column, { $gte: toStored(from, dialect), $lte: toStored(to, dialect) });
        },
        findUpdatedSince(since) {
          const { db } = requireTable(repo, "findUpdatedSince");
          const column = requireColumn(updatedAt, "updatedAt", "findUpdatedSince");
          return range("findUpdatedSince", column, { $gte: toStored(since, getDialect(db)) });
        },
        createWithoutTimestamps(input) {
          if (typeof repo.create !== "function") {
            throw new TypeError("Cannot call createWithoutTimestamps(): the repository has no create()");
          }
          const create = repo.create.bind(repo);
          return context.run({ skip: true }, () => create(input)) as never;
        },
      };
    },
  };
  return Object.freeze(plugin);
}
