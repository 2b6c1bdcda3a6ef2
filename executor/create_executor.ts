import type { Kysely, QueryExecutor } from "kysely";
import type { KyseraPlugin } from "./kysera_plugin.ts";
import { orderPlugins } from "./order_plugins.ts";
import { PluginLifecycleError, wrapPluginError } from "./plugin_error.ts";
import { Family } from "./_family.ts";
import { familyOfQueryExecutor, KyseraQueryExecutor } from "./_kysera_query_executor.ts";
import { kyselyWithExecutor } from "./_kysely_internals.ts";
import type { OutsideTransactionPolicy } from "./transaction_scope.ts";

/** Options of {@linkcode createExecutor} and {@linkcode createExecutorSync}. */
export interface ExecutorOptions {
  /**
   * What a query sent through the executor itself (or a repository or ORM
   * not bound to the transaction) gets while a transaction callback of the
   * executor runs (`executor.transaction().execute(fn)`, the DAL's
   * `transaction()`, `repo.transaction()`, `orm.transaction()`): such a query
   * would run outside the transaction. See {@linkcode OutsideTransactionPolicy}.
   *
   * @default {"throw"}
   */
  readonly outsideTransaction?: OutsideTransactionPolicy | undefined;
}

/**
 * A `Kysely<DB>` whose every query passes Kysera's plugins: the full Kysely
 * API works on it (`fn`, `dynamic`, `schema`, `introspection`, `with`,
 * `transaction()` with isolation level and access mode,
 * `startTransaction()` with savepoints, `connection()`, `withSchema()`,
 * `withPlugin()`, `withoutPlugins()`, `withTables()`, `destroy()`), and
 * every instance derived from it keeps the plugins.
 *
 * @typeParam DB The database type.
 */
export type KyseraExecutor<DB> = Kysely<DB>;

const FAMILIES = new WeakMap<object, Family>();

/**
 * Creates an executor over `db` with `plugins` in force, without running
 * `onInit` hooks (a plugin that has one is refused: use
 * {@linkcode createExecutor}). Plugins' `verifySchema` checks (tables that
 * must exist, columns a plugin needs) are skipped: they need to wait.
 *
 * @param db The Kysely instance to wrap (kept unchanged; see {@linkcode getRawDb}).
 * @param plugins The plugins, in any order; see {@linkcode orderPlugins}.
 * @returns The executor.
 * @throws {PluginValidationError} When the plugins cannot be used together.
 * @throws {TypeError} When a plugin has `onInit`, or `db` is already an executor.
 *
 * @example A tenant scope on every query
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * interface DB { posts: { id: number; tenant_id: number } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * const executor = createExecutorSync(db, [{
 *   name: "tenant",
 *   scopeRows: (ref, eb) => ref.table === "posts" ? eb(ref.column("tenant_id"), "=", 1) : undefined,
 * }]);
 * assert.equal(
 *   executor.selectFrom("posts as p").select("p.id").compile().sql,
 *   'select "p"."id" from "posts" as "p" where "p"."tenant_id" = ?',
 * );
 * await db.destroy();
 * ```
 */
export function createExecutorSync<DB>(
  db: Kysely<DB>,
  plugins: readonly KyseraPlugin[],
  options: ExecutorOptions = {},
): KyseraExecutor<DB> {
  const ordered = orderPlugins(plugins);
  const withInit = ordered.find((p) => p.onInit !== undefined);
  if (withInit !== undefined) {
    throw new TypeError(
      `Cannot create the executor synchronously: plugin '${withInit.name}' has an onInit hook; use createExecutor()`,
    );
  }
  return install(db, ordered, options);
}

function install<DB>(db: Kysely<DB>, ordered: readonly KyseraPlugin[], options: ExecutorOptions): KyseraExecutor<DB> {
  if (db.getExecutor() instanceof KyseraQueryExecutor) {
    throw new TypeError("Cannot create an executor over an executor: pass every plugin to one createExecutor() call");
  }
  const policy = options.outsideTransaction ?? "throw";
  if (policy !== "throw" && policy !== "warn" && policy !== "allow") {
    throw new TypeError(
      `Cannot create the executor: 'outsideTransaction' must be "throw", "warn" or "allow": current value is ${
        String(policy)
      }`,
    );
  }
  const family = new Family(db, ordered, policy);
  const executor = kyselyWithExecutor(db, new KyseraQueryExecutor(db.getExecutor(), family));
  FAMILIES.set(executor, family);
  return executor;
}

/**
 * Creates an executor over `db` with `plugins` in force and runs each
 * plugin's `verifySchema` then `onInit`, in plugin order. If one fails, the `onDestroy` of
 * those already initialised runs (in reverse) and the failure is thrown as
 * a {@linkcode PluginError}.
 *
 * @param db The Kysely instance to wrap.
 * @param plugins The plugins, in any order.
 * @returns The executor.
 * @throws {PluginValidationError} When the plugins cannot be used together.
 * @throws {PluginSchemaError} When a plugin's `verifySchema` finds a listed table or a needed column missing.
 * @throws {PluginError} When an `onInit` fails.
 *
 * @example Lifecycle hooks
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutor, destroyExecutor } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * const calls: string[] = [];
 * const executor = await createExecutor(db, [{
 *   name: "hello",
 *   onInit: () => void calls.push("init"),
 *   onDestroy: () => void calls.push("destroy"),
 * }]);
 * assert.deepEqual(calls, ["init"]);
 * await destroyExecutor(executor); // also destroys the database connection
 * assert.deepEqual(calls, ["init", "destroy"]);
 * ```
 */
export async function createExecutor<DB>(
  db: Kysely<DB>,
  plugins: readonly KyseraPlugin[],
  options: ExecutorOptions = {},
): Promise<KyseraExecutor<DB>> {
  const ordered = orderPlugins(plugins);
  const executor = install(db, ordered, options);
  const done: KyseraPlugin[] = [];
  for (const plugin of ordered) {
    let hook: "verifySchema" | "onInit" = "verifySchema";
    try {
      await plugin.verifySchema?.(executor);
      hook = "onInit";
      await plugin.onInit?.(executor);
    } catch (error) {
      for (const initialised of done.reverse()) {
        await Promise.resolve().then(() => initialised.onDestroy?.(executor)).catch(() => {});
      }
      throw wrapPluginError(error, { plugin: plugin.name, hook });
    }
    done.push(plugin);
  }
  return executor;
}

/**
 * Runs every plugin's `onDestroy` in reverse plugin order (all of them, even
 * when one fails), then destroys the database connection
 * (`executor.destroy()`). `executor.destroy()` alone skips the hooks.
 *
 * @param executor An executor from {@linkcode createExecutor}.
 * @throws {PluginLifecycleError} With every failure, after all hooks ran and the connection was destroyed.
 * @throws {TypeError} When `executor` is not an executor.
 *
 * @example Destroying an executor and its database
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync, destroyExecutor } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await destroyExecutor(createExecutorSync(db, []));
 * ```
 */
export async function destroyExecutor<DB>(executor: KyseraExecutor<DB>): Promise<void> {
  const family = familyOf(executor);
  const errors: Error[] = [];
  for (const plugin of [...family.plugins].reverse()) {
    try {
      await plugin.onDestroy?.(executor);
    } catch (error) {
      errors.push(wrapPluginError(error, { plugin: plugin.name, hook: "onDestroy" }));
    }
  }
  await executor.destroy();
  if (errors.length > 0) throw new PluginLifecycleError(errors);
}

/**
 * The Kysely instance an executor was created from: no Kysera plugin runs
 * on its queries. For plugin internals (an audit plugin's own writes, say);
 * application code should not need it.
 *
 * @param executor An executor from {@linkcode createExecutor}.
 * @returns The original Kysely instance.
 * @throws {TypeError} When `executor` is not an executor.
 *
 * @example The Kysely instance under an executor
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync, getRawDb } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * assert.ok(getRawDb(createExecutorSync(db, [])) === db);
 * await db.destroy();
 * ```
 */
export function getRawDb<DB>(executor: KyseraExecutor<DB>): Kysely<DB> {
  return familyOf(executor).raw as Kysely<DB>;
}

/**
 * Tells whether a Kysely instance (or transaction, or connection) runs its
 * queries through Kysera's plugins.
 *
 * @param db A Kysely instance.
 * @returns `true` for an executor and everything derived from one.
 *
 * @example Telling an executor from a plain Kysely instance
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync, isKyseraExecutor } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * assert.equal(isKyseraExecutor(db), false);
 * assert.equal(isKyseraExecutor(createExecutorSync(db, []).withSchema("x")), true);
 * await db.destroy();
 * ```
 */
export function isKyseraExecutor(db: Pick<Kysely<never>, "getExecutor">): boolean {
  return familyOfQueryExecutor(db.getExecutor()) !== undefined;
}

/**
 * The plugins of an executor, in execution order.
 *
 * @param executor An executor.
 * @returns The plugins.
 * @throws {TypeError} When `executor` is not an executor.
 *
 * @example The plugins of an executor, in order
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { createExecutorSync, getPlugins } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * assert.deepEqual(getPlugins(createExecutorSync(db, [{ name: "b" }, { name: "a" }])).map((p) => p.name), ["a", "b"]);
 * await db.destroy();
 * ```
 */
export function getPlugins<DB>(executor: KyseraExecutor<DB>): readonly KyseraPlugin[] {
  return familyOf(executor).plugins;
}

function familyOf(db: object): Family {
  const family = FAMILIES.get(db) ?? familyOfExecutor(db);
  if (family === undefined) {
    throw new TypeError("Cannot use this Kysely instance: it is not a Kysera executor (see createExecutor())");
  }
  return family;
}

function familyOfExecutor(db: object): Family | undefined {
  const getExecutor = (db as { getExecutor?: () => unknown }).getExecutor;
  if (typeof getExecutor !== "function") return undefined;
  return familyOfQueryExecutor(getExecutor.call(db) as QueryExecutor);
}
