/**
 * The one place Kysera relies on how Kysely works inside (kysely 0.28).
 *
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
import type {
  Kysely,
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryExecutor,
  QueryResult,
  RootOperationNode,
  UnknownRow,
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
