import {
  AndNode,
  BinaryOperationNode,
  type Expression,
  expressionBuilder,
  ExpressionWrapper,
  type Kysely,
  type OperationNode,
  OperatorNode,
  OrderByItemNode,
  OrNode,
  ParensNode,
  RawNode,
  type SelectQueryBuilder,
  type SqlBool,
  type StringReference,
  TupleNode,
  ValueNode,
} from "kysely";
import {
  createCursorCodec,
  type CursorCodec,
  type CursorColumn,
  type CursorValue,
  type CursorValueType,
} from "./cursor_codec.ts";
import { type DialectName, dialectOfQuery, getDialect } from "./dialect.ts";
import type { CheckedOrder, LooseOrder } from "./order_input.ts";
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

/** The options of an order entry of {@linkcode paginateCursor} besides `column` and `direction`, with their values. */
export interface CursorOrderOptions {
  /** See {@linkcode CursorOrderBy.nulls}. */
  readonly nulls: "first" | "last" | undefined;
  /** See {@linkcode CursorOrderBy.type}. */
  readonly type: CursorValueType | undefined;
  /** See {@linkcode CursorOrderBy.key}. */
  readonly key: string | undefined;
}

/**
 * A keyset order in any form: a column, one {@linkcode CursorOrderBy}, or an
 * array of both (as `find` and `paginate` accept).
 */
export type CursorOrder<DB, TB extends keyof DB> =
  | StringReference<DB, TB>
  | CursorOrderBy<DB, TB>
  | readonly (StringReference<DB, TB> | CursorOrderBy<DB, TB>)[];

/**
 * Options of {@linkcode paginateCursor}.
 *
 * @typeParam Order The order as written (inferred): a hoisted constant needs no `as const`.
 */
export interface CursorPaginationOptions<DB, TB extends keyof DB, Order extends LooseOrder = CursorOrder<DB, TB>> {
  /**
   * The Kysely instance or transaction the query was built from. Its adapter
   * names the dialect (Kysely keeps a query builder's executor private), which
   * decides the NULL ordering syntax and whether row values are used. Not
   * needed for a query built from a Kysera executor: the executor tells.
   */
  readonly db?: Pick<Kysely<DB>, "getExecutor"> | undefined;
  /**
   * The order: a column, a {@linkcode CursorOrderBy}, or an array of both;
   * any number of columns, mixed directions. Replaces the query's own ORDER
   * BY. Literal column names are checked at compile time; a hoisted
   * constant (strings widened) is checked at run time.
   */
  readonly orderBy: Order & CheckedOrder<Order, StringReference<DB, TB>, CursorOrderOptions>;
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
type AnyQuery = SelectQueryBuilder<any, any, any>;
type Node = Readonly<OperationNode>;

/**
 * Everything about one order that does not depend on the cursor values, the
 * page size or the query: built once per order and dialect and cached, so a
 * page only decodes its cursor, makes a few value nodes and runs.
 */
interface Plan {
  /** The order, tiebreaker included, in the requested direction. */
  readonly columns: readonly Column[];
  readonly codecColumns: readonly CursorColumn[];
  /** The resolved order, which every cursor of this order is bound to. */
  readonly order: string;
  /** Codecs of unsigned cursors, by `maxCursorLength` and `bind`. Bounded: cleared when full. */
  readonly codecs: Map<string, CursorCodec>;
  readonly forward: Side;
  /** The order reversed, for pages read backward. */
  readonly backward: Side;
}

/** The seek predicate's parts and the ORDER BY of one reading direction. */
interface Side {
  readonly seek: readonly Seek[];
  /**
   * Where the trailing row-value comparison starts (`(b, id) < (?, ?)`), or
   * -1 when there is none.
   */
  readonly rowFrom: number;
  readonly rowRefs: Node | undefined;
  readonly rowOperator: Node | undefined;
  /** Appends one column's ORDER BY items, each. */
  readonly orderBy: readonly ((q: AnyQuery) => AnyQuery)[];
}

/** One column of the seek predicate, with its prebuilt (immutable) nodes. */
interface Seek {
  readonly ref: Node;
  /** `>` (or `<` when descending). */
  readonly gt: Node;
  /** `>=` (or `<=` when descending). */
  readonly ge: Node;
  readonly isNull: Node;
  readonly isNotNull: Node;
  readonly nullsFirst: boolean | undefined;
}

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
 * - What depends on the order alone (its validation, the column references,
 *   the ORDER BY, the predicate's shape, the unsigned codec) is built once and
 *   reused: found by the `orderBy` array itself (checked against its current
 *   entries on every call) when the order is declared once, as a constant,
 *   and by its resolved form when the array is built anew for each call.
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
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { paginateCursor } from "@kysera/kysera/core"; // npm: "kysera/core"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
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
 * assert.deepEqual(first.data.map((p) => p.id), [2, 3]);
 * const second = await paginateCursor(query, { db, orderBy, limit: 2, after: first.nextCursor! });
 * assert.deepEqual(second.data.map((p) => p.id), [1]);
 * assert.equal(second.hasNext, false);
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
export async function paginateCursor<DB, TB extends keyof DB, O, const Order extends LooseOrder = CursorOrder<DB, TB>>(
  query: SelectQueryBuilder<DB, TB, O>,
  options: CursorPaginationOptions<DB, TB, Order>,
): Promise<CursorPage<O>> {
  const { limit, after, before } = options;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`Cannot paginate: 'limit' must be a positive integer: current value is ${String(limit)}`);
  }
  if (after !== undefined && before !== undefined) {
    throw new TypeError("Cannot paginate: 'after' and 'before' are mutually exclusive: both are set");
  }
  const order = orderArray(options.orderBy);
  const opts = (order === options.orderBy ? options : { ...options, orderBy: order }) as unknown as Options<DB, TB>;
  const dialect = opts.db === undefined ? queryDialect(query) : dialectOf(opts.db);
  const plan = planFor(opts, dialect);
  const { columns } = plan;
  // `limit()` below replaces any LIMIT; ORDER BY items would be appended to, and OFFSET kept.
  let q = (query as unknown as AnyQuery).clearOrderBy().clearOffset();
  const codec = options.secret === undefined ? unsignedCodec(plan, opts) : signedCodec(plan, q.clearLimit(), opts);

  const backward = before !== undefined || (after === undefined && options.fromEnd === true);
  const side = backward ? plan.backward : plan.forward;
  const token = backward ? before : after;
  if (token !== undefined) {
    const values = codec.signed ? await codec.decode(token) : codec.decodeSync(token);
    if (dialect === "sqlite") checkSqliteValues(values, columns);
    q = q.where(new ExpressionWrapper(seekPredicate(side, values)) as Expression<SqlBool>);
  }
  for (const orderBy of side.orderBy) q = orderBy(q);
  const rows = (await q.limit(limit + 1).execute()) as Record<string, unknown>[];

  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  if (backward) data.reverse();
  checkRows(data, columns);
  const hasNext = backward ? before !== undefined : more;
  const hasPrev = backward ? more : after !== undefined;
  const next = hasNext ? encodeRow(codec, columns, data[data.length - 1]) : null;
  const prev = hasPrev ? encodeRow(codec, columns, data[0]) : null;
  const [nextCursor, prevCursor] = codec.signed
    ? await Promise.all([next, prev])
    : [next as string | null, prev as string | null];
  return { data: data as O[], nextCursor: nextCursor ?? null, prevCursor: prevCursor ?? null, hasNext, hasPrev };
}

/** The options as the plan works with them: the order as an array of entries. */
type Options<DB, TB extends keyof DB> = Omit<CursorPaginationOptions<DB, TB>, "orderBy"> & {
  readonly orderBy: readonly CursorOrderBy<DB, TB>[];
};

/** Orders given as one column, by column (bounded: cleared when full). */
const COLUMN_ORDERS = new Map<string, readonly { column: string }[]>();
/** Orders given as one entry object, by that object (its fields are read live, so a change is seen). */
const ENTRY_ORDERS = new WeakMap<object, readonly object[]>();

/**
 * The order as an array of entry objects: the array itself when it is one
 * (so the plan cache finds it), a cached array for one column or one entry.
 */
function orderArray(orderBy: unknown): unknown {
  if (Array.isArray(orderBy)) {
    for (const entry of orderBy) {
      if (typeof entry === "string") return orderBy.map((e) => typeof e === "string" ? { column: e } : e);
    }
    return orderBy;
  }
  if (typeof orderBy === "string") {
    let order = COLUMN_ORDERS.get(orderBy);
    if (order === undefined) {
      if (COLUMN_ORDERS.size >= 256) COLUMN_ORDERS.clear();
      COLUMN_ORDERS.set(orderBy, order = Object.freeze([Object.freeze({ column: orderBy })]));
    }
    return order;
  }
  if (typeof orderBy === "object" && orderBy !== null) {
    let order = ENTRY_ORDERS.get(orderBy);
    if (order === undefined) ENTRY_ORDERS.set(orderBy, order = Object.freeze([orderBy]));
    return order;
  }
  return orderBy;
}

function queryDialect(query: { toOperationNode(): unknown }): DialectName {
  const dialect = dialectOfQuery(query);
  if (dialect === undefined) {
    throw new TypeError(
      "Cannot paginate: the query's dialect is unknown: pass 'db' (the Kysely instance the query was built from) or build the query from a Kysera executor",
    );
  }
  return dialect;
}

/** Dialects by Kysely instance or transaction (whose adapter never changes), so a page need not read the adapter. */
const DIALECTS = new WeakMap<object, DialectName>();

function dialectOf(db: Pick<Kysely<never>, "getExecutor">): DialectName {
  let dialect = DIALECTS.get(db);
  if (dialect === undefined) {
    dialect = getDialect(db);
    DIALECTS.set(db, dialect);
  }
  return dialect;
}

/** The cursor of a row (a promise when signed), or `null` when there is no row. */
function encodeRow(
  codec: CursorCodec,
  columns: readonly Column[],
  row: Record<string, unknown> | undefined,
): string | Promise<string> | null {
  if (row === undefined) return null;
  const values = new Array<CursorValue>(columns.length);
  for (let i = 0; i < columns.length; i++) values[i] = row[columns[i]!.key] as CursorValue;
  return codec.signed ? codec.encode(values) : codec.encodeSync(values);
}

/** A plan as cached for one `orderBy` array, with the options it was made for. */
interface CachedPlan {
  /** Each entry's column, direction, nulls, type and key, flattened. */
  readonly entries: readonly unknown[];
  readonly tiebreaker: unknown;
  /** The tiebreaker's column, type and key when it is given as an object. */
  readonly tiebreakerFields: readonly unknown[] | undefined;
  readonly dialect: DialectName;
  readonly plan: Plan;
}

/**
 * Plans by `orderBy` array: the fast path, for an order declared once. Every
 * hit is checked against the array's current entries (an array can be
 * changed in place), so a stale plan is never used.
 */
const PLANS_BY_ARRAY = new WeakMap<object, CachedPlan[]>();
const MAX_PLANS_PER_ARRAY = 8;
/** Plans by resolved order: for orders built anew on each call. Bounded: cleared when full. */
const PLANS_BY_KEY = new Map<string, Plan>();
const MAX_PLANS_BY_KEY = 256;

function planFor<DB, TB extends keyof DB>(options: Options<DB, TB>, dialect: DialectName): Plan {
  const orderBy = options.orderBy as readonly CursorOrderBy<DB, TB>[] | undefined;
  const cached = typeof orderBy === "object" && orderBy !== null ? PLANS_BY_ARRAY.get(orderBy) : undefined;
  if (cached !== undefined) {
    for (const entry of cached) if (isPlanOf(entry, options, dialect)) return entry.plan;
  }
  const columns = resolveColumns(options);
  const order = JSON.stringify(columns.map((c) => [c.column, c.key, c.desc, c.nullsFirst ?? null, c.type ?? null]));
  const key = `${dialect}\u0000${order}`;
  let plan = PLANS_BY_KEY.get(key);
  if (plan === undefined) {
    plan = createPlan(columns, order, dialect);
    if (PLANS_BY_KEY.size >= MAX_PLANS_BY_KEY) PLANS_BY_KEY.clear();
    PLANS_BY_KEY.set(key, plan);
  }
  const entry: CachedPlan = {
    entries: orderBy!.flatMap((e) => [e.column, e.direction, e.nulls, e.type, e.key]),
    tiebreaker: options.tiebreaker,
    tiebreakerFields: tiebreakerFields(options.tiebreaker),
    dialect,
    plan,
  };
  if (cached === undefined) PLANS_BY_ARRAY.set(orderBy!, [entry]);
  else {
    if (cached.length >= MAX_PLANS_PER_ARRAY) cached.shift();
    cached.push(entry);
  }
  return plan;
}

function tiebreakerFields(tiebreaker: unknown): unknown[] | undefined {
  if (typeof tiebreaker !== "object" || tiebreaker === null) return undefined;
  const { column, type, key } = tiebreaker as { column?: unknown; type?: unknown; key?: unknown };
  return [column, type, key];
}

function isPlanOf<DB, TB extends keyof DB>(
  cached: CachedPlan,
  options: Options<DB, TB>,
  dialect: DialectName,
): boolean {
  if (cached.dialect !== dialect) return false;
  const tiebreaker = options.tiebreaker;
  if (typeof tiebreaker === "object" && tiebreaker !== null) {
    const fields = cached.tiebreakerFields;
    if (
      fields === undefined || fields[0] !== tiebreaker.column || fields[1] !== tiebreaker.type ||
      fields[2] !== tiebreaker.key
    ) {
      return false;
    }
  } else if (tiebreaker !== cached.tiebreaker) {
    return false;
  }
  const orderBy = options.orderBy;
  const entries = cached.entries;
  if (orderBy.length * 5 !== entries.length) return false;
  for (let i = 0, j = 0; i < orderBy.length; i++, j += 5) {
    const e = orderBy[i]!;
    if (
      e.column !== entries[j] || e.direction !== entries[j + 1] || e.nulls !== entries[j + 2] ||
      e.type !== entries[j + 3] || e.key !== entries[j + 4]
    ) {
      return false;
    }
  }
  return true;
}

function createPlan(columns: Column[], order: string, dialect: DialectName): Plan {
  return {
    columns,
    codecColumns: columns.map((c) => ({ name: c.key, type: c.type, nullable: c.nullsFirst !== undefined })),
    order,
    codecs: new Map(),
    forward: createSide(columns, dialect),
    backward: createSide(columns.map(reverse), dialect),
  };
}

/** Builds Kysely's nodes for column references and the CASE of a NULL order once, through its public builder. */
// deno-lint-ignore no-explicit-any
const EB = expressionBuilder<any, any>();
const IS = OperatorNode.create("is");
const IS_NOT = OperatorNode.create("is not");
const NULL = ValueNode.createImmediate(null);
const OPERATORS = {
  gt: OperatorNode.create(">"),
  ge: OperatorNode.create(">="),
  lt: OperatorNode.create("<"),
  le: OperatorNode.create("<="),
};

function createSide(columns: readonly Column[], dialect: DialectName): Side {
  const seek = columns.map((c): Seek => {
    const ref = EB.ref(c.column).toOperationNode();
    return {
      ref,
      gt: c.desc ? OPERATORS.lt : OPERATORS.gt,
      ge: c.desc ? OPERATORS.le : OPERATORS.ge,
      isNull: BinaryOperationNode.create(ref, IS, NULL),
      isNotNull: BinaryOperationNode.create(ref, IS_NOT, NULL),
      nullsFirst: c.nullsFirst,
    };
  });
  let rowFrom = -1;
  if (ROW_VALUES[dialect]) {
    for (let i = 0; i < columns.length - 1; i++) {
      if (sameDirectionNotNull(columns, i)) {
        rowFrom = i;
        break;
      }
    }
  }
  return {
    seek,
    rowFrom,
    rowRefs: rowFrom === -1 ? undefined : TupleNode.create(seek.slice(rowFrom).map((s) => s.ref)),
    rowOperator: rowFrom === -1 ? undefined : seek[rowFrom]!.gt,
    orderBy: orderByAppliers(columns, seek.map((s) => s.ref), dialect),
  };
}

function resolveColumns<DB, TB extends keyof DB>(options: Options<DB, TB>): Column[] {
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

const MAX_CODECS_PER_PLAN = 64;

/**
 * The codec of unsigned cursors, bound to the order and `bind`. Unsigned
 * cursors can be forged by anyone, so binding them to the query would prove
 * nothing; they are bound to the order only, which spares every page a second
 * compile of the query, and their codecs are cached with the plan.
 */
function unsignedCodec<DB, TB extends keyof DB>(plan: Plan, options: Options<DB, TB>): CursorCodec {
  const { bind, maxCursorLength } = options;
  const key = bind === undefined && maxCursorLength === undefined ? "" : `${maxCursorLength ?? ""}\u0000${bind ?? ""}`;
  let codec = plan.codecs.get(key);
  if (codec === undefined) {
    codec = createCursorCodec({
      columns: plan.codecColumns,
      context: plan.order + "\u0000" + (bind ?? ""),
      maxLength: maxCursorLength,
    });
    if (plan.codecs.size >= MAX_CODECS_PER_PLAN) plan.codecs.clear();
    plan.codecs.set(key, codec);
  }
  return codec;
}

/**
 * The codec of signed cursors, bound to the order, `bind`, and the query's
 * SQL and parameters, so a signed cursor of another table, filter, order or
 * tenant is rejected.
 */
function signedCodec<DB, TB extends keyof DB>(
  plan: Plan,
  base: AnyQuery,
  options: Options<DB, TB>,
): CursorCodec {
  const compiled = base.compile();
  return createCursorCodec({
    columns: plan.codecColumns,
    context: plan.order + "\u0000" + (options.bind ?? "") + "\u0000" + compiled.sql + "\u0000" +
      JSON.stringify(compiled.parameters, jsonSafe),
    secret: options.secret,
    maxLength: options.maxCursorLength,
  });
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return Array.from(value);
  return value;
}

/** node:sqlite binds neither booleans nor Dates; a cursor must not make the driver throw. */
function checkSqliteValues(values: CursorValue[], columns: readonly Column[]): void {
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

function checkRows(rows: Record<string, unknown>[], columns: readonly Column[]): void {
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
type Condition = Node | typeof TRUE | typeof FALSE;
const LIT_TRUE = ValueNode.createImmediate(true);
const LIT_FALSE = ValueNode.createImmediate(false);

/**
 * The rows strictly after `values` in the side's order, as Kysely nodes
 * (the same nodes its expression builder makes for `eb(ref, ">", value)`,
 * `eb.and`, `eb.or`, `eb.refTuple` and `eb.lit`, built without it).
 */
function seekPredicate(side: Side, values: CursorValue[]): Node {
  const condition = after(side, values, 0);
  return condition === TRUE ? LIT_TRUE : condition === FALSE ? LIT_FALSE : condition;
}

/**
 * `after(i) = ge(i) and (gt(i) or after(i + 1))`, with a row-value comparison
 * for the trailing run of same-direction NOT NULL columns where the dialect
 * compares row values through an index.
 */
function after(side: Side, values: CursorValue[], i: number): Condition {
  if (i === side.rowFrom) {
    const tuple = new Array<Node>(values.length - i);
    for (let j = i; j < values.length; j++) tuple[j - i] = ValueNode.create(values[j]);
    return BinaryOperationNode.create(side.rowRefs!, side.rowOperator!, TupleNode.create(tuple));
  }
  const s = side.seek[i]!;
  const value = values[i];
  let gt: Condition;
  let ge: Condition;
  if (value === null) {
    // NULLs first: every non-NULL follows; NULLs last: nothing but NULLs ties.
    gt = s.nullsFirst ? s.isNotNull : FALSE;
    ge = s.nullsFirst ? TRUE : s.isNull;
  } else {
    const node = ValueNode.create(value);
    gt = BinaryOperationNode.create(s.ref, s.gt, node);
    ge = BinaryOperationNode.create(s.ref, s.ge, node);
    if (s.nullsFirst === false) {
      gt = ParensNode.create(OrNode.create(gt, s.isNull));
      ge = ParensNode.create(OrNode.create(ge, s.isNull));
    }
  }
  if (i === values.length - 1) return gt;
  const rest = after(side, values, i + 1);
  const gtOrRest = or(gt, rest);
  if (ge === TRUE) return gtOrRest;
  // Only a NULL value of a NULLs-last column has no greater value: the rest must tie on NULL.
  if (gt === FALSE) return and(s.isNull, rest);
  return and(ge, gtOrRest);
}

function or(a: Condition, b: Condition): Condition {
  if (a === TRUE || b === TRUE) return TRUE;
  if (a === FALSE) return b;
  if (b === FALSE) return a;
  return ParensNode.create(OrNode.create(a, b));
}

function and(a: Condition, b: Condition): Condition {
  if (a === FALSE || b === FALSE) return FALSE;
  if (a === TRUE) return b;
  if (b === TRUE) return a;
  return ParensNode.create(AndNode.create(a, b));
}

function sameDirectionNotNull(columns: readonly Column[], from: number): boolean {
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

/**
 * The ORDER BY of `columns` as one function per column. Each column's items
 * are built once, through Kysely's public `orderBy()` on a scratch query, and
 * appended to each page's query as prebuilt nodes (see
 * {@linkcode appendsOrderByItems}).
 */
function orderByAppliers(columns: readonly Column[], refs: readonly Node[], dialect: DialectName): Side["orderBy"] {
  return columns.map((c, i) => {
    const apply = orderBy(c, refs[i]!, dialect);
    if (!appendsOrderByItems()) return apply;
    // deno-lint-ignore no-explicit-any
    const scratch = EB.selectFrom("_" as any) as unknown as AnyQuery;
    const items = apply(scratch).toOperationNode().orderBy!.items.map((item) => new ExpressionWrapper(item));
    return items.length === 1 ? (q) => q.orderBy(items[0]!) : (q) => q.orderBy(items[0]!).orderBy(items[1]!);
  });
}

let orderByItemsAppended: boolean | undefined;

/**
 * KYSELY INTERNALS: whether `query.orderBy(expression)` appends the
 * expression's node as it is when that node is already an `OrderByItemNode`
 * (Kysely 0.28's `parseOrderByItem` does), so prebuilt items skip the
 * per-page parsing of `orderBy(column, direction)`. Not a documented
 * behaviour: it is checked once, on a scratch query, and when it does not
 * hold every page builds its ORDER BY through the public forms instead.
 */
function appendsOrderByItems(): boolean {
  if (orderByItemsAppended === undefined) {
    const item = OrderByItemNode.create(EB.ref("a").toOperationNode(), RawNode.createWithSql("desc"));
    try {
      // deno-lint-ignore no-explicit-any
      const scratch = (EB.selectFrom("_" as any) as unknown as AnyQuery).orderBy(new ExpressionWrapper(item));
      const items = scratch.toOperationNode().orderBy?.items;
      orderByItemsAppended = items?.length === 1 && items[0] === item;
    } catch {
      orderByItemsAppended = false;
    }
  }
  return orderByItemsAppended;
}

/** A function that appends the ORDER BY items of column `c` (whose reference node is `ref`), through the public API. */
function orderBy(c: Column, ref: Node, dialect: DialectName): (q: AnyQuery) => AnyQuery {
  const column = new ExpressionWrapper(ref);
  const dir = c.desc ? "desc" : "asc";
  const nullsFirst = c.nullsFirst;
  if (nullsFirst === undefined) return (q) => q.orderBy(column, dir);
  if (dialect === "postgres" || dialect === "sqlite") {
    return (q) => q.orderBy(column, (ob) => (c.desc ? ob.desc() : ob.asc())[nullsFirst ? "nullsFirst" : "nullsLast"]());
  }
  // MySQL and MSSQL have no NULLS FIRST/LAST: sort on "is null" first.
  const isNull = EB.case().when(column, "is", null).then(EB.lit(1)).else(EB.lit(0)).end();
  const nullsDir = nullsFirst ? "desc" : "asc";
  return (q) => q.orderBy(isNull, nullsDir).orderBy(column, dir);
}
