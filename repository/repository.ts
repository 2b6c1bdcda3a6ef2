import {
  type Expression,
  type ExpressionBuilder,
  expressionBuilder,
  type Kysely,
  type Selectable,
  sql,
  type SqlBool,
} from "kysely";
import {
  type CursorOrderBy,
  type CursorPage,
  type CursorPaginationOptions,
  type DialectName,
  getDialect,
  NotFoundError,
  type OffsetPage,
  paginate,
  paginateCursor,
  parseDatabaseError,
  UniqueConstraintError,
} from "../core/mod.ts";
import { allowRawSql, isKyseraExecutor, type KyseraPlugin } from "../executor/mod.ts";
import { ValidationError, type ValidationTarget } from "./errors.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";
import { checkColumn, compileWhere, type WhereContext } from "./_where.ts";
import { withTransaction } from "../dal/mod.ts";
import type { Where } from "./where.ts";

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
type Values = Record<string, unknown>;
// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;

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
export interface FindOptions<R> {
  /** Which rows. @default {all rows} */
  readonly where?: Where<R> | undefined;
  /** The order. @default {unordered} */
  readonly orderBy?: OrderBy<R> | undefined;
  /** At most this many rows. */
  readonly limit?: number | undefined;
  /** Skip this many rows (needs `limit`). */
  readonly offset?: number | undefined;
}

/** Options of {@linkcode Repository.upsert}. */
export interface UpsertOptions<R> {
  /** The unique columns that decide "the same row". @default {the primary key} */
  readonly conflict?: readonly (keyof R & string)[] | undefined;
  /** The columns an existing row takes from the input. @default {every given column but the conflict columns} */
  readonly update?: readonly (keyof R & string)[] | undefined;
}

/** Options of {@linkcode Repository.paginate}. */
export interface RepositoryPageOptions<R> {
  /** The 1-based page number. */
  readonly page: number;
  /** The page size. */
  readonly limit: number;
  /** Also count the rows. @default {false} */
  readonly withTotal?: boolean | undefined;
  /** Which rows. */
  readonly where?: Where<R> | undefined;
  /** The order; the primary key is appended so pages never overlap. @default {the primary key} */
  readonly orderBy?: OrderBy<R> | undefined;
}

/** Options of {@linkcode Repository.paginateCursor}: core's cursor options, with `where`. */
export interface RepositoryCursorOptions<DB, T extends keyof DB>
  extends Omit<CursorPaginationOptions<DB, T>, "db" | "orderBy" | "tiebreaker"> {
  /** Which rows. */
  readonly where?: Where<Selectable<DB[T]>> | undefined;
  /** The order; missing primary-key columns are appended as the tiebreaker. @default {the primary key} */
  readonly orderBy?: readonly CursorOrderBy<DB, T>[] | undefined;
}

/**
 * The schemas of a repository (any Standard Schema: zod 4, valibot, arktype).
 * The input schemas' output is written as is: it must have the table's
 * column names (schema libraries type optional keys as `T | undefined`,
 * which `Insertable` under `exactOptionalPropertyTypes` rejects, so it is
 * typed as `object`).
 */
export interface RepositorySchemas<DB, T extends keyof DB, Out, CIn, UIn> {
  /** Validates (and may transform) the input of `create`, `createMany`, `upsert`, `upsertMany`. */
  readonly create?: StandardSchemaV1<CIn, object> | undefined;
  /** Validates the changes of `update` and `updateMany`. */
  readonly update?: StandardSchemaV1<UIn, object> | undefined;
  /** Validates each row returned (after `mapRow`). */
  readonly output?: StandardSchemaV1<unknown, Out> | undefined;
}

/** The config form of `orm.createRepository`. */
export interface RepositoryConfig<DB, T extends keyof DB & string, PK, Out, CIn, UIn> {
  /** The table. */
  readonly tableName: T;
  /** The primary key column(s). @default {"id"} */
  readonly primaryKey?: PK;
  /** Input and output validation. */
  readonly schemas?: RepositorySchemas<DB, T, Out, CIn, UIn> | undefined;
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
export interface Repository<DB, T extends keyof DB & string, PK, Out, CIn, UIn> {
  /** The table. */
  readonly tableName: T;
  /** The primary key column(s). */
  readonly primaryKey: PK;
  /** The Kysely instance or transaction the repository runs on. */
  readonly executor: Kysely<DB>;
  /** The row with this key, or `undefined`. */
  findById(id: KeyValue<Selectable<DB[T]>, PK>): Promise<Out | undefined>;
  /** The rows with these keys, in the order of `ids` (missing ones left out). */
  findByIds(ids: readonly KeyValue<Selectable<DB[T]>, PK>[]): Promise<Out[]>;
  /** Every row (optionally ordered and limited). */
  findAll(options?: Omit<FindOptions<Selectable<DB[T]>>, "where">): Promise<Out[]>;
  /** The rows matching `where`. */
  find(options?: FindOptions<Selectable<DB[T]>>): Promise<Out[]>;
  /** The first row matching `where`, or `undefined`. */
  findOne(options?: Omit<FindOptions<Selectable<DB[T]>>, "limit" | "offset">): Promise<Out | undefined>;
  /** The number of rows matching `where`. */
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
  /** Inserts a row and returns it as stored. */
  create(input: CIn): Promise<Out>;
  /** Inserts rows in one statement (chunked beyond the dialect's parameter limit) and returns them in input order. */
  createMany(inputs: readonly CIn[]): Promise<Out[]>;
  /** Updates the row with this key and returns it. @throws {NotFoundError} When no row has the key. */
  update(id: KeyValue<Selectable<DB[T]>, PK>, changes: UIn): Promise<Out>;
  /** Updates the rows matching `where`; returns how many matched. */
  updateMany(where: Where<Selectable<DB[T]>>, changes: UIn): Promise<number>;
  /** Deletes the row with this key. @throws {NotFoundError} When no row has the key. */
  delete(id: KeyValue<Selectable<DB[T]>, PK>): Promise<void>;
  /** Deletes the rows matching `where` (`{}` for all); returns how many. */
  deleteMany(where: Where<Selectable<DB[T]>>): Promise<number>;
  /** Inserts the row, or updates the row with the same conflict key; returns it. */
  upsert(input: CIn, options?: UpsertOptions<Selectable<DB[T]>>): Promise<Out>;
  /** {@linkcode Repository.upsert} for many rows in one statement; returns them in input order. */
  upsertMany(inputs: readonly CIn[], options?: UpsertOptions<Selectable<DB[T]>>): Promise<Out[]>;
  /** An offset page, exactly core's `paginate` shape. */
  paginate(options: RepositoryPageOptions<Selectable<DB[T]>>): Promise<OffsetPage<Out>>;
  /** A keyset page, exactly core's `paginateCursor` shape. */
  paginateCursor(options: RepositoryCursorOptions<DB, T>): Promise<CursorPage<Out>>;
  /**
   * Runs `fn` with this repository bound to a transaction (a savepoint when
   * already in one); every plugin and extension method is kept.
   */
  transaction<R>(fn: (repository: this) => Promise<R>): Promise<R>;
  /** This repository bound to `trx` (a transaction of the same executor), with every plugin and extension method. */
  withTransaction(trx: Kysely<DB>): this;
}

/** What every copy of one repository shares. */
interface Shared {
  readonly table: string;
  readonly pk: readonly string[];
  readonly primaryKey: unknown;
  readonly single: boolean;
  readonly dialect: DialectName;
  readonly where: WhereContext;
  readonly create: StandardSchemaV1 | undefined;
  readonly update: StandardSchemaV1 | undefined;
  readonly output: StandardSchemaV1 | undefined;
  readonly mapRow: ((row: never) => unknown) | undefined;
  readonly plugins: readonly KyseraPlugin[];
  autoIncrement: { inc: number; mode: number } | undefined;
}

/** Parameters per statement, under each dialect's limit. */
const MAX_PARAMETERS: Record<DialectName, number> = { postgres: 65_535, sqlite: 32_766, mysql: 65_535, mssql: 2_100 };

/**
 * Builds a config-form repository (used by `orm.createRepository`).
 *
 * @internal
 */
export function buildRepository(
  db: AnyDb,
  config: RepositoryConfig<never, never, unknown, unknown, unknown, unknown>,
  plugins: readonly KyseraPlugin[],
): object {
  const table = config.tableName as string;
  const primaryKey = (config.primaryKey ?? "id") as unknown;
  const pk = typeof primaryKey === "string" ? [primaryKey] : [...(primaryKey as string[])];
  if (pk.length === 0) throw new TypeError(`Cannot create a repository for '${table}': 'primaryKey' is empty`);
  const dialect = getDialect(db);
  const shared: Shared = {
    table,
    pk,
    primaryKey,
    single: typeof primaryKey === "string",
    dialect,
    where: {
      table,
      dialect,
      columns: config.columns === undefined ? undefined : new Set(config.columns as readonly string[]),
    },
    create: config.schemas?.create as StandardSchemaV1 | undefined,
    update: config.schemas?.update as StandardSchemaV1 | undefined,
    output: config.schemas?.output,
    mapRow: config.mapRow,
    plugins,
    autoIncrement: undefined,
  };
  return bind(shared, db);
}

function bind(shared: Shared, db: AnyDb): RepositoryImpl {
  const repo = new RepositoryImpl(shared, db);
  for (const plugin of shared.plugins) {
    if (plugin.extendRepository !== undefined) Object.assign(repo, plugin.extendRepository(repo));
  }
  return repo;
}

function keyString(row: Values, columns: readonly string[]): string {
  return columns.map((c) => String(row[c])).join("\u0000");
}

function orderTerms(orderBy: unknown): { column: string; direction: "asc" | "desc" }[] {
  if (orderBy === undefined) return [];
  const list = Array.isArray(orderBy) ? orderBy : [orderBy];
  return list.map((o) =>
    typeof o === "string" ? { column: o, direction: "asc" } : { column: o.column, direction: o.direction ?? "asc" }
  );
}

class RepositoryImpl {
  readonly #s: Shared;
  readonly executor: AnyDb;
  readonly tableName: string;
  readonly primaryKey: unknown;

  constructor(shared: Shared, db: AnyDb) {
    this.#s = shared;
    this.executor = db;
    this.tableName = shared.table;
    this.primaryKey = shared.primaryKey;
  }

  // ---- helpers -------------------------------------------------------------

  #keyObject(id: unknown): Values {
    const s = this.#s;
    if (s.single) {
      if (id === undefined || id === null || typeof id === "object" && !(id instanceof Date)) {
        throw new TypeError(`Cannot look up a row in '${s.table}': the key must be a value: current value is ${id}`);
      }
      return { [s.pk[0]!]: id };
    }
    if (typeof id !== "object" || id === null) {
      throw new TypeError(`Cannot look up a row in '${s.table}': the key must be an object of ${s.pk.join(", ")}`);
    }
    const key: Values = {};
    for (const c of s.pk) {
      const v = (id as Values)[c];
      if (v === undefined) {
        throw new TypeError(`Cannot look up a row in '${s.table}': the key lacks column '${c}'`);
      }
      key[c] = v;
    }
    return key;
  }

  // deno-lint-ignore no-explicit-any
  #whereKey<Q extends { where(...args: any[]): Q }>(q: Q, key: Values): Q {
    for (const c of this.#s.pk) q = q.where(c, "=", key[c]);
    return q;
  }

  // deno-lint-ignore no-explicit-any
  #applyWhere<Q extends { where(...args: any[]): Q }>(q: Q, where: unknown): Q {
    if (where === undefined) return q;
    const ctx = this.#s.where;
    // Compile eagerly, so an invalid clause throws before any SQL is built.
    let compiled: unknown;
    const probe = q.where((eb: Parameters<typeof compileWhere>[0]) => {
      compiled = compileWhere(eb, where, ctx);
      return compiled ?? eb(eb.lit(1), "=", eb.lit(1));
    });
    return compiled === undefined ? q : probe;
  }

  // deno-lint-ignore no-explicit-any
  whereExpression(where: unknown): (eb: any) => Expression<SqlBool> {
    const ctx = this.#s.where;
    // Validate now: an invalid clause throws before any query is built.
    compileWhere(expressionBuilder(), where, ctx);
    return (eb) => compileWhere(eb, where, ctx) ?? eb(eb.lit(1), "=", eb.lit(1));
  }

  // deno-lint-ignore no-explicit-any
  #applyOrder<Q extends { orderBy(...args: any[]): Q }>(q: Q, orderBy: unknown, withKey: boolean): Q {
    const terms = orderTerms(orderBy);
    for (const t of terms) checkColumn(t.column, this.#s.where);
    if (withKey) {
      const direction = terms[terms.length - 1]?.direction ?? "asc";
      for (const c of this.#s.pk) if (!terms.some((t) => t.column === c)) terms.push({ column: c, direction });
    }
    for (const t of terms) q = q.orderBy(t.column, t.direction);
    return q;
  }

  async #validate(target: ValidationTarget, schema: StandardSchemaV1 | undefined, value: unknown): Promise<Values> {
    if (schema === undefined) return value as Values;
    const result = await schema["~standard"].validate(value);
    if (result.issues !== undefined) {
      throw new ValidationError(result.issues, { table: this.#s.table, target });
    }
    return result.value as Values;
  }

  async #out(row: unknown): Promise<unknown> {
    const s = this.#s;
    const mapped = s.mapRow === undefined ? row : s.mapRow(row as never);
    return s.output === undefined ? mapped : await this.#validate("output", s.output, mapped);
  }

  async #outAll(rows: unknown[]): Promise<unknown[]> {
    const s = this.#s;
    if (s.mapRow === undefined && s.output === undefined) return rows;
    const out: unknown[] = [];
    for (const row of rows) out.push(await this.#out(row));
    return out;
  }

  /** Translates a driver error into core's typed errors (naming MySQL's unique columns). */
  async #fail(error: unknown, db: AnyDb = this.executor): Promise<never> {
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    const s = this.#s;
    const translated = parseDatabaseError(error, s.dialect);
    if (
      s.dialect === "mysql" && translated instanceof UniqueConstraintError && translated.columns === undefined &&
      translated.constraint !== undefined
    ) {
      const columns = await this.#indexColumns(db, translated.constraint).catch(() => undefined);
      if (columns !== undefined && columns.length > 0) {
        throw new UniqueConstraintError(translated.message, {
          dialect: s.dialect,
          ...(translated.driverCode === undefined ? {} : { driverCode: translated.driverCode }),
          constraint: translated.constraint,
          table: s.table,
          columns,
          cause: translated.cause,
        });
      }
    }
    throw translated;
  }

  async #indexColumns(db: AnyDb, index: string): Promise<string[]> {
    const result = await allowRawSql(() =>
      sql<{ c: string }>`select column_name as c from information_schema.statistics
        where table_schema = database() and table_name = ${this.#s.table} and index_name = ${index}
        order by seq_in_index`.execute(db)
    );
    return result.rows.map((r) => r.c);
  }

  #inTransaction<R>(fn: (db: AnyDb) => Promise<R>): Promise<R> {
    return this.executor.isTransaction ? fn(this.executor) : this.executor.transaction().execute(fn);
  }

  #chunks(rows: Values[]): Values[][] {
    const columns = new Set<string>();
    for (const row of rows) for (const c of Object.keys(row)) columns.add(c);
    const size = Math.max(1, Math.floor(MAX_PARAMETERS[this.#s.dialect] / Math.max(1, columns.size)));
    if (rows.length <= size) return [rows];
    const chunks: Values[][] = [];
    for (let i = 0; i < rows.length; i += size) chunks.push(rows.slice(i, i + size));
    return chunks;
  }

  async #selectByKeys(db: AnyDb, keys: Values[], columns: readonly string[]): Promise<Values[]> {
    if (keys.length === 0) return [];
    let q = db.selectFrom(this.#s.table).selectAll();
    if (columns.length === 1) {
      const c = columns[0]!;
      q = q.where(c, "in", keys.map((k) => k[c]));
    } else {
      q = q.where((eb) => eb.or(keys.map((k) => eb.and(columns.map((c) => eb(c, "=", k[c]))))));
    }
    const rows = (await q.execute()) as Values[];
    const byKey = new Map(rows.map((r) => [keyString(r, columns), r]));
    const out: Values[] = [];
    for (const k of keys) {
      const row = byKey.get(keyString(k, columns));
      if (row !== undefined) out.push(row);
    }
    return out;
  }

  async #autoIncrement(db: AnyDb): Promise<{ inc: number; mode: number }> {
    if (this.#s.autoIncrement !== undefined) return this.#s.autoIncrement;
    const result = await allowRawSql(() =>
      sql<{ inc: unknown; mode: unknown }>`select @@auto_increment_increment as inc, @@innodb_autoinc_lock_mode as mode`
        .execute(db)
    );
    const row = result.rows[0];
    const info = { inc: Number(row?.inc ?? 1), mode: Number(row?.mode ?? 2) };
    this.#s.autoIncrement = info;
    return info;
  }

  /** Inserts and reads back without RETURNING (MySQL/MariaDB), inside one transaction. */
  #insertReadBack(rows: Values[]): Promise<Values[]> {
    const s = this.#s;
    return this.#inTransaction(async (db) => {
      if (rows.every((r) => s.pk.every((c) => r[c] !== undefined))) {
        for (const chunk of this.#chunks(rows)) await db.insertInto(s.table).values(chunk).execute();
        return await this.#selectByKeys(db, rows, s.pk);
      }
      if (s.pk.length !== 1) {
        throw new TypeError(
          `Cannot create a row in '${s.table}' on MySQL: every column of the composite primary key must be given`,
        );
      }
      const column = s.pk[0]!;
      const { inc, mode } = await this.#autoIncrement(db);
      const keys: Values[] = [];
      // With innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT takes
      // consecutive ids (step auto_increment_increment) starting at insertId;
      // mode 2 interleaves concurrent inserts, so rows go one by one there.
      const chunks = mode === 2 ? rows.map((r) => [r]) : this.#chunks(rows);
      for (const chunk of chunks) {
        const result = await db.insertInto(s.table).values(chunk).executeTakeFirstOrThrow();
        const first = Number(result.insertId);
        if (!(first > 0)) {
          throw new TypeError(`Cannot read back the row created in '${s.table}': MySQL returned no insert id`);
        }
        chunk.forEach((row, i) => keys.push({ [column]: row[column] ?? first + i * inc }));
      }
      return await this.#selectByKeys(db, keys, s.pk);
    });
  }

  async #insert(rows: Values[]): Promise<Values[]> {
    const s = this.#s;
    const db = this.executor;
    if (s.dialect === "mysql") return await this.#insertReadBack(rows);
    const chunks = this.#chunks(rows);
    const run = async (k: AnyDb, chunk: Values[]) => {
      const q = k.insertInto(s.table).values(chunk);
      return (await (s.dialect === "mssql" ? q.outputAll("inserted") : q.returningAll()).execute()) as Values[];
    };
    if (chunks.length === 1) return await run(db, rows);
    return await this.#inTransaction(async (trx) => {
      const out: Values[] = [];
      for (const chunk of chunks) out.push(...await run(trx, chunk));
      return out;
    });
  }

  /**
   * Upserts, and refuses a result with missing rows: a key taken by a row the
   * executor's plugins hide (another tenant's, a soft-deleted one) is neither
   * inserted nor updated, which is a conflict the caller must hear about.
   */
  async #upsertAll(rows: Values[], options: UpsertOptions<Values> | undefined): Promise<Values[]> {
    const stored = await this.#upsert(rows, options);
    if (stored.length < rows.length) {
      const conflict = options?.conflict ?? this.#s.pk;
      throw new UniqueConstraintError(
        `Cannot upsert into '${this.#s.table}': the key (${conflict.join(", ")}) belongs to a row out of scope`,
        { dialect: this.#s.dialect, table: this.#s.table, columns: conflict },
      );
    }
    return stored;
  }

  async #upsert(rows: Values[], options: UpsertOptions<Values> | undefined): Promise<Values[]> {
    const s = this.#s;
    const conflict = options?.conflict ?? s.pk;
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    for (const c of [...conflict, ...columns]) checkColumn(c, s.where);
    for (const row of rows) {
      for (const c of conflict) {
        if (row[c] === undefined) {
          throw new TypeError(`Cannot upsert into '${s.table}': every row needs the conflict column '${c}'`);
        }
      }
    }
    const given = options?.update ?? columns.filter((c) => !conflict.includes(c));
    // Nothing to update: set a key column to itself, so the row still comes back.
    const update = given.length > 0 ? given : [conflict[0]!];
    const db = this.executor;
    switch (s.dialect) {
      case "postgres":
      case "sqlite": {
        const out = await db.insertInto(s.table).values(rows)
          .onConflict((oc) =>
            oc.columns(conflict as string[]).doUpdateSet((eb) =>
              Object.fromEntries(update.map((c) => [c, eb.ref(`excluded.${c}`)]))
            )
          )
          .returningAll().execute() as Values[];
        if (rows.length === 1) return out;
        const byKey = new Map(out.map((r) => [keyString(r, conflict), r]));
        return rows.map((r) => byKey.get(keyString(r, conflict))).filter((r) => r !== undefined);
      }
      case "mysql":
        return await this.#inTransaction(async (trx) => {
          await trx.insertInto(s.table).values(rows)
            .onDuplicateKeyUpdate(Object.fromEntries(update.map((c) => [c, sql`values(${sql.ref(c)})`])))
            .execute();
          return await this.#selectByKeys(trx, rows, conflict);
        });
      case "mssql": {
        const source = sql`(values ${sql.join(rows.map((r) => sql`(${sql.join(columns.map((c) => r[c] ?? null))})`))})`
          .as<"source">(sql`source(${sql.join(columns.map((c) => sql.ref(c)))})`);
        return await db.mergeInto(`${s.table} as target`)
          .using(source, (join) => {
            let on = join.onRef(`target.${conflict[0]!}`, "=", `source.${conflict[0]!}`);
            for (const c of conflict.slice(1)) on = on.onRef(`target.${c}`, "=", `source.${c}`);
            return on;
          })
          .whenMatched().thenUpdateSet((eb: AnyEB) => Object.fromEntries(update.map((c) => [c, eb.ref(`source.${c}`)])))
          .whenNotMatched().thenInsertValues((eb: AnyEB) =>
            Object.fromEntries(columns.map((c) => [c, eb.ref(`source.${c}`)]))
          )
          .outputAll("inserted")
          .execute() as Values[];
      }
    }
  }

  // ---- public API ----------------------------------------------------------

  async findById(id: unknown): Promise<unknown> {
    const key = this.#keyObject(id);
    try {
      const row = await this.#whereKey(this.executor.selectFrom(this.#s.table).selectAll(), key).executeTakeFirst();
      return row === undefined ? undefined : await this.#out(row);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async findByIds(ids: readonly unknown[]): Promise<unknown[]> {
    const keys = ids.map((id) => this.#keyObject(id));
    try {
      return await this.#outAll(await this.#selectByKeys(this.executor, keys, this.#s.pk));
    } catch (error) {
      return await this.#fail(error);
    }
  }

  findAll(options: Omit<FindOptions<Values>, "where"> = {}): Promise<unknown[]> {
    return this.find(options);
  }

  async find(options: FindOptions<Values> = {}): Promise<unknown[]> {
    const { limit, offset } = options;
    if (offset !== undefined && limit === undefined) {
      throw new TypeError(`Cannot find rows in '${this.#s.table}': 'offset' needs 'limit'`);
    }
    let q = this.#applyOrder(
      this.#applyWhere(this.executor.selectFrom(this.#s.table).selectAll(), options.where),
      options.orderBy,
      false,
    );
    if (limit !== undefined) q = q.limit(limit);
    if (offset !== undefined) q = q.offset(offset);
    try {
      return await this.#outAll(await q.execute());
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async findOne(options: Omit<FindOptions<Values>, "limit" | "offset"> = {}): Promise<unknown> {
    const [row] = await this.find({ ...options, limit: 1 });
    return row;
  }

  async count(where?: Where<Values>): Promise<number> {
    const q = this.#applyWhere(
      this.executor.selectFrom(this.#s.table).select((eb) => eb.fn.countAll().as("count")),
      where,
    );
    try {
      const row = await q.executeTakeFirst();
      return Number(row?.count ?? 0);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async exists(where?: Where<Values>): Promise<boolean> {
    let q = this.#applyWhere(this.executor.selectFrom(this.#s.table).select((eb) => eb.lit(1).as("one")), where);
    q = this.#s.dialect === "mssql" ? q.top(1) : q.limit(1);
    try {
      return (await q.executeTakeFirst()) !== undefined;
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async create(input: unknown): Promise<unknown> {
    const row = await this.#validate("create", this.#s.create, input);
    try {
      const [created] = await this.#insert([row]);
      return await this.#out(created);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async createMany(inputs: readonly unknown[]): Promise<unknown[]> {
    const rows: Values[] = [];
    for (const input of inputs) rows.push(await this.#validate("create", this.#s.create, input));
    if (rows.length === 0) return [];
    try {
      return await this.#outAll(await this.#insert(rows));
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async update(id: unknown, changes: unknown): Promise<unknown> {
    const s = this.#s;
    const key = this.#keyObject(id);
    const set = await this.#validate("update", s.update, changes);
    try {
      if (Object.keys(set).length === 0) {
        const row = await this.#whereKey(this.executor.selectFrom(s.table).selectAll(), key).executeTakeFirst();
        if (row === undefined) throw new NotFoundError(s.table, key);
        return await this.#out(row);
      }
      if (s.dialect === "mysql") {
        const row = await this.#inTransaction(async (trx) => {
          const result = await this.#whereKey(trx.updateTable(s.table).set(set), key).executeTakeFirst();
          if (result.numUpdatedRows === 0n) throw new NotFoundError(s.table, key);
          const after = { ...key };
          for (const c of s.pk) if (set[c] !== undefined) after[c] = set[c];
          return await this.#whereKey(trx.selectFrom(s.table).selectAll(), after).executeTakeFirst();
        });
        return await this.#out(row);
      }
      const q = this.#whereKey(this.executor.updateTable(s.table).set(set), key);
      const row = await (s.dialect === "mssql" ? q.outputAll("inserted") : q.returningAll()).executeTakeFirst();
      if (row === undefined) throw new NotFoundError(s.table, key);
      return await this.#out(row);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async updateMany(where: Where<Values>, changes: unknown): Promise<number> {
    const set = await this.#validate("update", this.#s.update, changes);
    if (Object.keys(set).length === 0) return await this.count(where);
    const q = this.#applyWhere(this.executor.updateTable(this.#s.table).set(set), where);
    try {
      const result = await q.executeTakeFirst();
      return Number(result.numUpdatedRows);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async delete(id: unknown): Promise<void> {
    const key = this.#keyObject(id);
    try {
      const result = await this.#whereKey(this.executor.deleteFrom(this.#s.table), key).executeTakeFirst();
      if (result.numDeletedRows === 0n) throw new NotFoundError(this.#s.table, key);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async deleteMany(where: Where<Values>): Promise<number> {
    if (where === undefined) {
      throw new TypeError(`Cannot delete rows in '${this.#s.table}': 'where' is required ({} deletes every row)`);
    }
    const q = this.#applyWhere(this.executor.deleteFrom(this.#s.table), where);
    try {
      return Number((await q.executeTakeFirst()).numDeletedRows);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async upsert(input: unknown, options?: UpsertOptions<Values>): Promise<unknown> {
    const row = await this.#validate("create", this.#s.create, input);
    try {
      const [stored] = await this.#upsertAll([row], options);
      return await this.#out(stored);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async upsertMany(inputs: readonly unknown[], options?: UpsertOptions<Values>): Promise<unknown[]> {
    const rows: Values[] = [];
    for (const input of inputs) rows.push(await this.#validate("create", this.#s.create, input));
    if (rows.length === 0) return [];
    try {
      return await this.#outAll(await this.#upsertAll(rows, options));
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async paginate(options: RepositoryPageOptions<Values>): Promise<OffsetPage<unknown>> {
    const q = this.#applyOrder(
      this.#applyWhere(this.executor.selectFrom(this.#s.table).selectAll(), options.where),
      options.orderBy,
      true,
    );
    try {
      const page = await paginate(q, { page: options.page, limit: options.limit, withTotal: options.withTotal });
      return { ...page, data: await this.#outAll(page.data) };
    } catch (error) {
      return await this.#fail(error);
    }
  }

  // deno-lint-ignore no-explicit-any
  async paginateCursor(options: RepositoryCursorOptions<any, any>): Promise<CursorPage<unknown>> {
    const s = this.#s;
    const { where, orderBy, ...rest } = options;
    // deno-lint-ignore no-explicit-any
    const order: CursorOrderBy<any, any>[] = [...(orderBy ?? [])];
    const direction = order[order.length - 1]?.direction ?? "asc";
    for (const c of s.pk) {
      if (!order.some((o) => o.column === c || o.column === `${s.table}.${c}`)) order.push({ column: c, direction });
    }
    const q = this.#applyWhere(this.executor.selectFrom(s.table).selectAll(), where);
    try {
      const page = await paginateCursor(q, { ...rest, db: this.executor, orderBy: order, tiebreaker: false });
      return { ...page, data: await this.#outAll(page.data) };
    } catch (error) {
      return await this.#fail(error);
    }
  }

  transaction<R>(fn: (repository: this) => Promise<R>): Promise<R> {
    return withTransaction(this.executor, (ctx) => fn(this.withTransaction(ctx.db)));
  }

  withTransaction(trx: AnyDb): this {
    if (this.#s.plugins.length > 0 && !isKyseraExecutor(trx)) {
      throw new TypeError(
        `Cannot bind the repository of '${this.#s.table}' to this transaction: it does not run the executor's plugins (start it from orm.executor)`,
      );
    }
    return bind(this.#s, trx) as this;
  }
}
