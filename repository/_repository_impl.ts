import { type Expression, expressionBuilder, type Kysely, sql, type SqlBool } from "kysely";
import {
  type CursorOrderBy,
  type CursorPage,
  getDialect,
  NotFoundError,
  type OffsetPage,
  paginate,
  paginateCursor,
  parseDatabaseError,
  UniqueConstraintError,
} from "../core/mod.ts";
import { allowRawSql, isKyseraExecutor, type KyseraPlugin } from "../executor/mod.ts";
import { transaction } from "../dal/mod.ts";
import { UnfilteredWriteError, ValidationError, type ValidationTarget } from "./errors.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";
import type {
  FindOptions,
  Repository,
  RepositoryConfig,
  RepositoryCursorOptions,
  RepositoryPageOptions,
  UpsertOptions,
} from "./repository.ts";
import type { Where } from "./where.ts";
import { checkColumn, compileWhere } from "./_where.ts";
import { defined, keyObject } from "./_keys.ts";
import { insertRows, selectByKeys, type Shared, upsertRows } from "./_dialect_writes.ts";

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
type Values = Record<string, unknown>;

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
  const pk = Object.freeze(typeof primaryKey === "string" ? [primaryKey] : [...(primaryKey as string[])]);
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

function orderTerms(orderBy: unknown): { column: string; direction: "asc" | "desc" }[] {
  if (orderBy === undefined) return [];
  const list = Array.isArray(orderBy) ? orderBy : [orderBy];
  return list.map((o) =>
    typeof o === "string" ? { column: o, direction: "asc" } : { column: o.column, direction: o.direction ?? "asc" }
  );
}

// deno-lint-ignore no-explicit-any
type AnyRepository = Repository<any, string, any, unknown, unknown, unknown>;

/** The config-form repository. Declares the public interface, so the two cannot drift. */
class RepositoryImpl implements AnyRepository {
  readonly #s: Shared;
  readonly executor: AnyDb;
  readonly tableName: string;
  readonly primaryKey: unknown;
  readonly primaryKeyColumns: readonly string[];

  constructor(shared: Shared, db: AnyDb) {
    this.#s = shared;
    this.executor = db;
    this.tableName = shared.table;
    this.primaryKey = shared.primaryKey;
    this.primaryKeyColumns = shared.pk;
  }

  // ---- helpers -------------------------------------------------------------

  keyOf(id: unknown): Values {
    const s = this.#s;
    return keyObject(s.table, s.pk, s.single, id);
  }

  // deno-lint-ignore no-explicit-any
  #whereKey<Q extends { where(...args: any[]): Q }>(q: Q, key: Values): Q {
    for (const c of this.#s.pk) q = q.where(c, "=", key[c]);
    return q;
  }

  // deno-lint-ignore no-explicit-any
  #applyWhere<Q extends { where(...args: any[]): Q }>(q: Q, where: unknown): Q {
    if (where === undefined) return q;
    // Compiled now, once, with a free-standing expression builder (column
    // references are unqualified either way), so an invalid clause throws
    // before any SQL is built, and an empty one adds no condition.
    const expression = compileWhere(expressionBuilder(), where, this.#s.where);
    return expression === undefined ? q : q.where(expression);
  }

  // deno-lint-ignore no-explicit-any
  whereExpression(where: unknown): (eb: any) => Expression<SqlBool> {
    const ctx = this.#s.where;
    // Validate now: an invalid clause throws before any query is built.
    compileWhere(expressionBuilder(), where, ctx);
    return (eb) => compileWhere(eb, where, ctx) ?? eb(eb.lit(1), "=", eb.lit(1));
  }

  // deno-lint-ignore no-explicit-any
  writeFilter(where: unknown, operation: "update" | "delete"): (eb: any) => Expression<SqlBool> {
    const ctx = this.#s.where;
    if (where === undefined || compileWhere(expressionBuilder(), where, ctx) === undefined) {
      throw new UnfilteredWriteError(this.#s.table, operation);
    }
    return (eb) => compileWhere(eb, where, ctx)!;
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

  /** Validated input, without its `undefined` values (a partial schema's absent fields). */
  async #input(target: "create" | "update", value: unknown): Promise<Values> {
    const s = this.#s;
    const row = await this.#validate(target, target === "create" ? s.create : s.update, value);
    if (typeof row !== "object" || row === null) {
      throw new TypeError(
        `Cannot ${target} a row in '${s.table}': the input must be an object: current value is ${row}`,
      );
    }
    return defined(row);
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

  /**
   * Runs a write and maps its stored rows. With an output schema or
   * `mapRow`, both run in one transaction (a savepoint inside the
   * caller's), so a stored row that fails them is rolled back: a
   * `ValidationError` always means nothing was written.
   */
  async #written<R>(write: (db: AnyDb) => Promise<R>, out: (stored: R) => Promise<unknown>): Promise<unknown> {
    const s = this.#s;
    try {
      if (s.output === undefined && s.mapRow === undefined) return await out(await write(this.executor));
      return await transaction(this.executor, async ({ db }) => await out(await write(db)));
    } catch (error) {
      return await this.#fail(error);
    }
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

  // ---- public API ----------------------------------------------------------

  async findById(id: unknown): Promise<unknown> {
    const key = this.keyOf(id);
    try {
      const row = await this.#whereKey(this.executor.selectFrom(this.#s.table).selectAll(), key).executeTakeFirst();
      return row === undefined ? undefined : await this.#out(row);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async findByIdOrThrow(id: unknown): Promise<unknown> {
    const key = this.keyOf(id);
    let row: unknown;
    try {
      row = await this.#whereKey(this.executor.selectFrom(this.#s.table).selectAll(), key).executeTakeFirst();
    } catch (error) {
      return await this.#fail(error);
    }
    if (row === undefined) throw new NotFoundError(this.#s.table, key);
    return await this.#out(row as never);
  }

  async findByIds(ids: readonly unknown[]): Promise<unknown[]> {
    const keys = ids.map((id) => this.keyOf(id));
    try {
      return await this.#outAll(await selectByKeys(this.#s, this.executor, keys, this.#s.pk));
    } catch (error) {
      return await this.#fail(error);
    }
  }

  // deno-lint-ignore no-explicit-any
  findAll(options: Omit<FindOptions<Values, any>, "where"> = {}): Promise<unknown[]> {
    return this.find(options);
  }

  // deno-lint-ignore no-explicit-any
  async find(options: FindOptions<Values, any> = {}): Promise<unknown[]> {
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

  // deno-lint-ignore no-explicit-any
  async findOne(options: Omit<FindOptions<Values, any>, "limit" | "offset"> = {}): Promise<unknown> {
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
    const row = await this.#input("create", input);
    return await this.#written((db) => insertRows(this.#s, db, [row]), ([created]) => this.#out(created));
  }

  async createMany(inputs: readonly unknown[]): Promise<unknown[]> {
    const rows: Values[] = [];
    for (const input of inputs) rows.push(await this.#input("create", input));
    if (rows.length === 0) return [];
    return await this.#written((db) => insertRows(this.#s, db, rows), (stored) => this.#outAll(stored)) as unknown[];
  }

  async update(id: unknown, changes: unknown): Promise<unknown> {
    const s = this.#s;
    const key = this.keyOf(id);
    const set = await this.#input("update", changes);
    if (Object.keys(set).length === 0) {
      // Nothing to set (every change was `undefined`): no UPDATE, the current row.
      try {
        const row = await this.#whereKey(this.executor.selectFrom(s.table).selectAll(), key).executeTakeFirst();
        if (row === undefined) throw new NotFoundError(s.table, key);
        return await this.#out(row);
      } catch (error) {
        return await this.#fail(error);
      }
    }
    const write = async (db: AnyDb): Promise<unknown> => {
      if (s.dialect === "mysql") {
        return await transaction(db, async ({ db: trx }) => {
          const result = await this.#whereKey(trx.updateTable(s.table).set(set), key).executeTakeFirst();
          if (result.numUpdatedRows === 0n) throw new NotFoundError(s.table, key);
          const after = { ...key };
          for (const c of s.pk) if (set[c] !== undefined) after[c] = set[c];
          return await this.#whereKey(trx.selectFrom(s.table).selectAll(), after).executeTakeFirst();
        });
      }
      const q = this.#whereKey(db.updateTable(s.table).set(set), key);
      const row = await (s.dialect === "mssql" ? q.outputAll("inserted") : q.returningAll()).executeTakeFirst();
      if (row === undefined) throw new NotFoundError(s.table, key);
      return row;
    };
    return await this.#written(write, (row) => this.#out(row));
  }

  async updateMany(where: Where<Values>, changes: unknown): Promise<number> {
    return await this.#updateWhere(this.writeFilter(where, "update"), where, changes);
  }

  async updateAll(changes: unknown): Promise<number> {
    return await this.#updateWhere(undefined, undefined, changes);
  }

  async #updateWhere(
    // deno-lint-ignore no-explicit-any
    filter: ((eb: any) => Expression<SqlBool>) | undefined,
    where: Where<Values> | undefined,
    changes: unknown,
  ): Promise<number> {
    const set = await this.#input("update", changes);
    // Nothing to set: no UPDATE; the rows that would have matched.
    if (Object.keys(set).length === 0) return await this.count(where);
    let q = this.executor.updateTable(this.#s.table).set(set);
    if (filter !== undefined) q = q.where(filter);
    try {
      const result = await q.executeTakeFirst();
      return Number(result.numUpdatedRows);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async delete(id: unknown): Promise<void> {
    const key = this.keyOf(id);
    try {
      const result = await this.#whereKey(this.executor.deleteFrom(this.#s.table), key).executeTakeFirst();
      if (result.numDeletedRows === 0n) throw new NotFoundError(this.#s.table, key);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async deleteMany(where: Where<Values>): Promise<number> {
    const filter = this.writeFilter(where, "delete");
    try {
      return Number((await this.executor.deleteFrom(this.#s.table).where(filter).executeTakeFirst()).numDeletedRows);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async deleteAll(): Promise<number> {
    try {
      return Number((await this.executor.deleteFrom(this.#s.table).executeTakeFirst()).numDeletedRows);
    } catch (error) {
      return await this.#fail(error);
    }
  }

  async upsert(input: unknown, options?: UpsertOptions<Values>): Promise<unknown> {
    const row = await this.#input("create", input);
    return await this.#written((db) => upsertRows(this.#s, db, [row], options), ([stored]) => this.#out(stored));
  }

  async upsertMany(inputs: readonly unknown[], options?: UpsertOptions<Values>): Promise<unknown[]> {
    const rows: Values[] = [];
    for (const input of inputs) rows.push(await this.#input("create", input));
    if (rows.length === 0) return [];
    return await this.#written(
      (db) => upsertRows(this.#s, db, rows, options),
      (stored) => this.#outAll(stored),
    ) as unknown[];
  }

  // deno-lint-ignore no-explicit-any
  async paginate(options: RepositoryPageOptions<Values, any>): Promise<OffsetPage<unknown>> {
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
  async paginateCursor(options: RepositoryCursorOptions<any, any, any>): Promise<CursorPage<unknown>> {
    const s = this.#s;
    const { where, orderBy, ...rest } = options;
    const given: unknown[] = orderBy === undefined ? [] : Array.isArray(orderBy) ? orderBy : [orderBy];
    // deno-lint-ignore no-explicit-any
    const order: CursorOrderBy<any, any>[] = given.map((o) => typeof o === "string" ? { column: o } : o as any);
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
    return transaction(this.executor, (ctx) => fn(this.bind(ctx.db)));
  }

  /** @deprecated Use {@linkcode RepositoryImpl.bind}. */
  withTransaction(trx: AnyDb): this {
    return this.bind(trx);
  }

  bind(trx: AnyDb): this {
    if (this.#s.plugins.length > 0 && !isKyseraExecutor(trx)) {
      throw new TypeError(
        `Cannot bind the repository of '${this.#s.table}' to this transaction: it does not run the executor's plugins (start it from orm.executor)`,
      );
    }
    return bind(this.#s, trx) as this;
  }
}
