/**
 * The wrapping `QueryExecutor` that carries Kysera's plugins: every query of
 * an executor and of everything derived from it passes `transformQuery`
 * (tree hooks) and `executeQuery` (raw-SQL policy, `aroundWrite`).
 */
import {
  type CompiledQuery,
  type ConnectionProvider,
  createSelectQueryBuilder,
  type DatabaseConnection,
  DeleteQueryBuilder,
  type DeleteQueryNode,
  type DialectAdapter,
  InsertQueryBuilder,
  type InsertQueryNode,
  type Kysely,
  type KyselyPlugin,
  type MergeQueryNode,
  NOOP_QUERY_EXECUTOR,
  type OperationNode,
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
import type { InterceptContext, KyseraPlugin, QueryOperation, WriteExecution } from "./kysera_plugin.ts";
import { isRawSqlAllowed } from "./plugin_context.ts";
import { PluginError, RawSqlRefusedError, wrapPluginError } from "./plugin_error.ts";
import { operationOf, targetOf } from "./_statement.ts";
import { applyRowScopes } from "./_row_scopes.ts";
import { applyWriteHooks } from "./_write_hooks.ts";
import { kyselyWithExecutor } from "./_kysely_internals.ts";
import { type DialectName, dialectOfAdapter } from "../core/mod.ts";

/** What every executor derived from one `createExecutor` call shares. */
export class Family {
  readonly plugins: readonly KyseraPlugin[];
  readonly transformers: readonly KyseraPlugin[];
  readonly resultTransformers: readonly KyseraPlugin[];
  readonly interceptors: readonly KyseraPlugin[];
  readonly writers: readonly KyseraPlugin[];
  readonly scopers: readonly KyseraPlugin[];
  readonly around: readonly KyseraPlugin[];
  readonly rawPolicies: readonly KyseraPlugin[];
  /** Whether any hook works on the query tree. */
  readonly treeHooks: boolean;
  /** Compiled by this family, so not "precompiled elsewhere". */
  readonly compiled: WeakSet<CompiledQuery> = new WeakSet();
  /** The Kysely the executor was made from. */
  // deno-lint-ignore no-explicit-any
  readonly raw: Kysely<any>;

  #dialect: DialectName | undefined | null = null;

  /** The dialect of the executor's adapter, `undefined` for a third-party adapter. */
  get dialect(): DialectName | undefined {
    if (this.#dialect === null) {
      try {
        this.#dialect = dialectOfAdapter(this.raw.getExecutor().adapter);
      } catch {
        this.#dialect = undefined;
      }
    }
    return this.#dialect;
  }

  // deno-lint-ignore no-explicit-any
  constructor(raw: Kysely<any>, plugins: readonly KyseraPlugin[]) {
    this.raw = raw;
    this.plugins = plugins;
    this.transformers = plugins.filter((p) => p.transformQuery !== undefined);
    this.resultTransformers = plugins.filter((p) => p.transformResult !== undefined);
    this.interceptors = plugins.filter((p) => p.interceptQuery !== undefined);
    this.writers = plugins.filter((p) => p.onWrite !== undefined);
    this.scopers = plugins.filter((p) => p.scopeRows !== undefined);
    this.around = plugins.filter((p) => p.aroundWrite !== undefined);
    this.rawPolicies = plugins.filter((p) => p.rawSql !== undefined && p.rawSql !== "allow");
    this.treeHooks = this.transformers.length + this.interceptors.length + this.writers.length +
        this.scopers.length + this.rawPolicies.length > 0;
  }

  checkRaw(source: string): void {
    if (this.rawPolicies.length === 0 || isRawSqlAllowed()) return;
    for (const plugin of this.rawPolicies) {
      const policy = plugin.rawSql;
      const allowed = typeof policy === "function"
        ? policy({ source, context: plugin.context?.get() })
        : policy !== "refuse";
      if (!allowed) throw new RawSqlRefusedError(plugin.name, source);
    }
  }
}

const WRITES: ReadonlySet<string> = new Set([
  "InsertQueryNode",
  "UpdateQueryNode",
  "DeleteQueryNode",
  "MergeQueryNode",
]);

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
  #plugins: readonly KyselyPlugin[] | undefined;

  constructor(inner: QueryExecutor, family: Family) {
    this.#inner = inner;
    this.#family = family;
  }

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
    if (!f.treeHooks) return transformed;
    return kyseraTransform(transformed, queryId, f) as T;
  }

  compileQuery<R = unknown>(node: RootOperationNode, queryId: QueryId): CompiledQuery<R> {
    const compiled = this.#inner.compileQuery<R>(node, queryId);
    if (this.#family.rawPolicies.length > 0) this.#family.compiled.add(compiled);
    return compiled;
  }

  provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    return this.#inner.provideConnection(consumer);
  }

  executeQuery<R>(compiledQuery: CompiledQuery<R>): Promise<QueryResult<R>> {
    const f = this.#family;
    if (f.rawPolicies.length > 0 && !f.compiled.has(compiledQuery)) {
      try {
        f.checkRaw("precompiled query");
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (f.around.length > 0 && WRITES.has(compiledQuery.query.kind)) {
      return this.#aroundWrite(compiledQuery).then((r) => this.#results(r, compiledQuery.queryId));
    }
    if (f.resultTransformers.length === 0) return this.#inner.executeQuery(compiledQuery);
    return this.#inner.executeQuery(compiledQuery).then((r) => this.#results(r, compiledQuery.queryId));
  }

  async *stream<R>(compiledQuery: CompiledQuery<R>, chunkSize: number): AsyncIterableIterator<QueryResult<R>> {
    const f = this.#family;
    if (f.rawPolicies.length > 0 && !f.compiled.has(compiledQuery)) f.checkRaw("precompiled query");
    for await (const result of this.#inner.stream(compiledQuery, chunkSize)) {
      yield await this.#results(result, compiledQuery.queryId);
    }
  }

  withConnectionProvider(connectionProvider: ConnectionProvider): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withConnectionProvider(connectionProvider), this.#family);
  }

  withPlugin(plugin: KyselyPlugin): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withPlugin(plugin), this.#family);
  }

  withPlugins(plugins: readonly KyselyPlugin[]): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withPlugins(plugins), this.#family);
  }

  withPluginAtFront(plugin: KyselyPlugin): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withPluginAtFront(plugin), this.#family);
  }

  /** Drops the user's Kysely plugins; Kysera's plugins belong to the executor and stay. */
  withoutPlugins(): QueryExecutor {
    return new KyseraQueryExecutor(this.#inner.withoutPlugins(), this.#family);
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

  #aroundWrite<R>(compiled: CompiledQuery<R>): Promise<QueryResult<R>> {
    const f = this.#family;
    const operation = operationOf(compiled.query) as QueryOperation;
    const table = targetOf(compiled.query)?.table;
    return this.#inner.provideConnection(async (connection) => {
      // The hooks run while this connection is held: their queries must use
      // it directly (a transaction's provider would wait for us).
      const direct: ConnectionProvider = { provideConnection: (consumer) => consumer(connection) };
      const onConnection = this.#inner.withConnectionProvider(direct);
      // deno-lint-ignore no-explicit-any
      let db: Kysely<any> | undefined;
      // deno-lint-ignore no-explicit-any
      let rawDb: Kysely<any> | undefined;
      const fromNext = new WeakSet<object>();
      const run = async (i: number, query: CompiledQuery): Promise<QueryResult<unknown>> => {
        const plugin = f.around[i];
        if (plugin === undefined) {
          try {
            return await onConnection.executeQuery(query);
          } catch (error) {
            if (typeof error === "object" && error !== null) fromNext.add(error);
            throw error;
          }
        }
        const execution: WriteExecution = {
          operation,
          table,
          query,
          context: plugin.context?.get(),
          get db() {
            return db ??= kyselyWithExecutor(f.raw, new KyseraQueryExecutor(onConnection, f));
          },
          get rawDb() {
            return rawDb ??= kyselyWithExecutor(f.raw, onConnection);
          },
        };
        try {
          return await plugin.aroundWrite!(execution, (replacement) => run(i + 1, replacement ?? query));
        } catch (error) {
          if (typeof error === "object" && error !== null && fromNext.has(error)) throw error;
          throw wrapPluginError(error, {
            plugin: plugin.name,
            hook: "aroundWrite",
            operation,
            ...(table === undefined ? {} : { table }),
          });
        }
      };
      return await run(0, compiled) as QueryResult<R>;
    });
  }
}

function kyseraTransform(node: RootOperationNode, queryId: QueryId, f: Family): RootOperationNode {
  for (const plugin of f.transformers) {
    let next: RootOperationNode;
    try {
      next = plugin.transformQuery!({ node, queryId });
    } catch (error) {
      throw wrapPluginError(error, { plugin: plugin.name, hook: "transformQuery" });
    }
    if (next.kind !== node.kind) {
      throw new PluginError({
        plugin: plugin.name,
        hook: "transformQuery",
        cause: new TypeError(`transformQuery must return a ${node.kind}: current value is a ${next.kind}`),
      });
    }
    node = next;
  }
  const operation = operationOf(node);
  if (operation === undefined) {
    if (node.kind === "RawNode") f.checkRaw("raw query");
    return node;
  }
  if (f.interceptors.length > 0) node = intercept(node, operation, queryId, f);
  if (f.writers.length > 0 && (operation === "insert" || operation === "replace" || operation === "update")) {
    node = applyWriteHooks(node, f.writers, f.dialect) as RootOperationNode;
  }
  if (f.scopers.length > 0) {
    const scoped = applyRowScopes(node, f.scopers, operation);
    if (scoped.rawSource) f.checkRaw("raw table source");
    node = scoped.node as RootOperationNode;
  }
  return node;
}

interface NodeSource {
  toOperationNode(): OperationNode;
}

function builderFor(node: RootOperationNode, queryId: QueryId): NodeSource {
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

function intercept(node: RootOperationNode, operation: QueryOperation, queryId: QueryId, f: Family): RootOperationNode {
  const target = targetOf(node);
  const context: InterceptContext = {
    operation,
    table: target?.table,
    alias: target?.alias,
    schema: target?.schema,
    metadata: {},
    queryId,
  };
  let qb = builderFor(node, queryId);
  for (const plugin of f.interceptors) {
    try {
      qb = plugin.interceptQuery!(qb, context);
    } catch (error) {
      throw wrapPluginError(error, {
        plugin: plugin.name,
        hook: "interceptQuery",
        operation,
        ...(target === undefined ? {} : { table: target.table }),
      });
    }
  }
  const out = qb.toOperationNode() as RootOperationNode;
  if (out.kind !== node.kind) {
    throw new PluginError({
      plugin: f.interceptors.map((p) => p.name).join(", "),
      hook: "interceptQuery",
      operation,
      ...(target === undefined ? {} : { table: target.table }),
      cause: new TypeError(`interceptQuery must return a builder of the same statement: got a ${out.kind}`),
    });
  }
  return out;
}
