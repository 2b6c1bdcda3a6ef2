import type { Expression, ExpressionBuilder, Kysely, Selectable, SqlBool, StringReference } from "kysely";
import type {
  CheckedOrder,
  CursorOrder,
  CursorOrderOptions,
  CursorPage,
  CursorPaginationOptions,
  LooseOrder,
  OffsetPage,
} from "../core/mod.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";
import type { RepositoryHandle } from "./repository_handle.ts";
import type { Where } from "./where.ts";

/** The column names of table `T` of `DB`. */
export type ColumnOf<DB, T extends keyof DB> = keyof DB[T] & string;

/** A primary key: one column, or several (composite). */
export type PrimaryKey<DB, T extends keyof DB> = ColumnOf<DB, T> | readonly ColumnOf<DB, T>[];

/**
 * The value that identifies a row: the column's value for a single-column
 * key, an object of the key columns for a composite one.
 */
export type KeyValue<R, PK> = PK extends readonly (infer C extends keyof R)[] ? { readonly [K in C]: R[K] }
  : PK extends keyof R ? R[PK]
  : never;

/** A column to order by, or several. */
export type OrderBy<R> =
  | (keyof R & string)
  | { readonly column: keyof R & string; readonly direction?: "asc" | "desc" }
  | readonly ((keyof R & string) | { readonly column: keyof R & string; readonly direction?: "asc" | "desc" })[];

/** Options of {@linkcode Repository.find}. */
export interface FindOptions<R, Order extends LooseOrder = OrderBy<R>> {
  /** Which rows. @default {all rows} */
  readonly where?: Where<R> | undefined;
  /**
   * The order: a column, `{ column, direction }`, or an array of both.
   * Literal names are checked at compile time; a hoisted constant (strings
   * widened) at run time. @default {unordered}
   */
  readonly orderBy?: (Order & CheckedOrder<Order, keyof R & string>) | undefined;
  /** At most this many rows. */
  readonly limit?: number | undefined;
  /** Skip this many rows (needs `limit`). */
  readonly offset?: number | undefined;
}

/** Options of {@linkcode Repository.upsert}. */
export interface UpsertOptions<R> {
  /** The unique columns that decide "the same row". @default {the primary key} */
  readonly conflict?: readonly (keyof R & string)[] | undefined;
  /**
   * The columns an existing row takes from the input; a listed column that a
   * row does not give is left as stored for that row.
   * @default {every given column but the conflict columns}
   */
  readonly update?: readonly (keyof R & string)[] | undefined;
}

/** Options of {@linkcode Repository.paginate}. */
export interface RepositoryPageOptions<R, Order extends LooseOrder = OrderBy<R>> {
  /** The 1-based page number. */
  readonly page: number;
  /** The page size. */
  readonly limit: number;
  /** Also count the rows. @default {false} */
  readonly withTotal?: boolean | undefined;
  /** Which rows. */
  readonly where?: Where<R> | undefined;
  /**
   * The order (as {@linkcode FindOptions.orderBy}); the primary key is
   * appended so pages never overlap. @default {the primary key}
   */
  readonly orderBy?: (Order & CheckedOrder<Order, keyof R & string>) | undefined;
}

/**
 * Options of {@linkcode Repository.paginateCursor}: core's cursor options, with `where`.
 *
 * @typeParam Order The order as written (inferred): a hoisted constant needs no `as const`.
 */
export interface RepositoryCursorOptions<DB, T extends keyof DB, Order extends LooseOrder = CursorOrder<DB, T>>
  extends Omit<CursorPaginationOptions<DB, T>, "db" | "orderBy" | "tiebreaker"> {
  /** Which rows. */
  readonly where?: Where<Selectable<DB[T]>> | undefined;
  /**
   * The order: a column, a `CursorOrderBy`, or an array of both; missing
   * primary-key columns are appended as the tiebreaker.
   * @default {the primary key}
   */
  readonly orderBy?: (Order & CheckedOrder<Order, StringReference<DB, T>, CursorOrderOptions>) | undefined;
}

/**
 * The schemas of a repository (any Standard Schema: zod 4, valibot, arktype).
 * The input schemas' output is written as is: it must have the table's
 * column names (schema libraries type optional keys as `T | undefined`,
 * which `Insertable` under `exactOptionalPropertyTypes` rejects, so it is
 * typed as `object`).
 */
export interface RepositorySchemas<DB, T extends keyof DB, Out, CIn, UIn, CO = object, UO = object> {
  /**
   * Validates (and may transform) the input of `create`, `createMany`,
   * `upsert`, `upsertMany`. Its output may only have the table's columns: a
   * schema with another key (a misspelt column) fails to compile.
   */
  readonly create?: (StandardSchemaV1<CIn, CO> & OnlyColumns<CO, ColumnOf<DB, T>>) | undefined;
  /** Validates the changes of `update` and `updateMany`; its output, as `create`'s, only columns. */
  readonly update?: (StandardSchemaV1<UIn, UO> & OnlyColumns<UO, ColumnOf<DB, T>>) | undefined;
  /** Validates each row returned (after `mapRow`). */
  readonly output?: StandardSchemaV1<unknown, Out> | undefined;
}

/**
 * `unknown` when the keys of `O` (a schema's output) are all columns `C`;
 * otherwise a type the schema lacks, whose `unknownColumns` names the others
 * (so the compile error does).
 */
export type OnlyColumns<O, C extends string> = [Exclude<keyof O, C>] extends [never] ? unknown
  : { readonly unknownColumns: Exclude<keyof O, C> };

/** The config form of `orm.createRepository`. */
export interface RepositoryConfig<DB, T extends keyof DB & string, PK, Out, CIn, UIn, CO = object, UO = object> {
  /** The table. */
  readonly tableName: T;
  /** The primary key column(s). @default {"id"} */
  readonly primaryKey?: PK;
  /** Input and output validation. */
  readonly schemas?: RepositorySchemas<DB, T, Out, CIn, UIn, CO, UO> | undefined;
  /** Maps each row read (before output validation). */
  readonly mapRow?: ((row: Selectable<DB[T]>) => Out) | undefined;
  /**
   * The table's columns. When given, a where clause naming another column
   * throws `InvalidWhereError`; without it, any identifier is accepted and
   * the database rejects unknown ones (as a translated `DatabaseError`).
   */
  readonly columns?: readonly ColumnOf<DB, T>[] | undefined;
}

/**
 * A repository over one table: CRUD with a typed where-DSL, batch writes,
 * upserts on every dialect, counting, pagination, validation and
 * transactions. Database errors come out as core's typed errors.
 *
 * Built by `orm.createRepository(config)`; see {@linkcode createORM}.
 *
 * @typeParam DB The database type.
 * @typeParam T The table.
 * @typeParam PK The primary key column(s).
 * @typeParam Out The row type returned.
 * @typeParam CIn The input type of `create`.
 * @typeParam UIn The input type of `update`.
 */
export interface Repository<DB, T extends keyof DB & string, PK, Out, CIn, UIn> extends RepositoryHandle<DB> {
  /** The table. */
  readonly tableName: T;
  /** The primary key column(s). */
  readonly primaryKey: PK;
  /** The Kysely instance or transaction the repository runs on. */
  readonly executor: Kysely<DB>;
  /** The primary key's columns, in order. */
  readonly primaryKeyColumns: readonly ColumnOf<DB, T>[];
  /** The row with this key, or `undefined`. */
  findById(id: KeyValue<Selectable<DB[T]>, PK>): Promise<Out | undefined>;
  /**
   * The row with this key.
   *
   * @throws {NotFoundError} When there is none (`Cannot find posts row with id 1`; `table` and `key` set).
   */
  findByIdOrThrow(id: KeyValue<Selectable<DB[T]>, PK>): Promise<Out>;
  /**
   * The rows with these keys, in the order of `ids` (missing ones left out).
   * Keys are matched to rows the way the database compares them, then by
   * value as the database returns it (a `date` key given as `"2024-01-01"`
   * finds the row that comes back with a `Date`; on MySQL/MariaDB a text key
   * also matches in another case or with trailing spaces, as `_ci`
   * collations compare). Any number of ids: long lists are sent under the
   * dialect's parameter limit.
   */
  findByIds(ids: readonly KeyValue<Selectable<DB[T]>, PK>[]): Promise<Out[]>;
  /** Every row (optionally ordered and limited). */
  findAll<const Order extends LooseOrder = OrderBy<Selectable<DB[T]>>>(
    options?: Omit<FindOptions<Selectable<DB[T]>, Order>, "where">,
  ): Promise<Out[]>;
  /** The rows matching `where`. */
  find<const Order extends LooseOrder = OrderBy<Selectable<DB[T]>>>(
    options?: FindOptions<Selectable<DB[T]>, Order>,
  ): Promise<Out[]>;
  /** The first row matching `where`, or `undefined`. */
  findOne<const Order extends LooseOrder = OrderBy<Selectable<DB[T]>>>(
    options?: Omit<FindOptions<Selectable<DB[T]>, Order>, "limit" | "offset">,
  ): Promise<Out | undefined>;
  /** The number of rows matching `where` (an `$in` list of any length). */
  count(where?: Where<Selectable<DB[T]>>): Promise<number>;
  /** Whether a row matches `where` (`select 1 ... limit 1`, not a count). */
  exists(where?: Where<Selectable<DB[T]>>): Promise<boolean>;
  /**
   * The where-DSL as a Kysely filter, for builder queries and plugins:
   * `db.updateTable(t).set(...).where(repo.whereExpression({ status: "old" }))`.
   * Validated at once (unknown operators and configured columns throw
   * `InvalidWhereError`).
   */
  whereExpression(where: Where<Selectable<DB[T]>>): (eb: ExpressionBuilder<DB, T>) => Expression<SqlBool>;
  /**
   * Inserts a row and returns it as stored. A key whose value is `undefined`
   * is left out (the column gets its default). With an output schema or
   * `mapRow`, the insert and the check of the stored row run in one
   * transaction (a savepoint inside the caller's): a row that fails them is
   * rolled back and the error thrown.
   */
  create(input: CIn): Promise<Out>;
  /**
   * Inserts rows in one statement and returns them in input order. Beyond the
   * dialect's parameter limit (counting the columns plugins add, such as
   * timestamps) the rows go in several statements, in one transaction (a
   * savepoint inside the caller's), so either all are written or none. A
   * column a row leaves out gets its DEFAULT on every dialect (SQLite:
   * such rows go in their own statement, since SQLite's `VALUES` has no
   * `DEFAULT`).
   */
  createMany(inputs: readonly CIn[]): Promise<Out[]>;
  /**
   * Updates the row with this key and returns it. Keys whose value is
   * `undefined` are left unchanged; with nothing left to set, no UPDATE is
   * sent and the current row is returned.
   * @throws {NotFoundError} When no row has the key.
   */
  update(id: KeyValue<Selectable<DB[T]>, PK>, changes: UIn): Promise<Out>;
  /**
   * Updates the rows matching `where`; returns how many matched. Keys of
   * `changes` whose value is `undefined` are left unchanged; with nothing
   * left to set, no UPDATE is sent and the matching rows are counted.
   * @throws {UnfilteredWriteError} When `where` sets no condition (use {@linkcode Repository.updateAll}).
   */
  updateMany(where: Where<Selectable<DB[T]>>, changes: UIn): Promise<number>;
  /** Updates every row (as {@linkcode Repository.updateMany} with no filter); returns how many. */
  updateAll(changes: UIn): Promise<number>;
  /** Deletes the row with this key. @throws {NotFoundError} When no row has the key. */
  delete(id: KeyValue<Selectable<DB[T]>, PK>): Promise<void>;
  /**
   * Deletes the rows matching `where`; returns how many.
   * @throws {UnfilteredWriteError} When `where` sets no condition: `undefined`, `{}`, only `undefined` values (use {@linkcode Repository.deleteAll}).
   */
  deleteMany(where: Where<Selectable<DB[T]>>): Promise<number>;
  /** Deletes every row; returns how many. */
  deleteAll(): Promise<number>;
  /**
   * Inserts the row, or updates the row with the same conflict key; returns
   * it. Only the columns the input gives (keys with `undefined` dropped) are
   * inserted, and only those are updated on a conflict: a column the input
   * leaves out keeps its stored value.
   */
  upsert(input: CIn, options?: UpsertOptions<Selectable<DB[T]>>): Promise<Out>;
  /**
   * {@linkcode Repository.upsert} for many rows, in one statement per set of
   * given columns (and under the parameter limit), in one transaction;
   * returns them in input order.
   */
  upsertMany(inputs: readonly CIn[], options?: UpsertOptions<Selectable<DB[T]>>): Promise<Out[]>;
  /** An offset page, exactly core's `paginate` shape. */
  paginate<const Order extends LooseOrder = OrderBy<Selectable<DB[T]>>>(
    options: RepositoryPageOptions<Selectable<DB[T]>, Order>,
  ): Promise<OffsetPage<Out>>;
  /** A keyset page, exactly core's `paginateCursor` shape. */
  paginateCursor<const Order extends LooseOrder = CursorOrder<DB, T>>(
    options: RepositoryCursorOptions<DB, T, Order>,
  ): Promise<CursorPage<Out>>;
  /**
   * Runs `fn` with this repository bound to a transaction (a savepoint when
   * already in one); every plugin and extension method is kept.
   */
  transaction<R>(fn: (repository: this) => Promise<R>): Promise<R>;
  /**
   * This repository bound to `trx` (a transaction of the same executor), with
   * every plugin and extension method. It runs nothing:
   * {@linkcode Repository.transaction} runs a transaction.
   */
  bind(trx: Kysely<DB>): this;
  /** @deprecated Use {@linkcode Repository.bind}: `withTransaction` only binds, it runs no transaction. */
  withTransaction(trx: Kysely<DB>): this;
}
