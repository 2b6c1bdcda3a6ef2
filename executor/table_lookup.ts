import type { DialectName } from "../core/mod.ts";

/**
 * Finds a table in a plugin's list the way the database finds it by name.
 * SQLite (always) and MySQL/MariaDB with `lower_case_table_names` read
 * `POSTS` as `posts`, so a plugin that covers a listed table must cover it
 * under any spelling: a name that matches a listed one in another case is
 * that table (an exact match wins; between names listed in two cases, the
 * lower-case one). On a database where the other spelling is another table
 * (PostgreSQL quotes identifiers), that table is treated as listed, which is
 * the cautious reading for a plugin that guards data.
 *
 * @param names The listed table names.
 * @returns A function from a table name as a query spells it to the listed
 * name, or `undefined` when it is not listed.
 *
 * @example Matching table names as the query spells them
 * ```ts
 * import assert from "node:assert/strict";
 * import { tableLookup } from "@kysera/kysera/executor";
 *
 * const listed = tableLookup(["posts", "Users"]);
 * assert.equal(listed("POSTS"), "posts");
 * assert.equal(listed("users"), "Users");
 * assert.equal(listed("tags"), undefined);
 * ```
 */
export function tableLookup(names: Iterable<string>): (table: string) => string | undefined {
  const exact = new Set<string>();
  const folded = new Map<string, string>();
  for (const name of names) {
    exact.add(name);
    const lower = name.toLowerCase();
    if (!folded.has(lower) || lower === name) folded.set(lower, name);
  }
  return (table) => exact.has(table) ? table : folded.get(table.toLowerCase());
}

/** Options of {@linkcode tableCoverage}: a plugin's `tables` and `excludeTables`. */
export interface TableCoverageOptions {
  /** Only these tables are covered. @default {every table not excluded} */
  readonly tables?: Iterable<string> | undefined;
  /** These tables are never covered. @default {none} */
  readonly excludeTables?: Iterable<string> | undefined;
}

/**
 * Which tables a plugin covers, from its `tables` and `excludeTables`
 * options, matched the way the database matches names (see
 * {@linkcode tableLookup}): a listed table is covered under any spelling
 * (cautious for a plugin that guards data); an excluded table is left out
 * under any spelling on SQLite, MySQL/MariaDB and MSSQL, and when the
 * dialect is not known, but only exactly on PostgreSQL (where `"TAGS"` is
 * another table than `"tags"`, which stays covered). Exclusion wins.
 *
 * @param options The listed and the excluded tables.
 * @returns A function from a table name as a query spells it (and the
 * dialect, when known) to the covered table's name (the listed spelling, or
 * the name itself when every table is covered), or `undefined` when the
 * table is not covered.
 *
 * @example Covered and excluded tables
 * ```ts
 * import assert from "node:assert/strict";
 * import { tableCoverage } from "@kysera/kysera/executor";
 *
 * const covered = tableCoverage({ excludeTables: ["tags"] });
 * assert.equal(covered("posts"), "posts");
 * assert.equal(covered("TAGS"), undefined);
 * assert.equal(covered("TAGS", "postgres"), "TAGS");
 * const listed = tableCoverage({ tables: ["posts"] });
 * assert.equal(listed("POSTS"), "posts");
 * assert.equal(listed("users"), undefined);
 * ```
 */
export function tableCoverage(
  options: TableCoverageOptions,
): (table: string, dialect?: DialectName | undefined) => string | undefined {
  const listed = options.tables === undefined ? undefined : tableLookup(options.tables);
  const excludedExact = new Set(options.excludeTables ?? []);
  const excluded = tableLookup(excludedExact);
  return (table, dialect) => {
    if (excludedExact.has(table) || (dialect !== "postgres" && excluded(table) !== undefined)) return undefined;
    return listed === undefined ? table : listed(table);
  };
}
