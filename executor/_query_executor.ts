/**
 * The wrapping `QueryExecutor` that carries Kysera's plugins: every query of
 * an executor and of everything derived from it passes `transformQuery`
 * (tree hooks) and `executeQuery` (raw-SQL policy, `aroundWrite`).
 */
import {
  type CommonTableExpressionNode,
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
  RawNode,
  type RootOperationNode,
  type SelectQueryNode,
  type UnknownRow,
  UpdateQueryBuilder,
  type UpdateQueryNode,
  WheneableMergeQueryBuilder,
  type WithNode,
} from "kysely";
import type {
  InterceptContext,
  KyseraPlugin,
  QueryExecution,
  QueryOperation,
  WriteExecution,
} from "./kysera_plugin.ts";
import { track, type TrackedConnection, type TransactionState } from "./_transaction_state.ts";
import { isRawSqlAllowed } from "./plugin_context.ts";
import { PluginError, RawSqlRefusedError, wrapPluginError } from "./plugin_error.ts";
import { cteWrites, isWrite, operationOf, targetOf } from "./_statement.ts";
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
  readonly aroundQuery: readonly KyseraPlugin[];
  /** Whether connections are tracked for their transaction state (a hook needs it). */
  readonly tracking: boolean;
  readonly rawPolicies: readonly KyseraPlugin[];
  /** Whether any hook works on the tree of a builder as Kysely turns it into nodes (`transformQuery`, raw SQL). */
  readonly buildHooks: boolean;
  /** Whether any hook rewrites the whole statement when it is compiled (`interceptQuery`, `onWrite`, `scopeRows`). */
  readonly compileHooks: boolean;
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
    this.aroundQuery = plugins.filter((p) => p.aroundQuery !== undefined);
    this.tracking = this.around.length + this.aroundQuery.length > 0;
    this.rawPolicies = plugins.filter((p) => p.rawSql !== undefined && p.rawSql !== "allow");
    this.buildHooks = this.transformers.length + this.rawPolicies.length > 0;
    this.compileHooks = this.interceptors.length + this.writers.length + this.scopers.length > 0;
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
    if (f.rawPolicies.length > 0) f.compiled.add(compiled);
    return compiled;
  }

  provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    // Kysely begins and ends transactions on the connections handed out
    // here: tracked, so hooks learn whether a transaction is open.
    if (this.#family.tracking) return this.#inner.provideConnection((connection) => consumer(track(connection)));
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
    if (f.aroundQuery.length > 0 || (f.around.length > 0 && isWrite(compiledQuery.query))) {
      return this.#hooked(compiledQuery).then((r) => this.#results(r, compiledQuery.queryId));
    }
    if (f.resultTransformers.length === 0) return this.#inner.executeQuery(compiledQuery);
    return this.#inner.executeQuery(compiledQuery).then((r) => this.#results(r, compiledQuery.queryId));
  }

  async *stream<R>(compiledQuery: CompiledQuery<R>, chunkSize: number): AsyncIterableIterator<QueryResult<R>> {
    const f = this.#family;
    if (f.rawPolicies.length > 0 && !f.compiled.has(compiledQuery)) f.checkRaw("precompiled query");
    if (f.aroundQuery.length > 0) {
      yield* this.#hookedStream(compiledQuery, chunkSize);
      return;
    }
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

  /**
   * Runs a statement through the `aroundQuery` hooks and, for a write, the
   * `aroundWrite` hooks, all on one connection.
   */
  #hooked<R>(compiled: CompiledQuery<R>): Promise<QueryResult<R>> {
    return this.#inner.provideConnection((connection) =>
      new HookRun(this.#inner, this.#family, compiled, track(connection)).run() as Promise<QueryResult<R>>
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
      const tracked = track(connection);
      return new HookRun(this.#inner, this.#family, compiled, tracked, () => {
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

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

// Promise.withResolvers() needs Node 22; the npm package supports Node 20.
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What an execution tells a hook about its connection. */
interface ConnectionFields {
  // deno-lint-ignore no-explicit-any
  readonly db: Kysely<any>;
  // deno-lint-ignore no-explicit-any
  readonly rawDb: Kysely<any>;
  readonly inTransaction: boolean;
  readonly transaction: object | undefined;
}

/** `fields` plus the connection's Kysely instances and transaction state, read when a hook looks. */
function onConnection<T extends object>(run: HookRun, state: TransactionState, fields: T): T & ConnectionFields {
  return {
    ...fields,
    get db() {
      return run.db;
    },
    get rawDb() {
      return run.rawDb;
    },
    get inTransaction() {
      return state.transaction !== undefined;
    },
    get transaction() {
      return state.transaction;
    },
  };
}

/** One statement's walk through the hooks, on one connection. */
class HookRun {
  readonly #family: Family;
  readonly #compiled: CompiledQuery;
  readonly #connection: TrackedConnection;
  readonly #onConnection: QueryExecutor;
  readonly #last: (() => Promise<QueryResult<unknown>>) | undefined;
  /** Errors of the statement itself, passed through unwrapped. */
  readonly #fromStatement = new WeakSet<object>();
  readonly #operation: QueryOperation | undefined;
  // deno-lint-ignore no-explicit-any
  #db: Kysely<any> | undefined;
  // deno-lint-ignore no-explicit-any
  #rawDb: Kysely<any> | undefined;

  constructor(
    inner: QueryExecutor,
    family: Family,
    compiled: CompiledQuery,
    connection: TrackedConnection,
    last?: () => Promise<QueryResult<unknown>>,
  ) {
    this.#family = family;
    this.#compiled = compiled;
    this.#connection = connection;
    this.#last = last;
    this.#operation = operationOf(compiled.query);
    // The hooks run while this connection is held: their queries must use
    // it directly (a transaction's provider would wait for us).
    const direct: ConnectionProvider = { provideConnection: (consumer) => consumer(connection) };
    this.#onConnection = inner.withConnectionProvider(direct);
  }

  run(): Promise<QueryResult<unknown>> {
    return this.#query(0);
  }

  // deno-lint-ignore no-explicit-any
  get db(): Kysely<any> {
    return this.#db ??= kyselyWithExecutor(this.#family.raw, new KyseraQueryExecutor(this.#onConnection, this.#family));
  }

  // deno-lint-ignore no-explicit-any
  get rawDb(): Kysely<any> {
    return this.#rawDb ??= kyselyWithExecutor(this.#family.raw, this.#onConnection);
  }

  async #statement(query: CompiledQuery): Promise<QueryResult<unknown>> {
    try {
      return await (this.#last === undefined ? this.#onConnection.executeQuery(query) : this.#last());
    } catch (error) {
      if (typeof error === "object" && error !== null) this.#fromStatement.add(error);
      throw error;
    }
  }

  #wrap(error: unknown, plugin: KyseraPlugin, hook: "aroundQuery" | "aroundWrite", table?: string): unknown {
    if (typeof error === "object" && error !== null && this.#fromStatement.has(error)) return error;
    const operation = this.#operation;
    return wrapPluginError(error, {
      plugin: plugin.name,
      hook,
      ...(operation === undefined ? {} : { operation }),
      ...(table === undefined ? {} : { table }),
    });
  }

  async #query(i: number): Promise<QueryResult<unknown>> {
    const f = this.#family;
    const plugin = f.aroundQuery[i];
    if (plugin === undefined) {
      if (f.around.length > 0 && this.#last === undefined && isWrite(this.#compiled.query)) {
        return await this.#write(0, this.#compiled, targetOf(this.#compiled.query)?.table);
      }
      return await this.#statement(this.#compiled);
    }
    const execution: QueryExecution = onConnection(this, this.#connection.state, {
      operation: this.#operation,
      query: this.#compiled,
      mode: this.#last === undefined ? "execute" : "stream",
      context: plugin.context?.get(),
    });
    try {
      return await plugin.aroundQuery!(execution, () => this.#query(i + 1));
    } catch (error) {
      throw this.#wrap(error, plugin, "aroundQuery");
    }
  }

  async #write(i: number, query: CompiledQuery, table: string | undefined): Promise<QueryResult<unknown>> {
    const plugin = this.#family.around[i];
    if (plugin === undefined) return await this.#statement(query);
    const execution: WriteExecution = onConnection(this, this.#connection.state, {
      operation: this.#operation as QueryOperation,
      table,
      query,
      context: plugin.context?.get(),
    });
    try {
      return await plugin.aroundWrite!(execution, (replacement) => this.#write(i + 1, replacement ?? query, table));
    } catch (error) {
      throw this.#wrap(error, plugin, "aroundWrite", table);
    }
  }
}

/** Kysera plugins' own `transformQuery` hooks and the raw-SQL policy, wherever Kysely turns a builder into nodes. */
function transformBuilt(node: RootOperationNode, queryId: QueryId, f: Family): RootOperationNode {
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
  if (node.kind === "RawNode") f.checkRaw("raw query");
  return node;
}

/**
 * `interceptQuery`, `onWrite` and `scopeRows` over a whole statement. A raw
 * statement (`sql\`...\`` run on the executor, or a savepoint command) is
 * left as it is, but builders embedded in it are statements of their own.
 */
function transformStatement(node: RootOperationNode, queryId: QueryId, f: Family): RootOperationNode {
  if (node.kind === "RawNode") return embeddedStatements(node as RawNode, queryId, f);
  const operation = operationOf(node);
  if (operation === undefined) return node;
  if (f.interceptors.length > 0) node = intercept(node, operation, queryId, f);
  if (f.writers.length > 0) {
    node = writesInWith(node, f);
    if (operation === "insert" || operation === "replace" || operation === "update") {
      node = applyWriteHooks(node, f.writers, f.dialect) as RootOperationNode;
    }
  }
  if (f.scopers.length > 0) {
    const scoped = applyRowScopes(node, f.scopers, operation);
    if (scoped.rawSource) f.checkRaw("raw table source");
    node = scoped.node as RootOperationNode;
  }
  return node;
}

/**
 * `onWrite` on the INSERTs and UPDATEs of a data-modifying WITH clause
 * (PostgreSQL: `with x as (insert ... returning *) select ...`), which are
 * writes of the statement like its own. (Their rows are scoped by the
 * row-scope walk, which enters every CTE.)
 */
function writesInWith(node: RootOperationNode, f: Family): RootOperationNode {
  const writes = cteWrites(node);
  if (writes.length === 0) return node;
  const withNode = (node as unknown as { with: WithNode }).with;
  let changed = false;
  const expressions = withNode.expressions.map((cte) => {
    if (
      !writes.includes(cte) || (cte.expression.kind !== "InsertQueryNode" && cte.expression.kind !== "UpdateQueryNode")
    ) {
      return cte;
    }
    const body = applyWriteHooks(cte.expression, f.writers, f.dialect);
    if (body === cte.expression) return cte;
    changed = true;
    return Object.freeze({ ...cte, expression: body }) as CommonTableExpressionNode;
  });
  if (!changed) return node;
  return Object.freeze({ ...node, with: Object.freeze({ ...withNode, expressions: Object.freeze(expressions) }) });
}

/** A raw node whose embedded statements (`sql\`... ${db.selectFrom("t")} ...\``) went through {@linkcode transformStatement}. */
function embeddedStatements(node: RawNode, queryId: QueryId, f: Family): RawNode {
  let parameters: OperationNode[] | undefined;
  node.parameters.forEach((parameter, i) => {
    const next = parameter.kind === "RawNode" || operationOf(parameter) !== undefined
      ? transformStatement(parameter as RootOperationNode, queryId, f)
      : parameter;
    if (next !== parameter) (parameters ??= [...node.parameters])[i] = next;
  });
  return parameters === undefined ? node : RawNode.create(node.sqlFragments, parameters);
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
