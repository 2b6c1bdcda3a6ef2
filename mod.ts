/**
 * Kysera: a data-access toolkit on top of Kysely. Typed errors, dialect
 * detection, offset and keyset pagination (core) and the plugin-aware
 * executor, the functional DAL and repositories.
 *
 * Opt-in parts live on their own subpaths: `@kysera/kysera/dialects` (SQLite
 * on `node:sqlite` and `bun:sqlite`).
 *
 * Published as `@kysera/kysera` on JSR and as `kysera` on npm, with the same
 * subpaths (`@kysera/kysera/executor` is `kysera/executor` from npm). The npm
 * package is ESM only: load it with `import` (or `await import()` from
 * CommonJS), not `require()`.
 *
 * @example Quick start
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotFoundError, isKyseraError } from "@kysera/kysera"; // npm: "kysera"
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
