import {
  AggregateFunctionNode,
  AliasNode,
  IdentifierNode,
  type KyselyPlugin,
  type RootOperationNode,
  SelectAllNode,
  SelectionNode,
  type SelectQueryBuilder,
  SelectQueryNode,
} from "kysely";

/** Options of {@linkcode paginate}. */
export interface PaginationOptions {
  /** The 1-based page number, a positive integer. */
  readonly page: number;
  /** The page size, a positive integer. */
  readonly limit: number;
  /**
   * Also count the rows (one more query, `select count(*) from (query)`),
   * for `total` and `totalPages`.
   *
   * @default {false}
   */
  readonly withTotal?: boolean | undefined;
}

/** A page of {@linkcode paginate}. */
export interface OffsetPage<O> {
  /** The rows of this page; empty past the last page. */
  readonly data: O[];
  /** The page number asked for. */
  readonly page: number;
  /** The page size asked for. */
  readonly limit: number;
  /** Whether a row follows this page. */
  readonly hasNext: boolean;
  /** Whether this is not the first page. */
  readonly hasPrev: boolean;
  /** The number of rows of the whole query, with `withTotal`. */
  readonly total?: number;
  /** The number of pages (`ceil(total / limit)`), with `withTotal`. */
  readonly totalPages?: number;
}

// deno-lint-ignore no-explicit-any
type AnyQuery = SelectQueryBuilder<any, any, any>;

/**
 * Pages through a query by offset: page `page` of `limit` rows. One query
 * fetches `limit + 1` rows (the extra row only tells `hasNext`); with
 * `withTotal`, a second one counts the rows of the whole query as a derived
 * table, which is right for DISTINCT, GROUP BY, joins and unions alike.
 *
 * Give the query an ORDER BY ending in a unique column, or pages may overlap.
 * Offset pages get slower with depth (the database reads and skips every row
 * before the page) and shift when rows are inserted or deleted; for deep or
 * live lists use {@linkcode paginateCursor}.
 *
 * @param query The select query, with its ORDER BY.
 * @param options The page, its size and whether to count.
 * @returns The page.
 * @throws {RangeError} When `page` or `limit` is not a positive integer, or the offset is not a safe integer.
 *
 * @example The second page of three rows, with the total
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { paginate } from "@kysera/kysera/core"; // npm: "kysera/core"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<{ users: { id: number } }>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("id", "integer", (c) => c.primaryKey()).execute();
 * await db.insertInto("users").values([1, 2, 3, 4, 5, 6, 7].map((id) => ({ id }))).execute();
 *
 * const page = await paginate(db.selectFrom("users").select("id").orderBy("id"), { page: 2, limit: 3, withTotal: true });
 * assert.deepEqual(page.data.map((u) => u.id), [4, 5, 6]);
 * assert.equal(page.total, 7);
 * assert.equal(page.totalPages, 3);
 * assert.equal(page.hasNext, true);
 * await db.destroy();
 * ```
 *
 * The queries (SQLite):
 *
 * ```sql
 * select "id" from "users" order by "id" limit ? offset ?           -- [4, 3]
 * select count(*) as "total" from (select 1 as "one" from "users") as "kysera_count"
 * ```
 */
export async function paginate<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  options: PaginationOptions,
): Promise<OffsetPage<O>> {
  const { page, limit } = options;
  if (!Number.isSafeInteger(page) || page < 1) {
    throw new RangeError(`Cannot paginate: 'page' must be a positive integer: current value is ${String(page)}`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`Cannot paginate: 'limit' must be a positive integer: current value is ${String(limit)}`);
  }
  const offset = (page - 1) * limit;
  if (!Number.isSafeInteger(offset + limit + 1)) {
    throw new RangeError(
      `Cannot paginate: 'page' times 'limit' must be a safe integer: current value is ${page} * ${limit}`,
    );
  }
  const rowsQuery = query.limit(limit + 1).offset(offset).execute() as Promise<O[]>;
  const [rows, total] = await Promise.all([
    rowsQuery,
    options.withTotal === true ? countRows(query as unknown as AnyQuery) : undefined,
  ]);
  const hasNext = rows.length > limit;
  const data = hasNext ? rows.slice(0, limit) : rows;
  const result = { data, page, limit, hasNext, hasPrev: page > 1 };
  return total === undefined ? result : { ...result, total, totalPages: Math.ceil(total / limit) };
}

/**
 * Counts the rows of a query: `select count(*) from (<query>) as kysera_count`.
 *
 * The wrapping is done by a plugin added last, so the executor's own plugins
 * (and Kysera's) transform the inner query exactly as they would the page
 * query. Selections are replaced by a constant unless they decide the row set
 * (DISTINCT, DISTINCT ON, HAVING, unions), which also avoids MySQL's
 * "duplicate column" error for joins that select two `id`s.
 */
async function countRows(query: AnyQuery): Promise<number> {
  const node = query.toOperationNode();
  const keepSelections = node.distinctOn !== undefined || node.having !== undefined ||
    node.setOperations !== undefined ||
    (node.frontModifiers ?? []).some((m) => m.modifier === "Distinct");
  let inner = query.clearOrderBy().clearLimit().clearOffset();
  if (!keepSelections) inner = inner.clearSelect().select((eb) => eb.lit(1).as("one"));
  const row = await inner.withPlugin(COUNT_WRAPPER).executeTakeFirst() as { total?: unknown } | undefined;
  const total = Number(row?.total ?? 0);
  return total;
}

const COUNT_WRAPPER: KyselyPlugin = Object.freeze({
  transformQuery({ node }: { node: RootOperationNode }): RootOperationNode {
    if (!SelectQueryNode.is(node)) return node;
    return SelectQueryNode.cloneWithSelections(
      SelectQueryNode.createFrom([AliasNode.create(node, IdentifierNode.create("kysera_count"))]),
      [
        SelectionNode.create(
          AliasNode.create(
            AggregateFunctionNode.create("count", [SelectAllNode.create()]),
            IdentifierNode.create("total"),
          ),
        ),
      ],
    );
  },
  transformResult<T>({ result }: { result: T }): Promise<T> {
    return Promise.resolve(result);
  },
});
