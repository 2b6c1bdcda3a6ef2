/**
 * Which connections are inside a transaction, learned by watching the
 * statements that open and end one.
 *
 * Kysely opens a transaction through its driver: `beginTransaction`,
 * `commitTransaction` and `rollbackTransaction` send `begin` / `start
 * transaction ...`, `commit` and `rollback` as raw statements on the
 * connection that Kysely got from the executor's `provideConnection`
 * (`transaction()`, `startTransaction()`, and any `sql\`begin\`` sent through
 * `connection()`). The executor hands out connections wrapped in a
 * {@linkcode TrackedConnection}, which sees those statements, so a hook can be
 * told whether its query runs inside a transaction without asking the
 * database. A transaction opened behind Kysely's back (a statement Kysely
 * never sees, or MySQL's implicit commit after DDL) is not seen.
 */
import { CompiledQuery, type DatabaseConnection, type QueryResult } from "kysely";
import { transactionStatements } from "./_kysely_internals.ts";
import type { KyseraPlugin, TransactionEvent, TransactionEventKind } from "./kysera_plugin.ts";
import { wrapPluginError } from "./plugin_error.ts";

/** The transaction state of one connection. */
export class TransactionState {
  /**
   * The open transaction: a fresh object per transaction (so hooks can key
   * per-transaction caches on it in a `WeakMap`), `undefined` outside one.
   */
  transaction: object | undefined = undefined;
  /**
   * The `onTransaction` id of the open transaction, or of the last one whose
   * `commit`/`rollback` failed (so the `rollback` that follows is reported
   * with it); `undefined` otherwise.
   */
  id: number | undefined = undefined;
  /** The open transaction's isolation level, when one was set. */
  isolationLevel: string | undefined = undefined;
  /** MySQL's `set transaction isolation level ...`: for the next `begin`. */
  pendingIsolation: string | undefined = undefined;
  /** The open savepoints' names, outermost first. */
  savepoints: string[] = [];
  /**
   * An `onTransaction` hook threw after a `commit`/`rollback` that ended the
   * transaction: the `rollback` Kysely sends next (on the error) is not sent.
   */
  skipRollback = false;
}

const STATES = new WeakMap<DatabaseConnection, TransactionState>();

const {
  begin: BEGIN,
  end: END,
  setTransaction: SET_TRANSACTION,
  savepoint: SAVEPOINT,
  release: RELEASE,
  rollbackTo: ROLLBACK_TO,
  isolation: ISOLATION,
} = transactionStatements;

/** One id per top-level transaction, across all connections. */
let nextTransactionId = 0;

/** The state of a connection (tracked or not). */
export function stateOf(connection: DatabaseConnection): TransactionState {
  const inner = connection instanceof TrackedConnection ? connection.inner : connection;
  let state = STATES.get(inner);
  if (state === undefined) {
    state = new TransactionState();
    STATES.set(inner, state);
  }
  return state;
}

type Kind = TransactionEventKind | "set-transaction";

/** What a raw statement does to a transaction, `undefined` for anything else. */
function classify(sql: string): { kind: Kind; name?: string } | undefined {
  let m = ROLLBACK_TO.exec(sql);
  if (m !== null) return { kind: "rollback-to", name: unquote(m[1]!) };
  if ((m = SAVEPOINT.exec(sql)) !== null) return { kind: "savepoint", name: unquote(m[1]!) };
  if ((m = RELEASE.exec(sql)) !== null) return { kind: "release", name: unquote(m[1]!) };
  if (BEGIN.test(sql)) return { kind: "begin" };
  if (END.test(sql)) return { kind: /^\s*rollback/i.test(sql) ? "rollback" : "commit" };
  if (SET_TRANSACTION.test(sql)) return { kind: "set-transaction" };
  return undefined;
}

function unquote(name: string): string {
  const first = name[0];
  if ((first === '"' || first === "`" || first === "[") && name.length > 1) return name.slice(1, -1);
  return name;
}

function isolationOf(sql: string): string | undefined {
  const m = ISOLATION.exec(sql);
  return m === null ? undefined : m[1]!.toLowerCase().replace(/\s+/g, " ");
}

/**
 * A connection whose transaction statements update its
 * {@linkcode TransactionState} and are reported to the `onTransaction` hooks
 * of `observers`.
 */
export class TrackedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly state: TransactionState;
  readonly #observers: readonly KyseraPlugin[];

  constructor(inner: DatabaseConnection, observers: readonly KyseraPlugin[] = []) {
    this.inner = inner;
    this.state = stateOf(inner);
    this.#observers = observers;
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (compiledQuery.query.kind !== "RawNode") {
      this.state.skipRollback = false;
      return this.inner.executeQuery<R>(compiledQuery);
    }
    if (this.#observers.length > 0) return this.#observed<R>(compiledQuery);
    return this.#unobserved<R>(compiledQuery);
  }

  async #unobserved<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const sql = compiledQuery.sql;
    if (BEGIN.test(sql)) {
      const result = await this.inner.executeQuery<R>(compiledQuery);
      this.state.transaction = {};
      return result;
    }
    if (END.test(sql)) {
      try {
        return await this.inner.executeQuery<R>(compiledQuery);
      } finally {
        this.state.transaction = undefined;
      }
    }
    return this.inner.executeQuery<R>(compiledQuery);
  }

  /** A raw statement with `onTransaction` hooks: see `KyseraPlugin.onTransaction`. */
  async #observed<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const state = this.state;
    const sql = compiledQuery.sql;
    const what = classify(sql);
    if (what === undefined) {
      state.skipRollback = false;
      return this.inner.executeQuery<R>(compiledQuery);
    }
    const { kind, name } = what;
    if (kind === "set-transaction") {
      const result = await this.inner.executeQuery<R>(compiledQuery);
      const isolation = isolationOf(sql);
      if (isolation !== undefined) state.pendingIsolation = isolation;
      return result;
    }
    if (kind === "rollback" && state.skipRollback) {
      state.skipRollback = false;
      return { rows: [] };
    }
    state.skipRollback = false;
    // A savepoint command outside a transaction Kysera saw is not reported.
    if ((kind === "savepoint" || kind === "release" || kind === "rollback-to") && state.transaction === undefined) {
      return this.inner.executeQuery<R>(compiledQuery);
    }
    let id: number;
    let depth = 0;
    let isolationLevel: string | undefined;
    let index = -1;
    if (kind === "begin") {
      id = ++nextTransactionId;
      isolationLevel = isolationOf(sql) ?? state.pendingIsolation;
      state.pendingIsolation = undefined;
    } else {
      id = state.id ?? ++nextTransactionId;
      isolationLevel = state.isolationLevel;
      if (kind === "savepoint") depth = state.savepoints.length + 1;
      else if (kind === "release" || kind === "rollback-to") {
        index = state.savepoints.lastIndexOf(name!);
        depth = index >= 0 ? index + 1 : state.savepoints.length;
      }
    }
    const started = performance.now();
    let result: QueryResult<R> | undefined;
    let failed = false;
    let error: unknown;
    try {
      result = await this.inner.executeQuery<R>(compiledQuery);
    } catch (e) {
      failed = true;
      error = e;
    }
    const durationMs = performance.now() - started;
    switch (kind) {
      case "begin":
        if (!failed) {
          state.transaction = {};
          state.id = id;
          state.isolationLevel = isolationLevel;
          state.savepoints = [];
        }
        break;
      case "commit":
      case "rollback":
        state.transaction = undefined;
        state.savepoints = [];
        state.isolationLevel = undefined;
        state.id = failed ? id : undefined;
        break;
      case "savepoint":
        if (!failed) state.savepoints.push(name!);
        break;
      case "release":
        if (!failed && index >= 0) state.savepoints.length = index;
        break;
      case "rollback-to":
        if (!failed && index >= 0) state.savepoints.length = index + 1;
        break;
    }
    const hookError = this.#emit({
      kind,
      transactionId: id,
      depth,
      isolationLevel,
      savepoint: name,
      sql,
      durationMs,
      error: failed ? error : undefined,
    });
    if (failed) throw error;
    if (hookError !== undefined) {
      if (kind === "begin") {
        // Never leave the transaction open behind a begin that throws.
        const rollback = CompiledQuery.raw("rollback");
        const rollbackStarted = performance.now();
        let rollbackError: unknown;
        try {
          await this.inner.executeQuery(rollback);
        } catch (e) {
          rollbackError = e;
        }
        state.transaction = undefined;
        state.id = undefined;
        state.isolationLevel = undefined;
        this.#emit({
          kind: "rollback",
          transactionId: id,
          depth: 0,
          isolationLevel,
          savepoint: undefined,
          sql: rollback.sql,
          durationMs: performance.now() - rollbackStarted,
          error: rollbackError,
        });
      } else if (kind === "commit" || kind === "rollback") {
        state.skipRollback = true;
      }
      throw hookError;
    }
    return result!;
  }

  /** Calls every `onTransaction` hook; returns the first hook's error, as a `PluginError`. */
  #emit(event: Omit<TransactionEvent, "context">): unknown {
    let hookError: unknown;
    for (const plugin of this.#observers) {
      try {
        plugin.onTransaction!({ ...event, context: plugin.context?.get() });
      } catch (error) {
        hookError ??= wrapPluginError(error, { plugin: plugin.name, hook: "onTransaction", operation: event.kind });
      }
    }
    return hookError;
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(compiledQuery, chunkSize);
  }
}

/**
 * `connection`, tracked (itself if it already is), reporting to the
 * `onTransaction` hooks of `observers`.
 */
export function track(connection: DatabaseConnection, observers?: readonly KyseraPlugin[]): TrackedConnection {
  return connection instanceof TrackedConnection ? connection : new TrackedConnection(connection, observers);
}
