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
import type { CompiledQuery, DatabaseConnection, QueryResult } from "kysely";
import { transactionStatements } from "./_kysely_internals.ts";

/** The transaction state of one connection. */
export class TransactionState {
  /**
   * The open transaction: a fresh object per transaction (so hooks can key
   * per-transaction caches on it in a `WeakMap`), `undefined` outside one.
   */
  transaction: object | undefined = undefined;
}

const STATES = new WeakMap<DatabaseConnection, TransactionState>();

const { begin: BEGIN, end: END } = transactionStatements;

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

/** A connection whose transaction statements update its {@linkcode TransactionState}. */
export class TrackedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly state: TransactionState;

  constructor(inner: DatabaseConnection) {
    this.inner = inner;
    this.state = stateOf(inner);
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (compiledQuery.query.kind !== "RawNode") return this.inner.executeQuery<R>(compiledQuery);
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

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(compiledQuery, chunkSize);
  }
}

/** `connection`, tracked (itself if it already is). */
export function track(connection: DatabaseConnection): TrackedConnection {
  return connection instanceof TrackedConnection ? connection : new TrackedConnection(connection);
}
