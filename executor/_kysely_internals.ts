/**
 * The one place Kysera relies on how Kysely works inside (kysely 0.28).
 * Each reliance is a function here, with why it is needed, and
 * `_kysely_internals_test.ts` pins each against the installed Kysely.
 *
 * 1. {@linkcode kyselyWithExecutor}: a `Kysely` around Kysera's query executor.
 * 2. {@linkcode builderOf}: a query builder over a given node (for
 *    `interceptQuery`, which hands plugins a builder of the whole statement).
 * 3. {@linkcode transactionStatements}: the SQL Kysely's drivers send to
 *    begin and end a transaction, set its isolation level and handle
 *    savepoints (the executor learns a connection's transaction state, and
 *    reports `onTransaction` events, from them).
 *
 * (Pagination's prebuilt ORDER BY items are a fourth, in `core/`, which may
 * import no other layer: it is checked at run time there, with a fallback to
 * the public API, and pinned by the same test file.)
 *
 * 1. Why `kyselyWithExecutor`:
 * Why: Kysera's plugins must see every query of an executor, including those
 * of `transaction()`, `startTransaction()` (and its savepoints),
 * `connection()`, `withSchema()`, `withPlugin()` and `withoutPlugins()`.
 * Kysely builds each of those from its private props and from its current
 * `QueryExecutor` (`executor.withConnectionProvider(...)`,
 * `executor.withPlugin(...)`, ...), so a `QueryExecutor` that wraps Kysely's
 * own and re-wraps itself in those methods is carried along everywhere. But
 * Kysely has no public way to make a `Kysely` around a given executor: its
 * constructor wants private props (driver, dialect, config).
 *
 * The narrowest door: `Kysely.withPlugin(plugin)` returns
 * `new Kysely({ ...props, executor: props.executor.withPlugin(plugin) })`
 * (and `Transaction` the same, as a `Transaction`). We make the current
 * executor's `withPlugin` return ours for exactly one synchronous call,
 * then restore it. The result is checked, so a Kysely that works otherwise
 * fails loudly here instead of silently bypassing plugins; the tests in
 * `create_executor_test.ts` pin every path.
 */
import {
  createSelectQueryBuilder,
  DeleteQueryBuilder,
  type DeleteQueryNode,
  InsertQueryBuilder,
  type InsertQueryNode,
  type Kysely,
  type KyselyPlugin,
  type MergeQueryNode,
  NOOP_QUERY_EXECUTOR,
  type OperationNode,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryExecutor,
  type QueryId,
  type QueryResult,
  type RootOperationNode,
  type SelectQueryNode,
  type UnknownRow,
  UpdateQueryBuilder,
  type UpdateQueryNode,
  WheneableMergeQueryBuilder,
} from "kysely";

const HANDOFF: KyselyPlugin = Object.freeze({
  transformQuery: (args: PluginTransformQueryArgs): RootOperationNode => args.node,
  transformResult: (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> => Promise.resolve(args.result),
});

/**
 * Returns a `Kysely` (a `Transaction` if `db` is one) that has `db`'s
 * private props and runs its queries on `executor`.
 *
 * @param db The instance whose props to reuse.
 * @param executor The query executor to install.
 */
// deno-lint-ignore no-explicit-any
export function kyselyWithExecutor<K extends Kysely<any>>(db: K, executor: QueryExecutor): K {
  const current = db.getExecutor() as unknown as Record<string, unknown>;
  const own = Object.getOwnPropertyDescriptor(current, "withPlugin");
  Object.defineProperty(current, "withPlugin", { value: () => executor, configurable: true, writable: true });
  let result: K;
  try {
    result = db.withPlugin(HANDOFF) as K;
  } finally {
    if (own === undefined) delete current.withPlugin;
    else Object.defineProperty(current, "withPlugin", own);
  }
  if (result.getExecutor() !== executor) {
    throw new Error(
      "Cannot install Kysera's query executor: this Kysely version builds withPlugin() differently; Kysera supports kysely 0.28",
    );
  }
  return result;
}

/** Something that gives its operation node, as Kysely's builders do. */
export interface NodeSource {
  toOperationNode(): OperationNode;
}

/**
 * A query builder over `node`, without an executor (it can only build).
 * Kysely exports its builder classes but documents constructing them from
 * props as internal: `interceptQuery` hands plugins a builder of the whole
 * statement as it is compiled, and this is how one is made from a node.
 *
 * @param node A select, insert, update, delete or merge node.
 * @param queryId The query's id.
 */
export function builderOf(node: RootOperationNode, queryId: QueryId): NodeSource {
  const props = { queryId, executor: NOOP_QUERY_EXECUTOR };
  switch (node.kind) {
    case "SelectQueryNode":
      return createSelectQueryBuilder({ ...props, queryNode: node as SelectQueryNode });
    case "InsertQueryNode":
      return new InsertQueryBuilder({ ...props, queryNode: node as InsertQueryNode });
    case "UpdateQueryNode":
      return new UpdateQueryBuilder({ ...props, queryNode: node as UpdateQueryNode });
    case "DeleteQueryNode":
      return new DeleteQueryBuilder({ ...props, queryNode: node as DeleteQueryNode });
    default:
      return new WheneableMergeQueryBuilder({ ...props, queryNode: node as MergeQueryNode });
  }
}

/**
 * The raw statements Kysely's built-in drivers send on a connection to
 * begin (`begin`, PostgreSQL's `start transaction isolation level ...`) and
 * to end (`commit`, `rollback`; `rollback to savepoint` keeps the
 * transaction open) a transaction, to set the next transaction's isolation
 * level (MySQL's `set transaction isolation level ...`, sent before
 * `begin`), and the savepoint commands (`savepoint`, `release [savepoint]`,
 * `rollback to [savepoint]`; Kysely's drivers and hand-written SQL alike).
 * Kysely's `Driver` interface is public, but what its built-in drivers send
 * is not: the executor reads a connection's transaction state from these
 * statements (see `_transaction_state.ts`). `savepoint`, `release` and
 * `rollbackTo` capture the savepoint's name (quoted or not), `isolation`
 * the isolation level.
 */
export const transactionStatements: {
  readonly begin: RegExp;
  readonly end: RegExp;
  readonly setTransaction: RegExp;
  readonly savepoint: RegExp;
  readonly release: RegExp;
  readonly rollbackTo: RegExp;
  readonly isolation: RegExp;
} = Object.freeze({
  begin: /^\s*(?:begin|start\s+transaction)\b/i,
  end: /^\s*(?:commit|end|rollback(?!\s+to\b))\b/i,
  setTransaction: /^\s*set\s+transaction\b/i,
  savepoint: /^\s*savepoint\s+(\S+)\s*;?\s*$/i,
  release: /^\s*release\s+(?:savepoint\s+)?(\S+)\s*;?\s*$/i,
  rollbackTo: /^\s*rollback\s+(?:work\s+|transaction\s+)?to\s+(?:savepoint\s+)?(\S+)\s*;?\s*$/i,
  isolation: /\bisolation\s+level\s+(read\s+uncommitted|read\s+committed|repeatable\s+read|serializable|snapshot)\b/i,
});
