import {
  BinaryOperationNode,
  type Expression,
  type ExpressionBuilder,
  ExpressionWrapper,
  type Kysely,
  OperatorNode,
  type SelectQueryBuilder,
  type SqlBool,
  type StringReference,
  TupleNode,
  ValueNode,
} from "kysely";
import { createCursorCodec, type CursorCodec, type CursorValue, type CursorValueType } from "./cursor_codec.ts";
import { type DialectName, getDialect } from "./dialect.ts";
import { InvalidCursorError } from "./errors.ts";

/** One column of a keyset order. */
export interface CursorOrderBy<DB, TB extends keyof DB> {
  /** The column, optionally qualified by its table (`"posts.created_at"`). Never from user input. */
  readonly column: StringReference<DB, TB>;
  /**
   * The direction.
   *
   * @default {"asc"}
   */
  readonly direction?: "asc" | "desc" | undefined;
  /**
   * Where NULLs go, for a nullable column: the same on every dialect
   * (`NULLS FIRST/LAST` on PostgreSQL and SQLite, a `CASE` key on MySQL).
   * Leave it out only for a NOT NULL column: the order then emits no NULL
   * handling (so the index is used as is), and a page that shows a NULL in
   * the column fails with a `TypeError`.
   */
  readonly nulls?: "first" | "last" | undefined;
  /**
   * The JavaScript type the driver returns for the column. When set, a cursor
   * carrying another type is rejected with `InvalidCursorError` before any SQL
   * is built; set it for unsigned cursors on PostgreSQL, which raises errors
   * on mismatched types.
   */
  readonly type?: CursorValueType | undefined;
  /**
   * The key of the column in the result rows.
   *
   * @default {the column name without its table}
   */
  readonly key?: string | undefined;
}

/** Options of {@linkcode paginateCursor}. */
export interface CursorPaginationOptions<DB, TB extends keyof DB> {
  /**
   * The Kysely instance or transaction the query was built from. Its adapter
   * names the dialect (Kysely keeps a query builder's executor private), which
   * decides the NULL ordering syntax and whether row values are used.
   */
  readonly db: Pick<Kysely<DB>, "getExecutor">;
  /** The order: any number of columns, mixed directions. Replaces the query's own ORDER BY. */
  readonly orderBy: readonly CursorOrderBy<DB, TB>[];
  /** The page size, a positive integer. */
  readonly limit: number;
  /** Return the page after this cursor (a page's `nextCursor`). */
  readonly after?: string | undefined;
  /** Return the page before this cursor (a page's `prevCursor`). */
  readonly before?: string | undefined;
  /**
   * With neither `after` nor `before`: return the last page instead of the first.
   *
   * @default {false}
   */
  readonly fromEnd?: boolean | undefined;
  /**
   * The unique, NOT NULL column that breaks ties, appended to the order (in the
   * direction of the last order column) unless the order already has it.
   * `false` declares that the order is unique already.
   *
   * @default {"id"}
   */
  readonly tiebreaker?:
    | StringReference<DB, TB>
    | { readonly column: StringReference<DB, TB>; readonly type?: CursorValueType; readonly key?: string }
    | false
    | undefined;
  /**
   * HMAC-SHA-256 key(s) of at least 32 bytes that sign the cursors; the first
   * signs, all verify (key rotation). A signed cursor is bound to the query
   * (its SQL and parameters) and the order: a cursor of another query, order or
   * key is rejected.
   */
  readonly secret?: string | Uint8Array | readonly (string | Uint8Array)[] | undefined;
  /**
   * Anything else a cursor must belong to, such as the tenant or user the page
   * was served to (`"tenant:42"`): a cursor issued under another `bind` is
   * rejected. Meaningful with a `secret` (an unsigned cursor can be re-made).
   */
  readonly bind?: string | undefined;
  /**
   * The longest cursor accepted, in characters.
   *
   * @default {2048}
   */
  readonly maxCursorLength?: number | undefined;
}

/** A page of {@linkcode paginateCursor}. */
export interface CursorPage<O> {
  /** The rows, in the requested order (also when paging backward). */
  readonly data: O[];
  /** Pass as `after` for the next page; `null` when there is none. */
  readonly nextCursor: string | null;
  /** Pass as `before` for the previous page; `null` when there is none. */
  readonly prevCursor: string | null;
  /** Whether rows follow this page. */
  readonly hasNext: boolean;
  /** Whether rows precede this page. */
  readonly hasPrev: boolean;
}

interface Column {
  readonly column: string;
  readonly key: string;
  readonly desc: boolean;
  /** `undefined` for a NOT NULL column. */
  readonly nullsFirst: boolean | undefined;
  readonly type: CursorValueType | undefined;
}

// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;
// deno-lint-ignore no-explicit-any
type AnyQuery = SelectQueryBuilder<any, any, any>;

/**
 * Pages through a query by keyset ("cursor" or "seek" pagination): each page
 * is found by a predicate on the order columns, so a page deep in a large
 * table costs about what the first one costs when an index matches the order.
 *
 * - Any number of order columns, mixed directions. A unique tiebreaker
 *   (`id` unless told otherwise) is appended, so every row is returned exactly
 *   once, also with duplicate values and rows inserted or deleted between
 *   pages.
 * - Nullable columns say where their NULLs go (`nulls`); the order and the
 *   predicates are the same on every dialect.
 * - The predicate is a row-value comparison (`(a, b) > (?, ?)`) on
 *   PostgreSQL and SQLite for every run of same-direction NOT NULL columns,
 *   and a nested range expansion (`a >= ? and (a > ? or ...)`) elsewhere, which
 *   gives the engine a range on the leading column.
 * - Cursors are opaque base64url tokens, validated on decode (size cap, shape,
 *   columns, value types) and bound to the order; with a `secret` they are
 *   HMAC-signed and bound to this query (its SQL and parameters) as well. A
 *   bad cursor throws `InvalidCursorError` before any SQL runs.
 *
 * The query's own ORDER BY, LIMIT and OFFSET are replaced. Order columns must
 * be columns (the predicate goes in WHERE), selected in the result under
 * their `key`.
 *
 * @param query The select query to page through.
 * @param options The order, the page size and the cursor.
 * @returns The page and the cursors around it.
 * @throws {RangeError} When `limit` is not a positive integer.
 * @throws {TypeError} When the order is empty or invalid, both `after` and `before` are set,
 *   or a page row lacks an order column or holds NULL in a column without `nulls`.
 * @throws {InvalidCursorError} When the cursor is malformed, too large, forged, or of another query or order.
 *
 * @example Newest posts first, two at a time
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { Kysely, SqliteDialect } from "kysely";
 * import { paginateCursor } from "@kysera/kysera/core";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<{ posts: { id: number; score: number } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("posts").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("score", "integer", (c) => c.notNull()).execute();
 * await db.insertInto("posts").values([{ id: 1, score: 5 }, { id: 2, score: 7 }, { id: 3, score: 5 }]).execute();
 *
 * const query = db.selectFrom("posts").select(["id", "score"]);
 * const orderBy = [{ column: "score", direction: "desc", type: "number" }] as const;
 * const first = await paginateCursor(query, { db, orderBy, limit: 2 });
 * console.log(first.data); // [{ id: 2, score: 7 }, { id: 3, score: 5 }]
 * const second = await paginateCursor(query, { db, orderBy, limit: 2, after: first.nextCursor! });
 * console.log(second.data, second.hasNext); // [{ id: 1, score: 5 }] false
 * await db.destroy();
 * ```
 *
 * The second page runs (SQLite):
 *
 * ```sql
 * select "id", "score" from "posts" where ("score", "id") < (?, ?)
 * order by "score" desc, "id" desc limit ?
 * ```
 */
export async function paginateCursor<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  options: CursorPaginationOptions<DB, TB>,
): Promise<CursorPage<O>> {
  const { limit, after, before } = options;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`Cannot paginate: 'limit' must be a positive integer: current value is ${String(limit)}`);
  }
  if (after !== undefined && before !== undefined) {
    throw new TypeError("Cannot paginate: 'after' and 'before' are mutually exclusive: both are set");
  }
  const columns = resolveColumns(options);
  const base = withoutPaging(query as unknown as AnyQuery);
  const dialect = getDialect(options.db);
  const codec = codecFor(columns, base, options);

  const backward = before !== undefined || (after === undefined && options.fromEnd === true);
  const token = backward ? before : after;
  let q = base;
  if (token !== undefined) {
    const values = codec.signed ? await codec.decode(token) : codec.decodeSync(token);
    if (dialect === "sqlite") checkSqliteValues(values, columns);
    const seek = backward ? columns.map(reverse) : columns;
    q = q.where((eb) => afterPredicate(eb, seek, values, 0, dialect));
  }
  for (const c of backward ? columns.map(reverse) : columns) q = orderBy(q, c, dialect);
  const rows = (await q.limit(limit + 1).execute()) as O[];

  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  if (backward) data.reverse();
  checkRows(data as Record<string, unknown>[], columns);
  const hasNext = backward ? before !== undefined : more;
  const hasPrev = backward ? more : after !== undefined;
  const first = data[0] as Record<string, unknown> | undefined;
  const last = data[data.length - 1] as Record<string, unknown> | undefined;
  const encode = (row: Record<string, unknown> | undefined) => {
    if (row === undefined) return null;
    const values = columns.map((c) => row[c.key] as CursorValue);
    return codec.signed ? codec.encode(values) : codec.encodeSync(values);
  };
  const next = hasNext ? encode(last) : null;
  const prev = hasPrev ? encode(first) : null;
  const [nextCursor, prevCursor]: (string | null)[] = codec.signed
    ? await Promise.all([next, prev])
    : [next as string | null, prev as string | null];
  return { data, nextCursor: nextCursor ?? null, prevCursor: prevCursor ?? null, hasNext, hasPrev };
}

function resolveColumns<DB, TB extends keyof DB>(options: CursorPaginationOptions<DB, TB>): Column[] {
  const { orderBy } = options;
  if (!Array.isArray(orderBy) || orderBy.length === 0) {
    throw new TypeError("Cannot paginate: 'orderBy' must list at least one column: current length is 0");
  }
  const columns: Column[] = orderBy.map((entry, i) => {
    const column = entry?.column as unknown;
    if (typeof column !== "string" || column === "") {
      throw new TypeError(`Cannot paginate: 'orderBy[${i}].column' must be a column name: current value is ${column}`);
    }
    const direction = entry.direction ?? "asc";
    if (direction !== "asc" && direction !== "desc") {
      throw new TypeError(
        `Cannot paginate: 'orderBy[${i}].direction' must be "asc" or "desc": current value is ${String(direction)}`,
      );
    }
    const nulls = entry.nulls;
    if (nulls !== undefined && nulls !== "first" && nulls !== "last") {
      throw new TypeError(
        `Cannot paginate: 'orderBy[${i}].nulls' must be "first" or "last": current value is ${String(nulls)}`,
      );
    }
    return {
      column,
      key: entry.key ?? keyOf(column),
      desc: direction === "desc",
      nullsFirst: nulls === undefined ? undefined : nulls === "first",
      type: entry.type,
    };
  });
  const tiebreaker = options.tiebreaker ?? "id";
  if (tiebreaker !== false) {
    const spec: {
      readonly column: unknown;
      readonly type?: CursorValueType | undefined;
      readonly key?: string | undefined;
    } = typeof tiebreaker === "string" ? { column: tiebreaker } : tiebreaker;
    const column = spec.column;
    if (typeof column !== "string" || column === "") {
      throw new TypeError(`Cannot paginate: 'tiebreaker' must name a column: current value is ${String(column)}`);
    }
    const key = spec.key ?? keyOf(column);
    if (!columns.some((c) => c.column === column || c.key === key)) {
      columns.push({ column, key, desc: columns[columns.length - 1]!.desc, nullsFirst: undefined, type: spec.type });
    }
  }
  const keys = new Set(columns.map((c) => c.key));
  if (keys.size !== columns.length) {
    throw new TypeError("Cannot paginate: 'orderBy' must not name a column twice: current order repeats one");
  }
  return columns;
}

function keyOf(column: string): string {
  const dot = column.lastIndexOf(".");
  return dot === -1 ? column : column.slice(dot + 1);
}

function reverse(c: Column): Column {
  return { ...c, desc: !c.desc, nullsFirst: c.nullsFirst === undefined ? undefined : !c.nullsFirst };
}

/**
 * Binds the cursor to the order and, when cursors are signed, to the query's
 * SQL and parameters, so a signed cursor of another table, filter or order is
 * rejected. Unsigned cursors can be forged by anyone, so binding them to the
 * query would prove nothing; they are bound to the order only, which spares
 * every page a second compile of the query, and their codec is cached.
 */
function codecFor<DB, TB extends keyof DB>(
  columns: Column[],
  base: AnyQuery,
  options: CursorPaginationOptions<DB, TB>,
): CursorCodec {
  let context = JSON.stringify(columns.map((c) => [c.column, c.key, c.desc, c.nullsFirst ?? null, c.type ?? null])) +
    "\u0000" + (options.bind ?? "");
  const create = () =>
    createCursorCodec({
      columns: columns.map((c) => ({ name: c.key, type: c.type, nullable: c.nullsFirst !== undefined })),
      context,
      secret: options.secret,
      maxLength: options.maxCursorLength,
    });
  if (options.secret !== undefined) {
    const compiled = base.compile();
    context += "\u0000" + compiled.sql + "\u0000" + JSON.stringify(compiled.parameters, jsonSafe);
    return create();
  }
  const cacheKey = `${options.maxCursorLength ?? ""}\u0000${context}`;
  let codec = UNSIGNED_CODECS.get(cacheKey);
  if (codec === undefined) {
    if (UNSIGNED_CODECS.size >= MAX_CACHED_CODECS) UNSIGNED_CODECS.clear();
    codec = create();
    UNSIGNED_CODECS.set(cacheKey, codec);
  }
  return codec;
}

/** Unsigned codecs by order spec: a handful per application. Bounded: cleared when full. */
const UNSIGNED_CODECS = new Map<string, CursorCodec>();
const MAX_CACHED_CODECS = 256;

/** The query without ORDER BY, LIMIT and OFFSET (paging sets its own); unchanged when it has none. */
function withoutPaging(query: AnyQuery): AnyQuery {
  const node = query.toOperationNode();
  let q = query;
  if (node.orderBy !== undefined) q = q.clearOrderBy();
  if (node.limit !== undefined) q = q.clearLimit();
  if (node.offset !== undefined) q = q.clearOffset();
  return q;
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return Array.from(value);
  return value;
}

/** node:sqlite binds neither booleans nor Dates; a cursor must not make the driver throw. */
function checkSqliteValues(values: CursorValue[], columns: Column[]): void {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value === "boolean" || value instanceof Date) {
      throw new InvalidCursorError(
        "value",
        `Cannot decode the cursor: column '${columns[i]!.key}' holds a value SQLite cannot bind`,
      );
    }
  }
}

function checkRows(rows: Record<string, unknown>[], columns: Column[]): void {
  for (const row of rows) {
    for (const c of columns) {
      const value = row[c.key];
      if (value === undefined) {
        throw new TypeError(
          `Cannot paginate: the rows must include order column '${c.key}': select it: current keys are ${
            Object.keys(row).join(", ")
          }`,
        );
      }
      if (value === null && c.nullsFirst === undefined) {
        throw new TypeError(
          `Cannot paginate: order column '${c.key}' holds NULL: set 'nulls' on its order entry: current value is null`,
        );
      }
    }
  }
}

const TRUE = Symbol("true");
const FALSE = Symbol("false");
type Condition = Expression<SqlBool> | typeof TRUE | typeof FALSE;

/**
 * The rows strictly after `values` in the order `columns[from..]`:
 * `after(i) = ge(i) and (gt(i) or after(i + 1))`, with a row-value comparison
 * for a trailing run of same-direction NOT NULL columns where the dialect
 * compares row values through an index.
 */
function afterPredicate(
  eb: AnyEB,
  columns: Column[],
  values: CursorValue[],
  from: number,
  dialect: DialectName,
): Expression<SqlBool> {
  const condition = after(eb, columns, values, from, dialect);
  if (condition === TRUE) return eb.lit(true) as unknown as Expression<SqlBool>;
  if (condition === FALSE) return eb.lit(false) as unknown as Expression<SqlBool>;
  return condition;
}

function after(eb: AnyEB, columns: Column[], values: CursorValue[], i: number, dialect: DialectName): Condition {
  if (ROW_VALUES[dialect] && columns.length - i > 1 && sameDirectionNotNull(columns, i)) {
    const op = columns[i]!.desc ? "<" : ">";
    return new ExpressionWrapper(
      BinaryOperationNode.create(
        TupleNode.create(columns.slice(i).map((c) => eb.ref(c.column).toOperationNode())),
        OperatorNode.create(op),
        TupleNode.create(values.slice(i).map((v) => ValueNode.create(v))),
      ),
    ) as unknown as Expression<SqlBool>;
  }
  const c = columns[i]!;
  const value = values[i]!;
  const ref = eb.ref(c.column);
  const gtOp = c.desc ? "<" : ">";
  const geOp = c.desc ? "<=" : ">=";
  let gt: Condition;
  let ge: Condition;
  let eq: Condition;
  if (value === null) {
    // NULLs first: every non-NULL follows; NULLs last: nothing but NULLs ties.
    eq = eb(ref, "is", null);
    gt = c.nullsFirst ? eb(ref, "is not", null) : FALSE;
    ge = c.nullsFirst ? TRUE : eq;
  } else {
    eq = eb(ref, "=", value);
    gt = eb(ref, gtOp, value);
    ge = eb(ref, geOp, value);
    if (c.nullsFirst === false) {
      gt = eb.or([gt, eb(ref, "is", null)]);
      ge = eb.or([ge, eb(ref, "is", null)]);
    }
  }
  if (i === columns.length - 1) return gt;
  const rest = after(eb, columns, values, i + 1, dialect);
  const gtOrRest = or(eb, gt, rest);
  if (ge === TRUE) return gtOrRest;
  if (gt === FALSE) return and(eb, eq, rest);
  return and(eb, ge, gtOrRest);
}

function or(eb: AnyEB, a: Condition, b: Condition): Condition {
  if (a === TRUE || b === TRUE) return TRUE;
  if (a === FALSE) return b;
  if (b === FALSE) return a;
  return eb.or([a, b]);
}

function and(eb: AnyEB, a: Condition, b: Condition): Condition {
  if (a === FALSE || b === FALSE) return FALSE;
  if (a === TRUE) return b;
  if (b === TRUE) return a;
  return eb.and([a, b]);
}

function sameDirectionNotNull(columns: Column[], from: number): boolean {
  const desc = columns[from]!.desc;
  for (let i = from; i < columns.length; i++) {
    if (columns[i]!.desc !== desc || columns[i]!.nullsFirst !== undefined) return false;
  }
  return true;
}

/**
 * Dialects whose planner turns a row-value comparison into an index range
 * (checked with EXPLAIN; see the pagination bench).
 */
const ROW_VALUES: Record<DialectName, boolean> = {
  postgres: true,
  sqlite: true,
  mysql: false,
  mssql: false,
};

function orderBy(q: AnyQuery, c: Column, dialect: DialectName): AnyQuery {
  const dir = c.desc ? "desc" : "asc";
  if (c.nullsFirst === undefined) return q.orderBy(c.column, dir);
  if (dialect === "postgres" || dialect === "sqlite") {
    return q.orderBy(c.column, (ob) => (c.desc ? ob.desc() : ob.asc())[c.nullsFirst ? "nullsFirst" : "nullsLast"]());
  }
  // MySQL and MSSQL have no NULLS FIRST/LAST: sort on "is null" first.
  return q
    .orderBy(
      (eb) => eb.case().when(eb.ref(c.column), "is", null).then(eb.lit(1)).else(eb.lit(0)).end(),
      c.nullsFirst ? "desc" : "asc",
    )
    .orderBy(c.column, dir);
}
