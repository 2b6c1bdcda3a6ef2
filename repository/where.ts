/**
 * Operators on one column of a {@linkcode Where}. Several operators on one
 * column are ANDed.
 *
 * - `$eq`/`$ne` with `null` mean `IS NULL`/`IS NOT NULL`; `$ne` with a value
 *   follows SQL and does not match NULLs.
 * - `$in: []` matches nothing, `$nin: []` everything.
 * - `$like`/`$ilike` take a LIKE pattern (`%`, `_`; `\` escapes, on every
 *   dialect). `$contains`, `$startsWith` and `$endsWith` take plain text: its
 *   `%`, `_` and `\` match themselves.
 * - `$like`, `$contains`, `$startsWith` and `$endsWith` compare as the
 *   column's collation does (case-insensitive on MariaDB's default `_ci`
 *   collations and, for ASCII, on SQLite); `$ilike` is case-insensitive on
 *   every dialect (`ILIKE` on PostgreSQL, `lower(column) LIKE lower(pattern)`
 *   elsewhere).
 *
 * @typeParam V The column's value type.
 *
 * @example Operators on a number column
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ColumnFilter } from "@kysera/kysera/repository";
 *
 * const adults: ColumnFilter<number> = { $gte: 18, $lt: 65 };
 * assert.deepEqual(Object.keys(adults), ["$gte", "$lt"]);
 * ```
 */
export type ColumnFilter<V> = ComparisonFilter<V> & ([V] extends [string] ? TextFilter : unknown);

/** The operators of a {@linkcode ColumnFilter} that every column has. */
export interface ComparisonFilter<V> {
  /** Equal (`null`: `IS NULL`). */
  readonly $eq?: V | null;
  /** Not equal (`null`: `IS NOT NULL`). */
  readonly $ne?: V | null;
  /** Greater than. */
  readonly $gt?: V;
  /** Greater than or equal. */
  readonly $gte?: V;
  /** Less than. */
  readonly $lt?: V;
  /** Less than or equal. */
  readonly $lte?: V;
  /** One of the values (none: matches nothing). */
  readonly $in?: readonly V[];
  /** None of the values (none: matches everything). */
  readonly $nin?: readonly V[];
  /** `true`: `IS NULL`; `false`: `IS NOT NULL`. */
  readonly $isNull?: boolean;
  /** `true`: `IS NOT NULL`; `false`: `IS NULL`. */
  readonly $isNotNull?: boolean;
  /** Between two values, both included. */
  readonly $between?: readonly [V, V];
}

/** The operators of a {@linkcode ColumnFilter} of a text column. */
export interface TextFilter {
  /** A LIKE pattern (`\` escapes). */
  readonly $like?: string;
  /** A LIKE pattern matched case-insensitively on every dialect. */
  readonly $ilike?: string;
  /** Contains this text (LIKE metacharacters in it are escaped). */
  readonly $contains?: string;
  /** Starts with this text (escaped). */
  readonly $startsWith?: string;
  /** Ends with this text (escaped). */
  readonly $endsWith?: string;
}

/** The logical operators of a {@linkcode Where}. */
export interface WhereLogic<R> {
  /** Every condition holds. */
  readonly $and?: readonly Where<R>[];
  /** At least one condition holds (none: matches nothing). */
  readonly $or?: readonly Where<R>[];
  /** The condition does not hold. */
  readonly $not?: Where<R>;
}

/**
 * A typed filter on the rows `R` of a table: each key is a column, with a
 * value (equality; `null` is `IS NULL`) or a {@linkcode ColumnFilter}; keys
 * are ANDed. `$and`, `$or` and `$not` combine filters. An unknown column or
 * operator is a compile error, and an `InvalidWhereError` at run time. A key
 * whose value is `undefined` sets no condition (as a partial schema's absent
 * field); a bulk write whose where is left with none is refused.
 *
 * @typeParam R The row type.
 *
 * @example A typed where clause
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Where } from "@kysera/kysera/repository";
 *
 * interface User { id: number; email: string; age: number | null }
 * const where: Where<User> = { email: { $endsWith: "@example.com" }, $or: [{ age: null }, { age: { $gte: 18 } }] };
 * const wrong: Where<User> = {
 *   // @ts-expect-error: no such column
 *   emial: "x",
 * };
 * assert.deepEqual(Object.keys(where), ["email", "$or"]);
 * assert.deepEqual(Object.keys(wrong), ["emial"]); // compiles only with the @ts-expect-error
 * ```
 */
export type Where<R> =
  & { readonly [K in keyof R & string]?: R[K] | ColumnFilter<NonNullable<R[K]>> | undefined }
  & WhereLogic<R>;
