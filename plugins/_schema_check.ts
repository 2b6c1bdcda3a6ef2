/**
 * The plugins' table check at `createExecutor` (private): the tables a
 * plugin lists must exist, and the tables it covers must have the columns
 * it needs.
 *
 * @module
 */
import { sql } from "kysely";
import { getDialect } from "../core/mod.ts";
import { type AnyKysely, getRawDb, PluginSchemaError } from "../executor/mod.ts";

/** A table the connection's queries see, with its columns. */
interface VisibleTable {
  readonly name: string;
  readonly schema: string | undefined;
  readonly columns: readonly { readonly name: string }[];
}

/**
 * The tables the connection's unqualified names resolve to. PostgreSQL and
 * MySQL are asked through `information_schema` for the search path's
 * schemas or the current database only: Kysely's introspector reads every
 * schema, which is slow on a large database and fails when another session
 * drops a schema meanwhile. SQLite's introspector reads only its own file.
 */
async function visibleTables(raw: AnyKysely, dialect: string): Promise<VisibleTable[]> {
  if (dialect !== "postgres" && dialect !== "mysql") {
    return (await raw.introspection.getTables()).map((t) => ({ name: t.name, schema: t.schema, columns: t.columns }));
  }
  const scope = dialect === "postgres"
    ? sql`table_schema = any(current_schemas(false))`
    : sql`table_schema = database()`;
  const { rows } = await sql<{ schema: string; name: string; column: string }>`select table_schema as ${
    sql.ref("schema")
  }, table_name as ${sql.ref("name")}, column_name as ${
    sql.ref("column")
  } from information_schema.columns where ${scope}`
    .execute(raw);
  const byTable = new Map<string, { name: string; schema: string; columns: { name: string }[] }>();
  for (const row of rows) {
    const key = `${row.schema}\u0000${row.name}`;
    let table = byTable.get(key);
    if (table === undefined) byTable.set(key, table = { name: row.name, schema: row.schema, columns: [] });
    table.columns.push({ name: row.column });
  }
  return [...byTable.values()];
}

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
  const tables = await visibleTables(raw, dialect);
  const fold = dialect !== "postgres";
  const same = (a: string, b: string): boolean => a === b || (fold && a.toLowerCase() === b.toLowerCase());
  const find = (name: string): VisibleTable | undefined =>
    tables.find((t) => t.name === name || `${t.schema}.${t.name}` === name) ??
      tables.find((t) => same(t.name, name) || same(`${t.schema}.${t.name}`, name));
  const check = (table: VisibleTable, name: string): void => {
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
