import type { Expression, ExpressionBuilder, Kysely, SqlBool } from "kysely";

/**
 * What a plugin's `extendRepository` can rely on: every config-form
 * repository is a `RepositoryHandle` (the repository object itself, so a
 * plugin's methods can also call its `find`, `findById`, `create`...).
 * A factory-form repository (`orm.createRepository((executor) => ...)`) is
 * whatever the factory returns: a plugin that needs the table must check
 * `typeof repository.keyOf === "function"` and otherwise work without one
 * (or refuse with a `TypeError`).
 *
 * Plugins import this type only (`import type`); nothing at run time.
 *
 * @typeParam DB The database type.
 *
 * @example A plugin method that reads through the handle
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KyseraPlugin } from "@kysera/kysera/executor";
 * import type { RepositoryHandle } from "@kysera/kysera/repository";
 *
 * const describe = {
 *   name: "describe",
 *   extendRepository(repository: object) {
 *     const handle = repository as Partial<RepositoryHandle>;
 *     return {
 *       describeKey: (id: unknown): string =>
 *         typeof handle.keyOf === "function" ? JSON.stringify(handle.keyOf(id)) : "no table",
 *     };
 *   },
 * } satisfies KyseraPlugin;
 * assert.equal(describe.name, "describe");
 * ```
 */
// deno-lint-ignore no-explicit-any
export interface RepositoryHandle<DB = any> {
  /** The table, as the repository's config names it. */
  readonly tableName: string;
  /** The primary key's columns, in order (one for a single-column key). */
  readonly primaryKeyColumns: readonly string[];
  /** The executor (or transaction) the repository runs on, with every plugin. */
  readonly executor: Kysely<DB>;
  /**
   * The key object of an id: `{ id: 5 }` for `5`, the key columns of an
   * object for a composite key (other properties dropped).
   * @throws {TypeError} When `id` is not a key of this table (null, an object for a single-column key, a missing column).
   */
  keyOf(id: unknown): Record<string, unknown>;
  /**
   * The where-DSL as the filter of a bulk write (UPDATE/DELETE), validated.
   * @throws {UnfilteredWriteError} When `where` sets no condition (`undefined`, `{}`, only `undefined` values).
   * @throws {InvalidWhereError} For an unknown operator or column.
   */
  writeFilter(
    where: unknown,
    operation: "update" | "delete",
    // deno-lint-ignore no-explicit-any
  ): (eb: ExpressionBuilder<any, any>) => Expression<SqlBool>;
}
