import { type DbContext, type DbInput, toContext } from "./context.ts";
import type { QueryFunction } from "./create_query.ts";

/**
 * Runs `first`, then `second` with the first's result, on the same database.
 *
 * @param first The first query.
 * @param second The next step: `(ctx, previous) => result`.
 * @returns A query function taking `first`'s arguments.
 *
 * @example Two queries in sequence
 * ```ts
 * import { compose, createQuery, type DbContext } from "@kysera/kysera/dal";
 *
 * interface DB { users: { id: number; email: string }; posts: { user_id: number; title: string } }
 * const userByEmail = createQuery((ctx: DbContext<DB>, email: string) =>
 *   ctx.db.selectFrom("users").select("id").where("email", "=", email).executeTakeFirstOrThrow()
 * );
 * const postsOfEmail = compose(userByEmail, (ctx, user) =>
 *   ctx.db.selectFrom("posts").select("title").where("user_id", "=", user.id).execute()
 * );
 * ```
 */
export function compose<DB, A extends unknown[], R1, R2>(
  first: QueryFunction<DB, A, R1>,
  second: (ctx: DbContext<DB>, previous: R1) => R2 | Promise<R2>,
): QueryFunction<DB, A, R2> {
  return async (db, ...args) => {
    const ctx = toContext(db);
    return await second(ctx, await first(ctx, ...args));
  };
}

/** One step of {@linkcode chain}: gets the previous step's result. */
export type ChainStep<DB, P, R> = (ctx: DbContext<DB>, previous: P) => R | Promise<R>;

/**
 * Runs a query, then each step in turn with the previous result, on the same
 * database: `compose` for any number of steps.
 *
 * @param first The first query.
 * @param steps The next steps.
 * @returns A query function taking `first`'s arguments and returning the last result.
 *
 * @example Several steps in sequence
 * ```ts
 * import { chain, createQuery, type DbContext } from "@kysera/kysera/dal";
 *
 * interface DB { users: { id: number; name: string } }
 * const nameOf = chain(
 *   createQuery((ctx: DbContext<DB>, id: number) =>
 *     ctx.db.selectFrom("users").select("name").where("id", "=", id).executeTakeFirstOrThrow()
 *   ),
 *   (_ctx, user) => user.name,
 *   (_ctx, name) => name.toUpperCase(),
 * );
 * ```
 */
export function chain<DB, A extends unknown[], R1, R2>(
  first: QueryFunction<DB, A, R1>,
  s2: ChainStep<DB, R1, R2>,
): QueryFunction<DB, A, R2>;
/** {@linkcode chain} with two steps after the first query. */
export function chain<DB, A extends unknown[], R1, R2, R3>(
  first: QueryFunction<DB, A, R1>,
  s2: ChainStep<DB, R1, R2>,
  s3: ChainStep<DB, R2, R3>,
): QueryFunction<DB, A, R3>;
/** {@linkcode chain} with three steps after the first query. */
export function chain<DB, A extends unknown[], R1, R2, R3, R4>(
  first: QueryFunction<DB, A, R1>,
  s2: ChainStep<DB, R1, R2>,
  s3: ChainStep<DB, R2, R3>,
  s4: ChainStep<DB, R3, R4>,
): QueryFunction<DB, A, R4>;
/** {@linkcode chain} with four steps after the first query. */
export function chain<DB, A extends unknown[], R1, R2, R3, R4, R5>(
  first: QueryFunction<DB, A, R1>,
  s2: ChainStep<DB, R1, R2>,
  s3: ChainStep<DB, R2, R3>,
  s4: ChainStep<DB, R3, R4>,
  s5: ChainStep<DB, R4, R5>,
): QueryFunction<DB, A, R5>;
export function chain<DB, A extends unknown[]>(
  first: QueryFunction<DB, A, unknown>,
  ...steps: ChainStep<DB, unknown, unknown>[]
): QueryFunction<DB, A, unknown> {
  return async (db, ...args) => {
    const ctx = toContext(db);
    let value = await first(ctx, ...args);
    for (const step of steps) value = await step(ctx, value);
    return value;
  };
}

/** Any query function, whatever its database, arguments and result (what {@linkcode parallel} takes). */
// deno-lint-ignore no-explicit-any
export type AnyQueryFunction = QueryFunction<any, any[], unknown>;
/** The database type of a query function. */
// deno-lint-ignore no-explicit-any
export type QueryDatabase<F> = F extends QueryFunction<infer DB, any[], unknown> ? DB : never;
/** The arguments (after the database) of a query function. */
// deno-lint-ignore no-explicit-any
export type QueryArguments<F> = F extends QueryFunction<any, infer A, unknown> ? A : never;

/**
 * Runs several queries with the same arguments and collects their results
 * by name. On a transaction (one connection) they run one after another; on
 * anything else they run concurrently, each on its own pooled connection.
 *
 * @param queries The queries, by name.
 * @returns A query function returning `{ name: result }`.
 *
 * @example Independent queries at once
 * ```ts
 * import { createQuery, type DbContext, parallel } from "@kysera/kysera/dal";
 *
 * interface DB { users: { id: number }; posts: { id: number } }
 * const count = (table: "users" | "posts") =>
 *   createQuery((ctx: DbContext<DB>) =>
 *     ctx.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()
 *   );
 * const stats = parallel({ users: count("users"), posts: count("posts") });
 * // await stats(db) -> { users: { n }, posts: { n } }
 * ```
 */
export function parallel<Q extends Record<string, AnyQueryFunction>>(
  queries: Q,
): QueryFunction<
  QueryDatabase<Q[keyof Q]>,
  QueryArguments<Q[keyof Q]>,
  { [K in keyof Q]: Awaited<ReturnType<Q[K]>> }
> {
  const entries = Object.entries(queries);
  return async (db, ...args) => {
    const ctx = toContext(db);
    const results: Record<string, unknown> = {};
    if (ctx.isTransaction) {
      for (const [name, query] of entries) results[name] = await query(ctx, ...args);
    } else {
      const values = await Promise.all(entries.map(([, query]) => query(ctx, ...args)));
      entries.forEach(([name], i) => results[name] = values[i]);
    }
    return results as { [K in keyof Q]: Awaited<ReturnType<Q[K]>> };
  };
}

/**
 * Chooses a query by a predicate of the arguments; without an `otherwise`,
 * a false predicate returns `undefined` and sends no SQL.
 *
 * @param predicate Decides from the arguments.
 * @param then The query when the predicate holds.
 * @param otherwise The query when it does not.
 * @returns A query function.
 *
 * @example A query that runs only when a condition holds
 * ```ts
 * import { conditional, createQuery, type DbContext } from "@kysera/kysera/dal";
 *
 * interface DB { users: { id: number; name: string } }
 * const byId = createQuery((ctx: DbContext<DB>, id: number | undefined) =>
 *   ctx.db.selectFrom("users").selectAll().where("id", "=", id!).executeTakeFirst()
 * );
 * const maybeUser = conditional((id: number | undefined) => id !== undefined, byId);
 * ```
 */
export function conditional<DB, A extends unknown[], R1, R2 = undefined>(
  predicate: (...args: A) => boolean,
  then: QueryFunction<DB, A, R1>,
  otherwise?: QueryFunction<DB, A, R2>,
): QueryFunction<DB, A, R1 | R2> {
  return async (db: DbInput<DB>, ...args: A) => {
    if (predicate(...args)) return await then(db, ...args);
    return otherwise === undefined ? undefined as R2 : await otherwise(db, ...args);
  };
}

/**
 * Transforms a query's result.
 *
 * @param query The query.
 * @param map The transformation.
 * @returns A query function with the same arguments.
 *
 * @example Reshaping a query's result
 * ```ts
 * import { createQuery, type DbContext, mapResult } from "@kysera/kysera/dal";
 *
 * interface DB { users: { id: number; name: string } }
 * const names = mapResult(
 *   createQuery((ctx: DbContext<DB>) => ctx.db.selectFrom("users").select("name").execute()),
 *   (rows) => rows.map((r) => r.name),
 * );
 * ```
 */
export function mapResult<DB, A extends unknown[], R, T>(
  query: QueryFunction<DB, A, R>,
  map: (result: R) => T | Promise<T>,
): QueryFunction<DB, A, T> {
  return async (db, ...args) => await map(await query(db, ...args));
}
