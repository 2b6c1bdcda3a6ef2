import type { Expression, Kysely, SqlBool } from "kysely";
import { type DialectName, getDialect, NotFoundError, parseDatabaseError } from "../../core/mod.ts";
import {
  type AnyExpressionBuilder,
  type AnyKysely,
  type KyseraPlugin,
  type PluginContext,
  tableCoverage,
  type TableReference,
} from "../../executor/mod.ts";
import type { RepositoryHandle } from "../../repository/mod.ts";
import { runScoped, SOFT_DELETE_CONTEXT } from "./_context.ts";
import type { SoftDeleteScope } from "./with_deleted.ts";
import { verifyTables } from "../_schema_check.ts";

/**
 * Options of {@linkcode softDeletePlugin}.
 *
 * @typeParam T The covered tables' names.
 */
export interface SoftDeleteOptions<T extends string = string> {
  /** The column that holds the deletion mark; `NULL` means live. @default {"deleted_at"} */
  readonly deletedAtColumn?: string;
  /**
   * The tables the plugin covers (required): each must have the
   * `deletedAtColumn`. `"all"` covers every table not in `excludeTables`,
   * so every such table must have the column (the audit table too: exclude
   * it). `createExecutor` checks once that each listed table exists and that
   * each covered table has the column, and throws `PluginSchemaError`
   * otherwise (`createExecutorSync` cannot look).
   */
  readonly tables: readonly T[] | "all";
  /**
   * Tables never covered (e.g. join tables without the column), matched in
   * any case where the database does (see `tableCoverage`). @default {[]}
   */
  readonly excludeTables?: readonly string[];
  /**
   * The primary key of repositories that do not name one (factory-form
   * repositories); config-form repositories use their own `primaryKey`.
   * @default {"id"}
   */
  readonly primaryKey?: string | readonly string[];
  /**
   * The value a soft delete writes, from the clock's time and the dialect.
   * It must not be `NULL` (`NULL` means live). May return an SQL expression
   * such as `` sql`CURRENT_TIMESTAMP` ``.
   * @default {an ISO-8601 string on SQLite, the `Date` elsewhere}
   */
  readonly deletedValue?: (now: Date, dialect: DialectName) => unknown;
  /** The clock soft deletes read. @default {() => new Date()} */
  readonly clock?: () => Date;
  /**
   * What the repository's `delete(id)`, `deleteMany(where)` and `deleteAll()` do on a
   * covered table: `"soft"` marks rows deleted, `"hard"` keeps them real
   * deletes (of live rows). `hardDelete(id)` always deletes for real.
   * @default {"soft"}
   */
  readonly repositoryDelete?: "soft" | "hard";
}

/** Find options passed through to the repository's `find` / `findAll`. */
export type SoftDeleteFindOptions = object;

/**
 * What a repository must be for a soft-delete method to be called on it: a
 * repository of a covered table `T`, whose `findById` takes keys `K` and
 * returns rows `O`.
 */
export interface SoftDeleteKeyed<T extends string, K, O> {
  /** The repository's table: one the plugin covers. */
  readonly tableName: T;
  /** The repository's lookup by key. */
  findById(id: K): Promise<O | undefined>;
}

/** What a repository must be for the soft-delete list methods: a repository of a covered table `T`. */
export interface SoftDeleteListing<T extends string, F, O> {
  /** The repository's table: one the plugin covers. */
  readonly tableName: T;
  /** The repository's query. */
  find(options?: F): Promise<O[]>;
  /** The repository's listing. */
  findAll(options?: never): Promise<O[]>;
}

/**
 * The methods {@linkcode softDeletePlugin} adds to every repository. They
 * are typed by the repository they are called on: keys are its key type
 * (a value, or an object of the key columns for a composite key), rows its
 * row type, find options its own; and they compile only on a repository of
 * a covered table (`T`). Called anyway (from JavaScript, or on a
 * factory-form repository without `tableName`), each method rejects with a
 * `TypeError`.
 *
 * @typeParam T The covered tables' names.
 */
export interface SoftDeleteRepositoryMethods<T extends string = string> {
  /**
   * Marks the live row with this key deleted.
   * @throws {NotFoundError} When no live row has the key (missing or already deleted).
   */
  softDelete<K>(this: SoftDeleteKeyed<T, K, unknown>, id: K): Promise<void>;
  /** Marks the live rows with these keys deleted; returns how many were. */
  softDeleteMany<K>(this: SoftDeleteKeyed<T, K, unknown>, ids: readonly K[]): Promise<number>;
  /**
   * Makes the deleted row with this key live again and returns it.
   * @throws {NotFoundError} When no deleted row has the key.
   * @throws {UniqueConstraintError} When a live row took its unique value meanwhile.
   */
  restore<K, O>(this: SoftDeleteKeyed<T, K, O>, id: K): Promise<O>;
  /** Makes the deleted rows with these keys live again; returns how many were. */
  restoreMany<K>(this: SoftDeleteKeyed<T, K, unknown>, ids: readonly K[]): Promise<number>;
  /**
   * Deletes the row with this key for real, live or deleted.
   * @throws {NotFoundError} When no row has the key.
   */
  hardDelete<K>(this: SoftDeleteKeyed<T, K, unknown>, id: K): Promise<void>;
  /** The row with this key, live or deleted (through the repository's `findById`). */
  findWithDeleted<K, O>(this: SoftDeleteKeyed<T, K, O>, id: K): Promise<O | undefined>;
  /** Every row, live and deleted (through the repository's `findAll`). */
  findAllWithDeleted<O>(this: SoftDeleteListing<T, never, O>, options?: SoftDeleteFindOptions): Promise<O[]>;
  /** The deleted rows, optionally filtered (through the repository's `find`, with its options). */
  findDeleted<F, O>(this: SoftDeleteListing<T, F, O>, options?: F): Promise<O[]>;
}

/**
 * The plugin {@linkcode softDeletePlugin} returns.
 *
 * @typeParam T The covered tables' names.
 */
export interface SoftDeletePlugin<T extends string = string> extends KyseraPlugin<SoftDeleteScope> {
  /** `"soft-delete"`. */
  readonly name: string;
  /** The per-call opt-in, shared by every soft-delete plugin (see `withDeleted`). */
  readonly context: PluginContext<SoftDeleteScope>;
  /** Whether the plugin covers `table` (on `dialect`, when known; see `tableCoverage`). */
  covers(table: string, dialect?: DialectName): boolean;
  /** The live-rows predicate (or the opt-in's) for one table reference. */
  scopeRows(ref: TableReference<SoftDeleteScope>, eb: AnyExpressionBuilder): Expression<SqlBool> | undefined;
  /** Checks, at `createExecutor`, that the listed tables exist and every covered table has the column. */
  verifySchema(executor: AnyKysely): Promise<void>;
  /** Adds {@linkcode SoftDeleteRepositoryMethods} and soft `delete`/`deleteMany`/`deleteAll`. */
  extendRepository(repository: object): SoftDeleteRepositoryMethods<T>;
}

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;

interface RepositoryLike extends Partial<Omit<RepositoryHandle, "tableName" | "executor">> {
  readonly tableName?: unknown;
  readonly primaryKey?: unknown;
  readonly executor?: unknown;
  findById?(id: unknown): Promise<unknown>;
  findAll?(options?: unknown): Promise<unknown[]>;
  find?(options?: unknown): Promise<unknown[]>;
  whereExpression?(where: unknown): (eb: AnyExpressionBuilder) => Expression<SqlBool>;
}

function defaultDeletedValue(now: Date, dialect: DialectName): unknown {
  return dialect === "sqlite" ? now.toISOString() : now;
}

/**
 * Creates the soft-delete plugin: rows whose `deleted_at` is set are hidden
 * from every query through the executor, wherever a covered table appears
 * (FROM under any alias, joins — outer joins keep their outer rows and
 * see `NULL` for a deleted partner —, subqueries, CTEs, set operations,
 * counts, `exists`, and UPDATE/DELETE targets, so a deleted row cannot be
 * updated or deleted by accident). {@linkcode withDeleted} and
 * {@linkcode onlyDeleted} opt one call in to deleted rows; every other plugin
 * stays in force. Repositories gain {@linkcode SoftDeleteRepositoryMethods},
 * and their `delete`/`deleteMany`/`deleteAll` soft-delete (see `repositoryDelete`).
 *
 * Raw SQL (`sql\`...\`` run directly) is not filtered: no plugin can read it.
 *
 * `tables` is required: a default that covered every table would break
 * every table without the column (a lookup table, the audit log). Pass the
 * database type to check the names as you type them
 * (`softDeletePlugin<DB>({ tables: ["users"] })`), or let them be inferred
 * (`softDeletePlugin({ tables: ["users"] })`): then the added repository
 * methods compile only on repositories of those tables. `createExecutor`
 * also checks the names against the database (see `tables`).
 *
 * @typeParam DB The database type, to check `tables` against its table names.
 * @typeParam T The covered tables' names (inferred from `tables`).
 * @param options Columns, tables, clock and delete behaviour.
 * @returns The plugin, for `createExecutor` / `createORM`.
 * @throws {TypeError} When `tables` is missing or empty, or a table is both in `tables` and `excludeTables`.
 *
 * @example Soft-deleting through a repository
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createORM } from "@kysera/kysera/repository"; // npm: "kysera/repository"
 * import { softDeletePlugin } from "@kysera/kysera/soft-delete"; // npm: "kysera/soft-delete"
 *
 * interface DB { users: { id: number; email: string; deleted_at: string | null } }
 * const handle = new DatabaseSync(":memory:");
 * handle.exec("create table users (id integer primary key, email text not null, deleted_at text)");
 * handle.exec("insert into users (email) values ('ada@example.com'), ('bob@example.com')");
 * const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
 *
 * const softDelete = softDeletePlugin<DB>({ tables: ["users"], clock: () => new Date("2026-01-01T00:00:00Z") });
 * const orm = createORM(db, [softDelete]);
 * const users = orm.createRepository({ tableName: "users", primaryKey: "id" });
 *
 * await users.delete(2); // update "users" set "deleted_at" = ? where "id" = ? and "users"."deleted_at" is null
 * assert.equal(await users.count(), 1);
 * assert.deepEqual((await users.findDeleted()).map((u) => u["email"]), ["bob@example.com"]);
 * assert.equal((await users.restore(2))["deleted_at"], null);
 * assert.equal(await users.count(), 2);
 * await db.destroy();
 * ```
 */
export function softDeletePlugin<
  DB = Record<string, unknown>,
  const T extends keyof DB & string = keyof DB & string,
>(options: SoftDeleteOptions<T>): SoftDeletePlugin<T> {
  const listed = (options as Partial<SoftDeleteOptions<T>> | undefined)?.tables;
  if (listed !== "all" && (!Array.isArray(listed) || listed.length === 0)) {
    throw new TypeError(
      `Cannot create the soft-delete plugin: 'tables' must list the tables that have the deletion column, or be "all": current value is ${
        Array.isArray(listed) ? "[]" : String(listed)
      }`,
    );
  }
  const column = options.deletedAtColumn ?? "deleted_at";
  const tables = listed === "all" ? undefined : new Set<string>(listed);
  const excluded = new Set(options.excludeTables ?? []);
  for (const table of excluded) {
    if (tables?.has(table)) {
      throw new TypeError(
        `Cannot create the soft-delete plugin: table '${table}' is both in 'tables' and 'excludeTables'`,
      );
    }
  }
  const clock = options.clock ?? (() => new Date());
  const deletedValue = options.deletedValue ?? defaultDeletedValue;
  const fallbackKey = options.primaryKey ?? "id";
  const soft = (options.repositoryDelete ?? "soft") === "soft";
  // A listed table spelled in another case is covered (on a database where
  // it is another table, its missing column fails the query: closed).
  const coverage = tableCoverage({ tables, excludeTables: excluded });
  const covers = (table: string, dialect?: DialectName): boolean => coverage(table, dialect) !== undefined;

  const plugin = {
    name: "soft-delete",
    context: SOFT_DELETE_CONTEXT,
    covers,
    scopeRows(ref: TableReference<SoftDeleteScope>, eb: AnyExpressionBuilder): Expression<SqlBool> | undefined {
      if (!covers(ref.table)) return undefined;
      const scope = ref.context;
      if (scope?.mode !== undefined && (scope.tables === undefined || scope.tables.has(ref.table))) {
        return scope.mode === "with" ? undefined : eb(ref.column(column), "is not", null);
      }
      return eb(ref.column(column), "is", null);
    },
    verifySchema: (executor: AnyKysely): Promise<void> =>
      verifyTables(executor, {
        plugin: "soft-delete",
        tables: tables === undefined ? undefined : [...tables],
        covers: (table) => covers(table, getDialect(executor)),
        columns: [column],
      }),
    extendRepository(repository: object): SoftDeleteRepositoryMethods<T> {
      const repo = repository as RepositoryLike;
      const table = typeof repo.tableName === "string" ? repo.tableName : undefined;
      const db = repo.executor as AnyDb | undefined;
      if (table === undefined || db === undefined || !covers(table, getDialect(db))) return uncovered(table);
      // A config-form repository is a RepositoryHandle: its own key columns
      // and key reading; a factory-form one falls back to the `primaryKey` option.
      const handle = typeof repo.keyOf === "function" && Array.isArray(repo.primaryKeyColumns) ? repo : undefined;
      const pk: string | readonly string[] = handle !== undefined
        ? (handle.primaryKeyColumns!.length === 1 ? handle.primaryKeyColumns![0]! : handle.primaryKeyColumns!)
        : fallbackKey;
      const dialect = getDialect(db);
      const keyOf = (id: unknown) => handle !== undefined ? handle.keyOf!(id) : keyObject(table, pk, id);
      const keysWhere = (eb: AnyExpressionBuilder, ids: readonly unknown[]): Expression<SqlBool> => {
        const keys = ids.map(keyOf);
        if (typeof pk === "string") return eb(pk, "in", keys.map((k) => k[pk]));
        return eb.or(keys.map((k) => eb.and(Object.entries(k).map(([c, v]) => eb(c, "=", v)))));
      };
      const fail = (error: unknown): never => {
        if (error instanceof TypeError || error instanceof RangeError) throw error;
        throw parseDatabaseError(error, dialect);
      };
      const mark = (
        value: unknown,
        mode: "only" | undefined,
        where: (eb: AnyExpressionBuilder) => Expression<SqlBool>,
      ) =>
        runScoped(
          mode === undefined ? { mode: undefined, tables: undefined } : { mode, tables: new Set([table]) },
          async () => {
            try {
              const result = await db.updateTable(table).set({ [column]: value }).where(where).executeTakeFirst();
              return Number(result.numUpdatedRows);
            } catch (error) {
              return fail(error);
            }
          },
        );
      const softDeleteOne = async (id: unknown): Promise<void> => {
        const key = keyOf(id);
        const n = await mark(deletedValue(clock(), dialect), undefined, (eb) => keysWhere(eb, [id]));
        if (n === 0) throw new NotFoundError(table, key);
      };
      const withDeletedHere = <R>(mode: "with" | "only", fn: () => R): R =>
        runScoped({ mode, tables: new Set([table]) }, fn);
      const methods = {
        softDelete: softDeleteOne,
        softDeleteMany: (ids: readonly unknown[]): Promise<number> =>
          ids.length === 0
            ? Promise.resolve(0)
            : mark(deletedValue(clock(), dialect), undefined, (eb) => keysWhere(eb, ids)),
        async restore<R>(id: unknown): Promise<R> {
          const key = keyOf(id);
          const n = await mark(null, "only", (eb) => keysWhere(eb, [id]));
          if (n === 0) throw new NotFoundError(table, key);
          const row = await repo.findById!(id);
          if (row === undefined) throw new NotFoundError(table, key);
          return row as R;
        },
        restoreMany: (ids: readonly unknown[]): Promise<number> =>
          ids.length === 0 ? Promise.resolve(0) : mark(null, "only", (eb) => keysWhere(eb, ids)),
        hardDelete: (id: unknown): Promise<void> => {
          const key = keyOf(id);
          return withDeletedHere("with", async () => {
            let n: bigint;
            try {
              n = (await db.deleteFrom(table).where((eb) => keysWhere(eb, [id])).executeTakeFirst()).numDeletedRows;
            } catch (error) {
              return fail(error);
            }
            if (n === 0n) throw new NotFoundError(table, key);
          });
        },
        findWithDeleted: <R>(id: unknown): Promise<R | undefined> =>
          withDeletedHere("with", () => repo.findById!(id)) as Promise<R | undefined>,
        findAllWithDeleted: <R>(options?: SoftDeleteFindOptions): Promise<R[]> =>
          withDeletedHere("with", () => repo.findAll!(options)) as Promise<R[]>,
        findDeleted: <R>(options?: unknown): Promise<R[]> =>
          withDeletedHere("only", () => repo.find!(options)) as Promise<R[]>,
      };
      if (!soft) return methods;
      const deleteMany = async (where: unknown): Promise<number> => {
        if (repo.writeFilter === undefined) {
          throw new TypeError(`Cannot soft-delete rows in '${table}': the repository has no writeFilter()`);
        }
        // The repository's own where-DSL, as a filter of the soft-delete
        // UPDATE; one that sets no condition is refused (UnfilteredWriteError).
        return await mark(deletedValue(clock(), dialect), undefined, repo.writeFilter(where, "delete"));
      };
      const deleteAll = (): Promise<number> =>
        mark(deletedValue(clock(), dialect), undefined, (eb) => eb(eb.lit(1), "=", eb.lit(1)));
      return Object.assign(methods, { delete: softDeleteOne, deleteMany, deleteAll });
    },
  } satisfies SoftDeletePlugin<T>;
  return Object.freeze(plugin);
}

/** Methods that refuse: the repository's table is not covered. */
function uncovered(table: string | undefined): SoftDeleteRepositoryMethods {
  const refuse = (): Promise<never> =>
    Promise.reject(
      new TypeError(
        table === undefined
          ? "Cannot soft-delete: the repository has no 'tableName' and 'executor'"
          : `Cannot soft-delete: the soft-delete plugin does not cover table '${table}'`,
      ),
    );
  return {
    softDelete: refuse,
    softDeleteMany: refuse,
    restore: refuse,
    restoreMany: refuse,
    hardDelete: refuse,
    findWithDeleted: refuse,
    findAllWithDeleted: refuse,
    findDeleted: refuse,
  };
}

function keyObject(table: string, pk: string | readonly string[], id: unknown): Record<string, unknown> {
  if (typeof pk === "string") {
    if (id === undefined || id === null || typeof id === "object" && !(id instanceof Date)) {
      throw new TypeError(`Cannot look up a row in '${table}': the key must be a value: current value is ${id}`);
    }
    return { [pk]: id };
  }
  if (typeof id !== "object" || id === null) {
    throw new TypeError(`Cannot look up a row in '${table}': the key must be an object of ${pk.join(", ")}`);
  }
  const key: Record<string, unknown> = {};
  for (const c of pk) {
    const v = (id as Record<string, unknown>)[c];
    if (v === undefined) throw new TypeError(`Cannot look up a row in '${table}': the key lacks column '${c}'`);
    key[c] = v;
  }
  return key;
}
