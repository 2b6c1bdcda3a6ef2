/**
 * What a restore must know of a table's columns (private): which hold dates
 * (written back as `Date`s), JSON, and which the database generates.
 */
import { sql } from "kysely";
import { getDialect } from "../../core/mod.ts";
import { allowRawSql, type AnyKysely } from "../../executor/mod.ts";

/** Column facts of one table. */
export interface ColumnFacts {
  /** Date and time columns whose driver returns `Date`s. */
  readonly times: ReadonlySet<string>;
  /** JSON columns (PostgreSQL `json`, `jsonb`; MySQL `json`). */
  readonly json: ReadonlySet<string>;
  /** Columns the database computes and refuses a value for (generated columns; PostgreSQL identities generated always are in `identityAlways` instead). */
  readonly generated: ReadonlySet<string>;
  /** PostgreSQL identity columns `GENERATED ALWAYS`: written only with `OVERRIDING SYSTEM VALUE`. */
  readonly identityAlways: ReadonlySet<string>;
}

/** PostgreSQL's `date`, `timestamp` and `timestamptz` type ids. */
const PG_TIME_TYPES: ReadonlySet<number> = new Set([1082, 1114, 1184]);
/** PostgreSQL's `json` and `jsonb` type ids. */
const PG_JSON_TYPES: ReadonlySet<number> = new Set([114, 3802]);
const MYSQL_TIME_TYPES: ReadonlySet<string> = new Set(["date", "datetime", "timestamp"]);

/**
 * Reads the column facts of `table` (as the search path finds it on
 * PostgreSQL, in the current database on MariaDB/MySQL). SQLite stores
 * dates as text: no time columns there.
 */
export function columnFacts(db: AnyKysely, table: string): Promise<ColumnFacts> {
  // Catalog reads with SQL fragments of the plugin's own, not the caller's raw SQL.
  return allowRawSql(() => readColumnFacts(db, table));
}

async function readColumnFacts(db: AnyKysely, table: string): Promise<ColumnFacts> {
  const dialect = getDialect(db);
  const times = new Set<string>();
  const json = new Set<string>();
  const generated = new Set<string>();
  const identityAlways = new Set<string>();
  if (dialect === "postgres") {
    const rows = await db.selectFrom("pg_catalog.pg_attribute")
      .select(["attname", "atttypid", "attidentity", "attgenerated"])
      .where("attrelid", "=", sql<number>`to_regclass(quote_ident(${table}))`)
      .where("attnum", ">", 0)
      .where("attisdropped", "=", false)
      .execute();
    for (const r of rows) {
      const name = String(r.attname);
      const type = Number(r.atttypid);
      if (PG_TIME_TYPES.has(type)) times.add(name);
      if (PG_JSON_TYPES.has(type)) json.add(name);
      if (String(r.attgenerated ?? "") !== "") generated.add(name);
      if (r.attidentity === "a") identityAlways.add(name);
    }
  } else if (dialect === "mysql") {
    const rows = await db.selectFrom("information_schema.COLUMNS")
      .select(["COLUMN_NAME as name", "DATA_TYPE as type", "EXTRA as extra"])
      .where("TABLE_SCHEMA", "=", sql<string>`database()`)
      .where("TABLE_NAME", "=", table)
      .execute();
    for (const r of rows) {
      const name = String(r.name);
      const type = String(r.type).toLowerCase();
      if (MYSQL_TIME_TYPES.has(type)) times.add(name);
      if (type === "json") json.add(name);
      if (/generated/i.test(String(r.extra ?? "")) && !/default_generated/i.test(String(r.extra ?? ""))) {
        generated.add(name);
      }
    }
  } else if (dialect === "sqlite") {
    // table_xinfo: hidden 2 and 3 are generated (virtual, stored) columns.
    const rows = await db.selectFrom(sql<{ name: string; hidden: number }>`pragma_table_xinfo(${table})`.as("c"))
      .select(["c.name", "c.hidden"]).execute();
    for (const r of rows) if (Number(r.hidden) === 2 || Number(r.hidden) === 3) generated.add(String(r.name));
  }
  return { times, json, generated, identityAlways };
}
