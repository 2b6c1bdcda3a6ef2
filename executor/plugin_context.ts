import { AsyncLocalStorage } from "node:async_hooks";

/**
 * A value scoped to an asynchronous call tree, for a plugin's per-call
 * settings ("include deleted rows", "run as system", the current tenant).
 * Backed by `AsyncLocalStorage` from `node:async_hooks`, which Deno, Node
 * and Bun provide. Concurrent calls each see their own value.
 *
 * A plugin declares its context as `context` on the plugin object; the
 * executor then reads it once per hook call and hands the value to the hook.
 *
 * @typeParam T The value's type.
 *
 * @example Running a call with a context value
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginContext } from "@kysera/kysera/executor";
 *
 * const tenant = new PluginContext<{ tenantId: number }>("tenant");
 * const seen = await tenant.run({ tenantId: 7 }, async () => tenant.get()?.tenantId);
 * assert.equal(seen, 7);
 * assert.equal(tenant.get(), undefined);
 * ```
 */
export class PluginContext<T> {
  /** A name for messages. */
  readonly name: string;
  readonly #storage = new AsyncLocalStorage<T>();

  /**
   * Creates a {@linkcode PluginContext}.
   *
   * @param name A name for messages.
   */
  constructor(name: string) {
    this.name = name;
  }

  /**
   * Runs `fn` with `value` as this context's value, for everything `fn`
   * starts (awaited or not).
   *
   * @param value The value.
   * @param fn The call.
   * @returns What `fn` returns.
   */
  run<R>(value: T, fn: () => R): R {
    return this.#storage.run(value, fn);
  }

  /**
   * The value of the innermost enclosing {@linkcode PluginContext.run}.
   *
   * @returns The value, or `undefined` outside any `run`.
   */
  get(): T | undefined {
    return this.#storage.getStore();
  }
}

const RAW_SQL = new PluginContext<true>("allowRawSql");

/**
 * Runs `fn` with raw SQL allowed: plugins that refuse raw SQL (see
 * `KyseraPlugin.rawSql`) let it pass for every query `fn` runs. This is the
 * explicit, per-call opt-in; keep it as narrow as the raw statement.
 *
 * @param fn The call that runs raw SQL.
 * @returns What `fn` returns.
 *
 * @example Opting in to one raw statement
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, sql, SqliteDialect } from "kysely";
 * import { allowRawSql, createExecutorSync } from "@kysera/kysera/executor";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * const executor = createExecutorSync(db, [{ name: "strict", rawSql: "refuse" }]);
 * const result = await allowRawSql(() => sql<{ one: number }>`select 1 as one`.execute(executor));
 * assert.equal(result.rows[0]?.one, 1);
 * await db.destroy();
 * ```
 */
export function allowRawSql<R>(fn: () => R): R {
  return RAW_SQL.run(true, fn);
}

/**
 * Whether the current call runs inside {@linkcode allowRawSql}.
 *
 * @returns `true` inside `allowRawSql`.
 *
 * @example Inside and outside allowRawSql
 * ```ts
 * import assert from "node:assert/strict";
 * import { allowRawSql, isRawSqlAllowed } from "@kysera/kysera/executor";
 *
 * assert.equal(isRawSqlAllowed(), false);
 * assert.equal(allowRawSql(() => isRawSqlAllowed()), true);
 * ```
 */
export function isRawSqlAllowed(): boolean {
  return RAW_SQL.get() === true;
}
