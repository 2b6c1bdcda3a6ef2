/**
 * A `pg` client as {@linkcode guardPostgresPool} sees it: something that
 * emits `error` events.
 */
export interface PostgresClientEvents {
  /** Adds a listener for the client's `error` event. */
  on(event: "error", listener: (error: Error) => void): unknown;
}

/**
 * A `pg.Pool` as {@linkcode guardPostgresPool} sees it: its `connect` and
 * `error` events. Declared structurally so this module needs no `pg` types.
 */
export interface PostgresPoolEvents {
  /** Adds a listener for a client the pool has just connected. */
  on(event: "connect", listener: (client: PostgresClientEvents) => void): unknown;
  /** Adds a listener for an error of an idle client. */
  on(event: "error", listener: (error: Error) => void): unknown;
}

/** Options of {@linkcode guardPostgresPool}. */
export interface GuardPostgresPoolOptions {
  /**
   * Told of every error a client or the pool emits outside a query (a
   * backend terminated by `pg_terminate_backend`, a server shutting down, a
   * network reset), for logging. The statement that next uses the client
   * rejects anyway, so there is nothing to handle here.
   *
   * @default nothing is done
   */
  onError?: (error: Error) => void;
}

const GUARDED: WeakSet<object> = new WeakSet();

/**
 * Keeps a PostgreSQL connection lost outside a query from crashing the
 * process: adds one `error` listener to every client the `pg.Pool` connects,
 * and one to the pool.
 *
 * pg-pool listens for errors of idle clients only and removes its listener
 * while a client is checked out (node-postgres#2509). A backend that dies
 * between two statements of a transaction (`pg_terminate_backend`, a
 * failover, an idle-in-transaction timeout) then emits an `error` nobody
 * listens to, and Node, Deno and Bun end the process. With the guard, the
 * next statement of that transaction rejects with "Client has encountered a
 * connection error and is not queryable", which `parseDatabaseError` reads as
 * a `ConnectionError`; nothing of the transaction was committed, and the pool
 * drops the client when Kysely releases it.
 *
 * Guard the pool before its first query: clients it connected before the call
 * get no listener. Guarding a pool twice does nothing (the second call's
 * options are ignored).
 *
 * @param pool The `pg.Pool` to guard.
 * @param options What to do with the errors it sees.
 * @returns The same pool, to pass on to Kysely's `PostgresDialect`.
 *
 * @example A PostgreSQL Kysely whose process survives a killed backend
 * ```ts
 * import { Kysely, PostgresDialect } from "kysely";
 * import pg from "pg";
 * import { guardPostgresPool } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new PostgresDialect({
 *     pool: guardPostgresPool(new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:5432/test" }), {
 *       onError: (error) => console.warn("PostgreSQL connection lost:", error.message),
 *     }),
 *   }),
 * });
 * await db.destroy();
 * ```
 *
 * @example Guarding twice adds no second listener
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventEmitter } from "node:events";
 * import { guardPostgresPool } from "@kysera/kysera/dialects";
 *
 * const pool = new EventEmitter(); // stands for a pg.Pool
 * assert.equal(guardPostgresPool(guardPostgresPool(pool)), pool);
 * assert.equal(pool.listenerCount("connect"), 1);
 * assert.equal(pool.listenerCount("error"), 1);
 * ```
 */
export function guardPostgresPool<Pool extends PostgresPoolEvents>(
  pool: Pool,
  options: GuardPostgresPoolOptions = {},
): Pool {
  if (GUARDED.has(pool)) return pool;
  GUARDED.add(pool);
  const { onError } = options;
  const listener = (error: Error): void => onError?.(error);
  pool.on("error", listener);
  pool.on("connect", (client) => {
    client.on("error", listener);
  });
  return pool;
}
