import type { Insertable, Kysely, Selectable, Updateable } from "kysely";
import {
  createExecutor,
  createExecutorSync,
  type ExecutorOptions,
  getPlugins,
  isKyseraExecutor,
  type KyseraPlugin,
} from "../executor/mod.ts";
import type { ColumnOf, PrimaryKey, Repository, RepositoryConfig } from "./repository.ts";
import { buildRepository } from "./_repository_impl.ts";
import { transaction } from "../dal/mod.ts";

/**
 * The methods the plugins `P` add to every repository (`unknown` when none
 * does): the intersection of what their `extendRepository` returns.
 */
export type RepositoryExtensions<P extends readonly KyseraPlugin[]> =
  // Written inline (no private helper types in the public API): `U` distributes over the plugins, each one's
  // extension, then their intersection.
  [P[number] extends infer U ? U extends { extendRepository(repository: object): infer E } ? E : never : never] extends
    [never] ? unknown
    : (P[number] extends infer U ? U extends { extendRepository(repository: object): infer E } ? (x: E) => void : never
      : never) extends (x: infer I) => void ? I
    : never;

/** The default primary key: `"id"` when the table has such a column. */
export type DefaultPrimaryKey<DB, T extends keyof DB> = Extract<"id", ColumnOf<DB, T>>;

/**
 * What {@linkcode createORM} returns: the executor and the repository
 * factories over it.
 *
 * @typeParam DB The database type.
 * @typeParam Ext The methods plugins add to every repository.
 */
export interface Orm<DB, Ext = unknown> {
  /** The executor (or transaction) every repository of this ORM runs on. */
  readonly executor: Kysely<DB>;
  /** The executor's plugins, in execution order. */
  readonly plugins: readonly KyseraPlugin[];
  /** A typed repository over one table, from its config. */
  createRepository<
    T extends keyof DB & string,
    const PK extends PrimaryKey<DB, T> = DefaultPrimaryKey<DB, T>,
    Out = Selectable<DB[T]>,
    CIn = Insertable<DB[T]>,
    UIn = Updateable<DB[T]>,
    CO = object,
    UO = object,
  >(config: RepositoryConfig<DB, T, PK, Out, CIn, UIn, CO, UO>): Repository<DB, T, PK, Out, CIn, UIn> & Ext;
  /** The factory's repository (the factory receives the executor), with the plugins' methods added. */
  createRepository<R extends object>(factory: (executor: Kysely<DB>) => R): R & Ext;
  /** Runs `fn` with an ORM bound to a transaction (a savepoint when already in one). */
  transaction<R>(fn: (orm: Orm<DB, Ext>) => Promise<R>): Promise<R>;
  /**
   * This ORM bound to `trx`, a transaction of its executor (it runs nothing:
   * {@linkcode Orm.transaction} runs one).
   */
  bind(trx: Kysely<DB>): Orm<DB, Ext>;
  /** @deprecated Use {@linkcode Orm.bind}: `withTransaction` only binds, it runs no transaction. */
  withTransaction(trx: Kysely<DB>): Orm<DB, Ext>;
}

/**
 * Creates an ORM: repositories over an executor, with every plugin in force
 * in and out of transactions and every plugin's `extendRepository` methods
 * on each repository (typed when the plugins are passed here).
 *
 * - `createORM(db)`: repositories over a plain Kysely instance.
 * - `createORM(db, plugins)`: creates the executor (`createExecutorSync`).
 * - `createORM(executor)` or `createORM(executor, plugins)`: uses the
 *   executor; `plugins`, if given, must be the executor's (they type the
 *   extension methods).
 *
 * To give the plugins once and have `createExecutor`'s checks and hooks
 * (`onInit`, schema checks) run, use {@linkcode initORM}.
 *
 * @param db A Kysely instance or an executor.
 * @param plugins Plugins to run (or, with an executor, the executor's plugins for typing).
 * @returns The ORM.
 * @throws {TypeError} With an executor and plugins it does not run, or a plugin with an `onInit` hook.
 *
 * @example A repository with an extension method
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { type Generated, Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import type { KyseraPlugin } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { createORM } from "@kysera/kysera/repository"; // npm: "kysera/repository"
 *
 * interface DB { users: { id: Generated<number>; email: string } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("email", "text", (c) => c.notNull().unique()).execute();
 *
 * const hello = {
 *   name: "hello",
 *   extendRepository: (repository: object) => ({ hello: () => `hello from ${(repository as { tableName: string }).tableName}` }),
 * } satisfies KyseraPlugin;
 * const orm = createORM(db, [hello]);
 * const users = orm.createRepository({ tableName: "users", primaryKey: "id" });
 * const ada = await users.create({ email: "ada@example.com" });
 * assert.equal(ada.id, 1);
 * const found = await users.find({ where: { email: { $endsWith: "@example.com" } } });
 * assert.deepEqual(found.map((u) => u.email), ["ada@example.com"]);
 * assert.equal(await users.transaction(async (trx) => trx.hello()), "hello from users");
 * await db.destroy();
 * ```
 *
 * The create runs (SQLite): `insert into "users" ("email") values (?) returning *`.
 */
export function createORM<DB, const P extends readonly KyseraPlugin[] = []>(
  db: Kysely<DB>,
  plugins?: P,
): Orm<DB, RepositoryExtensions<P>> {
  let executor: Kysely<DB>;
  if (isKyseraExecutor(db)) {
    const running = getPlugins(db);
    const stray = (plugins ?? []).find((p) => !running.includes(p));
    if (stray !== undefined) {
      throw new TypeError(
        `Cannot create the ORM: plugin '${stray.name}' is not one of the executor's plugins; pass every plugin to createExecutor()`,
      );
    }
    executor = db;
  } else {
    executor = plugins !== undefined && plugins.length > 0 ? createExecutorSync(db, plugins) : db;
  }
  return makeOrm(executor) as Orm<DB, RepositoryExtensions<P>>;
}

/**
 * Creates the executor (`createExecutor`: plugin `onInit` hooks and schema
 * checks run) and an ORM over it, from the plugins given once: the
 * extension methods they add to repositories are typed from this one list
 * (with {@linkcode createORM} over an executor, the plugins are passed a
 * second time for that). The executor is `orm.executor`; end it with
 * `destroyExecutor(orm.executor)`.
 *
 * @param db The Kysely instance (not an executor).
 * @param plugins The plugins.
 * @param options The executor's options (`outsideTransaction`).
 * @returns The ORM.
 * @throws {TypeError} When `db` is already an executor (use {@linkcode createORM}).
 * @throws {PluginValidationError} When the plugins cannot be used together.
 * @throws {PluginError} When an `onInit` hook fails.
 *
 * @example Plugins given once, extension methods typed
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { type Generated, Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { destroyExecutor, type KyseraPlugin } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { initORM } from "@kysera/kysera/repository"; // npm: "kysera/repository"
 *
 * interface DB { users: { id: Generated<number>; email: string } }
 * const db = new Kysely<DB>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await db.schema.createTable("users").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("email", "text").execute();
 * const hello = {
 *   name: "hello",
 *   extendRepository: () => ({ hello: (): string => "hello" }),
 * } satisfies KyseraPlugin;
 * const orm = await initORM(db, [hello]);
 * assert.equal(orm.createRepository({ tableName: "users" }).hello(), "hello");
 * await destroyExecutor(orm.executor);
 * ```
 */
export async function initORM<DB, const P extends readonly KyseraPlugin[] = []>(
  db: Kysely<DB>,
  plugins?: P,
  options: ExecutorOptions = {},
): Promise<Orm<DB, RepositoryExtensions<P>>> {
  if (isKyseraExecutor(db)) {
    throw new TypeError("Cannot init the ORM over an executor: pass the Kysely instance, or use createORM(executor)");
  }
  const executor = await createExecutor(db, plugins ?? [], options);
  return makeOrm(executor) as Orm<DB, RepositoryExtensions<P>>;
}

function makeOrm<DB>(executor: Kysely<DB>): Orm<DB> {
  const plugins = isKyseraExecutor(executor) ? getPlugins(executor) : [];
  const orm: Orm<DB> = {
    executor,
    plugins,
    createRepository(configOrFactory: unknown): never {
      if (typeof configOrFactory === "function") {
        const repository = configOrFactory(executor) as object;
        for (const plugin of plugins) {
          if (plugin.extendRepository !== undefined) Object.assign(repository, plugin.extendRepository(repository));
        }
        return repository as never;
      }
      if (typeof configOrFactory !== "object" || configOrFactory === null) {
        throw new TypeError("Cannot create a repository: pass a config object or a factory function");
      }
      return buildRepository(executor, configOrFactory as never, plugins) as never;
    },
    transaction: (fn) => transaction(executor, (ctx) => fn(makeOrm(ctx.db))),
    withTransaction: (trx) => orm.bind(trx),
    bind(trx) {
      if (plugins.length > 0 && !isKyseraExecutor(trx)) {
        throw new TypeError(
          "Cannot bind the ORM to this transaction: it does not run the executor's plugins (start it from orm.executor)",
        );
      }
      return makeOrm(trx);
    },
  };
  return Object.freeze(orm);
}
