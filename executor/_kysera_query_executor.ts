/**
 * The wrapping `QueryExecutor` that carries Kysera's plugins: every query of
 * an executor and of everything derived from it passes `transformQuery`
 * (tree hooks), `compileQuery` (statement hooks), and `executeQuery`
 * (raw-SQL policy, `aroundQuery`, `aroundWrite`).
 */
import type {
  CompiledQuery,
  ConnectionProvider,
  DatabaseConnection,
  DialectAdapter,
  KyselyPlugin,
  QueryExecutor,
  QueryId,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from "kysely";
import { track, type TrackedConnection } from "./_transaction_state.ts";
import { wrapPluginError } from "./plugin_error.ts";
import { isWrite } from "./query_tree.ts";
import { transformBuilt, transformStatement } from "./_statement_hooks.ts";
import { deferred, HookRun } from "./_hook_run.ts";
import type { Family } from "./_family.ts";
import { QUERY_DIALECT_PROBE } from "../core/mod.ts";
import { checkOutside, enterScope } from "./_scope.ts";

const PLUGIN_LISTS = new WeakMap<readonly KyselyPlugin[], Family>();

/** The family of an executor, also through Kysely's transaction wrapper. */
export function familyOfQueryExecutor(executor: QueryExecutor): Family | undefined {
  if (executor instanceof KyseraQueryExecutor) return executor.family;
  return PLUGIN_LISTS.get(executor.plugins);
}

/** Kysera's query executor: Kysely's own, wrapped. */
export class KyseraQueryExecutor implements QueryExecutor {
  readonly #inner: QueryExecutor;
  readonly #family: Family;
  /** Whether queries run on one given connection (a transaction's, a hook's), not on one from the pool. */
  readonly #bound: boolean;
  #plugins: readonly KyselyPlugin[] | undefined;

  constructor(inner: QueryExecutor, family: Family, bound = false) {
    this.#inner = inner;
    this.#family = family;
    this.#bound = bound;
  }

  readonly #rewrap = (inner: QueryExecutor): QueryExecutor => new KyseraQueryExecutor(inner, this.#family, true);

  get family(): Family {
    return this.#family;
  }

  get adapter(): DialectAdapter {
    return this.#inner.adapter;
  }

  /**
   * The user's Kysely plugins. The array is registered with the family so
   * that a transaction's executor (Kysely's own wrapper, which delegates
   * `plugins`) can be recognised as ours.
   */
  get plugins(): readonly KyselyPlugin[] {
    if (this.#plugins === undefined) {
      this.#plugins = Object.freeze([...this.#inner.plugins]);
      PLUGIN_LISTS.set(this.#plugins, this.#family);
    }
    return this.#plugins;
  }

  transformQuery<T extends RootOperationNode>(node: T, queryId: QueryId): T {
    const transformed = this.#inner.transformQuery(node, queryId);
    const f = this.#family;
    // `dialectOfQuery()` asks (paginateCursor without `db`).
    if (QUERY_DIALECT_PROBE.active) QUERY_DIALECT_PROBE.dialect = f.dialect;
    if (!f.buildHooks) return transformed;
    return transformBuilt(transformed, queryId, f) as T;
  }

  /**
   * The statement-wide hooks run here, on the whole statement as it is
   * compiled for execution, not in `transformQuery`: Kysely also calls
   * `transformQuery` when a builder becomes part of another query (a
   * subquery, a union branch, a CTE), and a scope applied then would carry
   * the context of that moment, and be applied again to the whole.
   */
  compileQuery<R = unknown>(node: RootOperationNode, queryId: QueryId): CompiledQuery<R> {
    const f = this.#family;
    if (f.compileHooks) node = transformStatement(node, queryId, f);
    const compiled = this.#inner.compileQuery<R>(node, queryId);
    f.compiled(compiled);
    return compiled;
  }

  provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    const f = this.#family;
    // A bound executor's connection is the one its transaction (or hook) already holds.
    if (this.#bound) {
      if (f.tracking) return this.#inner.provideConnection((connection) => consumer(track(connection, f.observers)));
      return this.#inner.provideConnection(consumer);
    }
    if (f.openScopes > 0 && f.outsideTransaction !== "allow") {
      try {
        checkOutside(f);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // Kysely runs `transaction().execute(fn)` and `connection().execute(fn)`
    // callbacks inside the consumer: marked, so that a query the callback
    // sends through this executor instead of the transaction is caught.
    // Kysely begins and ends transactions on the connections handed out
    // here: tracked, so hooks learn whether a transaction is open.
    return this.#inner.provideConnection((connection) =>
      enterScope(f, () => consumer(f.tracking ? track(connection, f.observers) : connection))
    );
  }

  executeQuery<R>(compiledQuery: CompiledQuery<R>): Promise<QueryResult<R>> {
    const f = this.#family;
    if (f.openScopes > 0 && !this.#bound && f.outsideTransaction !== "allow") {
      try {
        checkOutside(f);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (f.rawPolicies.length > 0) {
      try {
        f.checkCompiled(compiledQuery);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (f.aroundQuery.length > 0 || (f.around.length > 0 && isWrite(compiledQuery.query))) {
      return this.#hooked(compiledQuery).then((r) => this.#results(r, compiledQuery.queryId));
    }
    if (f.resultTransformers.length === 0) return this.#inner.executeQuery(compiledQuery);
    return this.#inner.executeQuery(compiledQuery).then((r) => this.#results(r, compiledQuery.queryId));
  }

  async *stream<R>(compiledQuery: CompiledQuery<R>, chunkSize: number): AsyncIterableIterator<QueryResult<R>> {
    const f = this.#family;
    if (f.openScopes > 0 && !this.#bound && f.outsideTransaction !== "allow") checkOutside(f);
    if (f.rawPolicies.length > 0) f.checkCompiled(compiledQuery);
    if (f.aroundQuery.length > 0) {
      yield* this.#hookedStream(compiledQuery, chunkSize);
      return;
    }
    for await (const result of this.#inner.stream(compiledQuery, chunkSize)) {
      yield await this.#results(result, compiledQuery.queryId);
    }
  }

  withConnectionProvider(connectionProvider: ConnectionProvider): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withConnectionProvider(connectionProvider), this.#family, true);
  }

  withPlugin(plugin: KyselyPlugin): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withPlugin(plugin), this.#family, this.#bound);
  }

  withPlugins(plugins: readonly KyselyPlugin[]): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withPlugins(plugins), this.#family, this.#bound);
  }

  withPluginAtFront(plugin: KyselyPlugin): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withPluginAtFront(plugin), this.#family, this.#bound);
  }

  /** Drops the user's Kysely plugins; Kysera's plugins belong to the executor and stay. */
  withoutPlugins(): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withoutPlugins(), this.#family, this.#bound);
  }

  async #results<R>(result: QueryResult<R>, queryId: QueryId): Promise<QueryResult<R>> {
    for (const plugin of this.#family.resultTransformers) {
      try {
        result = await plugin.transformResult!({ result: result as QueryResult<UnknownRow>, queryId }) as QueryResult<
          R
        >;
      } catch (error) {
        throw wrapPluginError(error, { plugin: plugin.name, hook: "transformResult" });
      }
    }
    return result;
  }

  /**
   * Runs a statement through the `aroundQuery` hooks and, for a write, the
   * `aroundWrite` hooks, all on one connection.
   */
  #hooked<R>(compiled: CompiledQuery<R>): Promise<QueryResult<R>> {
    return this.#inner.provideConnection((connection) =>
      new HookRun(this.#inner, this.#family, this.#rewrap, compiled, track(connection, this.#family.observers))
        .run() as Promise<QueryResult<R>>
    );
  }

  /**
   * `stream()` with `aroundQuery` hooks: the hooks run first on the
   * stream's connection, their `next()` resolving once the stream is read.
   */
  async *#hookedStream<R>(compiled: CompiledQuery<R>, chunkSize: number): AsyncIterableIterator<QueryResult<R>> {
    const started = deferred<TrackedConnection>();
    const finished = deferred<void>();
    const hooks = this.#inner.provideConnection((connection) => {
      const tracked = track(connection, this.#family.observers);
      return new HookRun(this.#inner, this.#family, this.#rewrap, compiled, tracked, () => {
        started.resolve(tracked);
        return finished.promise.then(() => ({ rows: [] }));
      }).run();
    });
    // A hook that fails (or returns) without calling next() ends the stream.
    hooks.then(
      () => started.reject(new TypeError("An aroundQuery hook returned without calling next() for a stream")),
      (error) => started.reject(error),
    );
    const connection = await started.promise;
    try {
      for await (const result of connection.streamQuery<R>(compiled, chunkSize)) {
        yield await this.#results(result, compiled.queryId);
      }
    } finally {
      finished.resolve();
      await hooks;
    }
  }
}
