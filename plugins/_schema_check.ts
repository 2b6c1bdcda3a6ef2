/**
 * The plugins' table check at `createExecutor` (private): the tables a
 * plugin lists must exist, and the tables it covers must have the columns
 * it needs.
 *
 * @module
 */
import { sql, type TableMetadata } from "kysely";
import { getDialect } from "../core/mod.ts";
import { type AnyKysely, getRawDb, PluginSchemaError } from "../executor/mod.ts";

/** What one plugin needs from the database. */
export interface SchemaRequirement {
  /** The plugin's name, for the error. */
  readonly plugin: string;
  /** The listed tables; `undefined` when the plugin covers every table it does not exclude. */
  readonly tables: readonly string[] | undefined;
  /** Whether the plugin covers a table of the database (for the every-table form). */
  readonly covers: (table: string) => boolean;
  /** Columns every covered table must have. */
  readonly columns: readonly string[];
}

/**
 * Reads the tables of the connection's own schema(s) once and throws
 * {@linkcode PluginSchemaError} for the first listed table that does not
 * exist, or covered table that lacks a needed column. Names compare exactly
 * on PostgreSQL, in any case elsewhere (as those databases read them).
 */
export async function verifyTables(executor: AnyKysely, requirement: SchemaRequirement): Promise<void> {
  const raw = getRawDb(executor);
  const dialect = getDialect(raw);
  let tables: TableMetadata[] = await raw.introspection.getTables();
  if (dialect === "postgres") {
    // The introspector lists every schema; queries see the search path's.
    const { rows } = await sql<{ name: string }>`select unnest(current_schemas(false)) as name`.execute(raw);
    const visible = new Set(rows.map((r) => r.name));
    tables = tables.filter((t) => t.schema === undefined || visible.has(t.schema));
  }
  const fold = dialect !== "postgres";
  const same = (a: string, b: string): boolean => a === b || (fold && a.toLowerCase() === b.toLowerCase());
  const find = (name: string): TableMetadata | undefined =>
    tables.find((t) => t.name === name || `${t.schema}.${t.name}` === name) ??
      tables.find((t) => same(t.name, name) || same(`${t.schema}.${t.name}`, name));
  const check = (table: TableMetadata, name: string): void => {
    for (const column of requirement.columns) {
      if (!table.columns.some((c) => same(c.name, column))) {
        throw new PluginSchemaError({ plugin: requirement.plugin, problem: "missing-column", table: name, column });
      }
    }
  };
  if (requirement.tables !== undefined) {
    for (const name of requirement.tables) {
      const table = find(name);
      if (table === undefined) {
        throw new PluginSchemaError({ plugin: requirement.plugin, problem: "missing-table", table: name });
      }
      check(table, name);
    }
    return;
  }
  for (const table of tables) {
    if (requirement.covers(table.name)) check(table, table.name);
  }
}
