/**
 * Kysera: a data-access toolkit on top of Kysely. Typed errors, dialect
 * detection, offset and keyset pagination (core) and the plugin-aware
 * executor, the functional DAL and repositories.
 *
 * Opt-in parts live on their own subpaths: `@kysera/kysera/dialects` (SQLite
 * on `node:sqlite` and `bun:sqlite`).
 *
 * @example
 * ```ts
 * import { NotFoundError, isKyseraError } from "@kysera/kysera";
 *
 * console.log(isKyseraError(new NotFoundError("users"))); // true
 * ```
 *
 * @module
 */
export * from "./core/mod.ts";
export * from "./executor/mod.ts";
export * from "./dal/mod.ts";
export * from "./repository/mod.ts";
