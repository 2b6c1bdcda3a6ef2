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
 * @example
 * ```ts
 * import { tableLookup } from "@kysera/kysera/executor";
 *
 * const listed = tableLookup(["posts", "Users"]);
 * console.log(listed("POSTS"), listed("users"), listed("tags")); // "posts" "Users" undefined
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
