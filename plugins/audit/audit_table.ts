import { type Generated, sql } from "kysely";
import { type DialectName, getDialect } from "../../core/mod.ts";
import type { AnyKysely } from "../../executor/mod.ts";

/** Options of {@linkcode createAuditTable}. */
export interface CreateAuditTableOptions {
  /** The table name. @default "audit_logs" */
  readonly table?: string;
  /** Add `if not exists`. @default false */
  readonly ifNotExists?: boolean;
}

const JSON_TYPE: Record<DialectName, string> = {
  postgres: "jsonb",
  mysql: "json",
  sqlite: "text",
  mssql: "nvarchar(max)",
};
const TIME_TYPE: Record<DialectName, string> = {
  postgres: "timestamptz",
  mysql: "datetime(6)",
  sqlite: "text",
  mssql: "datetime2",
};

/**
 * The audit table as {@linkcode createAuditTable} creates it, for the
 * database type: `interface DB { posts: ...; audit_logs: AuditLogTable }`,
 * so that an RLS schema can name it (`defineRLSSchema<DB>({ audit_logs:
 * ... })`) and queries on it are typed. JSON columns read back as text on
 * SQLite, as parsed values on PostgreSQL (`jsonb`); `changed_at` as an ISO
 * string on SQLite, a `Date` elsewhere.
 *
 * @example The audit table in the database type
 * ```ts
 * import type { AuditLogTable } from "@kysera/kysera/audit"; // npm: "kysera/audit"
 *
 * interface DB { posts: { id: number; title: string }; audit_logs: AuditLogTable }
 * const columns: (keyof DB["audit_logs"])[] = ["table_name", "entity_id", "tenant_id"];
 * if (columns.length !== 3) throw new Error("unreachable");
 * ```
 */
export interface AuditLogTable {
  /** The audit row's id (generated). */
  id: Generated<number | string>;
  /** The audited table. */
  table_name: string;
  /** The audited row's key, as text (JSON for a composite key). */
  entity_id: string;
  /** `"insert"`, `"update"` or `"delete"`. */
  operation: string;
  /** The row before the change (JSON), or `null`. */
  old_values: unknown;
  /** The row after the change (JSON), or `null`. */
  new_values: unknown;
  /** The changed columns (JSON array). */
  changed_fields: unknown;
  /** The acting user, or `null`. */
  actor: string | null;
  /** The tenant of the audited row, as text, or `null`. */
  tenant_id: string | null;
  /** The call's metadata (JSON), or `null`. */
  metadata: unknown;
  /** When the change was recorded. */
  changed_at: Date | string;
}

/**
 * Creates the audit table with the DDL of the database's dialect (`jsonb`
 * on PostgreSQL, `json` on MariaDB/MySQL, `text` on SQLite) and two indexes:
 * `(table_name, entity_id)` for a row's history and `(actor, changed_at)`
 * for a user's changes. Call it from a migration; the plugin never creates
 * the table itself.
 *
 * Append-only: the plugin only ever inserts into the table (and reads it),
 * so the application's database role needs only `SELECT, INSERT` on it:
 * `grant select, insert on audit_logs to app` (PostgreSQL; on MariaDB/MySQL
 * `grant select, insert on db.audit_logs to 'app'@'%'`). Then no statement
 * of the application, raw SQL included, can change or delete an audit row.
 * Under row-level security, also list the table in the RLS schema (see
 * `auditTenantFilter`).
 *
 * @param db A Kysely instance (or executor) on the database.
 * @param options The table name and `ifNotExists`.
 * @returns Resolves when the table and indexes exist.
 *
 * @example Creating the table on SQLite
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 * import { createAuditTable } from "@kysera/kysera/audit";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await createAuditTable(db);
 * const tables = await db.introspection.getTables();
 * assert.deepEqual(tables.map((t) => t.name), ["audit_logs"]);
 * await db.destroy();
 * ```
 */
export async function createAuditTable(
  db: Pick<AnyKysely, "schema" | "getExecutor">,
  options: CreateAuditTableOptions = {},
): Promise<void> {
  const table = options.table ?? "audit_logs";
  const dialect = getDialect(db);
  // deno-lint-ignore no-explicit-any
  const json = sql.raw(JSON_TYPE[dialect]) as any;
  // deno-lint-ignore no-explicit-any
  const time = sql.raw(TIME_TYPE[dialect]) as any;
  let create = db.schema.createTable(table);
  if (options.ifNotExists === true) create = create.ifNotExists();
  create = dialect === "postgres"
    ? create.addColumn("id", "bigserial", (c) => c.primaryKey())
    : dialect === "sqlite"
    ? create.addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
    : create.addColumn("id", "bigint", (c) => c.primaryKey().autoIncrement());
  await create
    .addColumn("table_name", "varchar(255)", (c) => c.notNull())
    .addColumn("entity_id", "varchar(255)", (c) => c.notNull())
    .addColumn("operation", "varchar(16)", (c) => c.notNull())
    .addColumn("old_values", json)
    .addColumn("new_values", json)
    .addColumn("changed_fields", json)
    .addColumn("actor", "varchar(255)")
    .addColumn("tenant_id", "varchar(255)")
    .addColumn("metadata", json)
    .addColumn("changed_at", time, (c) => c.notNull())
    .execute();
  for (
    const [name, columns] of [["entity", ["table_name", "entity_id"]], ["actor", ["actor", "changed_at"]]] as const
  ) {
    let index = db.schema.createIndex(`${table}_${name}_idx`).on(table).columns([...columns]);
    if (options.ifNotExists === true) index = index.ifNotExists();
    await index.execute();
  }
}
