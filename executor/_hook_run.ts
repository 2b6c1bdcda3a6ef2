/**
 * One statement's walk through the `aroundQuery` and `aroundWrite` hooks,
 * on the one connection it runs on.
 */
import type { CompiledQuery, ConnectionProvider, Kysely, QueryExecutor, QueryResult } from "kysely";
import type { KyseraPlugin, QueryExecution, QueryOperation, WriteExecution } from "./kysera_plugin.ts";
import type { TrackedConnection, TransactionState } from "./_transaction_state.ts";
import { wrapPluginError } from "./plugin_error.ts";
import { isWrite, operationOf, targetOf } from "./query_tree.ts";
import { kyselyWithExecutor } from "./_kysely_internals.ts";
import type { Family } from "./_family.ts";
import { isConnectionError, isKyseraError, parseDatabaseError } from "../core/mod.ts";

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

// Promise.withResolvers() needs Node 22; the npm package supports Node 20.
export function deferred<T>(): Deferred<T> {
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
export class HookRun {
  readonly #family: Family;
  readonly #compiled: CompiledQuery;
  readonly #connection: TrackedConnection;
  readonly #onConnection: QueryExecutor;
  /** Wraps a query executor in Kysera's (for `db`, whose queries pass the plugins again). */
  readonly #wrap: (inner: QueryExecutor) => QueryExecutor;
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
    wrap: (inner: QueryExecutor) => QueryExecutor,
    compiled: CompiledQuery,
    connection: TrackedConnection,
    last?: () => Promise<QueryResult<unknown>>,
  ) {
    this.#family = family;
    this.#wrap = wrap;
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
    return this.#db ??= kyselyWithExecutor(this.#family.raw, this.#wrap(this.#onConnection));
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

  #wrapError(error: unknown, plugin: KyseraPlugin, hook: "aroundQuery" | "aroundWrite", table?: string): unknown {
    if (typeof error === "object" && error !== null && this.#fromStatement.has(error)) return error;
    // A plugin's own statement on this connection that deadlocked, failed to
    // serialize, timed out on a lock or lost the connection: the caller's
    // transaction is in the same state as if its own statement had, so the
    // driver's error passes through as raised, for the caller (and a retry)
    // to classify as it would the statement's own.
    if (this.#transient(error)) return error;
    const operation = this.#operation;
    return wrapPluginError(error, {
      plugin: plugin.name,
      hook,
      ...(operation === undefined ? {} : { operation }),
      ...(table === undefined ? {} : { table }),
    });
  }

  #transient(error: unknown): boolean {
    const dialect = this.#family.dialect;
    if (dialect === undefined || typeof error !== "object" || error === null || isKyseraError(error)) return false;
    const parsed = parseDatabaseError(error, dialect);
    return (parsed as { transient?: boolean }).transient === true || isConnectionError(parsed);
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
      throw this.#wrapError(error, plugin, "aroundQuery");
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
      throw this.#wrapError(error, plugin, "aroundWrite", table);
    }
  }
}
