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
 * import assert from "node:assert/strict";
 * import { NotFoundError, isKyseraError } from "@kysera/kysera";
 *
 * assert.ok(isKyseraError(new NotFoundError("users")));
 * ```
 *
 * @module
 */
export * from "./core/mod.ts";
export * from "./executor/mod.ts";
export * from "./dal/mod.ts";
export * from "./repository/mod.ts";
