/**
 * Storing audit rows: one statement per write (private).
 */
import { sql } from "kysely";
import type { AnyKysely } from "../../executor/mod.ts";
import type { DialectName } from "../../core/mod.ts";
import type { AuditOperation } from "./audit_reader.ts";
import { entityIdOf } from "./_keys.ts";
import { toJson } from "./_json.ts";

type Row = Record<string, unknown>;

/** One audited row change. */
export interface Entry {
  readonly operation: AuditOperation;
  readonly old: Row | undefined;
  readonly new: Row | undefined;
}

/** What the store needs of the plugin's options. */
export interface StoreSettings {
  readonly auditTable: string;
  readonly captureOld: boolean;
  readonly captureNew: boolean;
  readonly tenant: ((row: Readonly<Row>, table: string) => unknown) | undefined;
}

/** The acting user, metadata and time of one write. */
export interface WriteContext {
  readonly actor: string | null;
  readonly metadata: object | null;
  readonly at: Date;
}

function changedFields(old: Row | undefined, now: Row | undefined): string[] {
  if (old === undefined) return Object.keys(now ?? {});
  if (now === undefined) return Object.keys(old);
  return Object.keys(now).filter((k) => toJson(old[k]) !== toJson(now[k]));
}

/** JSON of a row without its redacted columns. */
function stored(row: Row | undefined, redacted: ReadonlySet<string>): string | null {
  if (row === undefined || redacted.size === 0) return toJson(row);
  const kept: Row = {};
  for (const [column, value] of Object.entries(row)) if (!redacted.has(column)) kept[column] = value;
  return toJson(kept);
}

const CHUNK = 2000;

/** Inserts the audit rows of one write (one statement per 2,000 rows; one in all on PostgreSQL). */
export async function writeEntries(
  db: AnyKysely,
  settings: StoreSettings,
  table: string,
  pk: readonly string[],
  redacted: ReadonlySet<string>,
  dialect: DialectName,
  entries: readonly Entry[],
  context: WriteContext,
): Promise<void> {
  if (entries.length === 0) return;
  const at = dialect === "sqlite" ? context.at.toISOString() : context.at;
  const metadata = toJson(context.metadata ?? undefined);
  const values = entries.map((e) => {
    const row = (e.new ?? e.old)!;
    const tenant = tenantText(settings.tenant?.(row, table), table);
    return {
      table_name: table,
      entity_id: entityIdOf(pk, row),
      operation: e.operation,
      old_values: settings.captureOld ? stored(e.old, redacted) : null,
      new_values: settings.captureNew ? stored(e.new, redacted) : null,
      changed_fields: toJson(changedFields(e.old, e.new)),
      actor: context.actor,
      tenant_id: tenant,
      metadata,
      changed_at: at,
    };
  });
  if (dialect === "postgres") return await insertUnnested(db, settings.auditTable, values);
  for (let i = 0; i < values.length; i += CHUNK) {
    await db.insertInto(settings.auditTable).values(values.slice(i, i + CHUNK)).execute();
  }
}

const AUDIT_COLUMNS = [
  "table_name",
  "entity_id",
  "operation",
  "old_values",
  "new_values",
  "changed_fields",
  "actor",
  "tenant_id",
  "metadata",
  "changed_at",
] as const;

/**
 * PostgreSQL: the audit rows as one array parameter per column, `insert ...
 * select from unnest(...)`, which PostgreSQL parses and plans in a third of
 * the time of a many-row VALUES list with ten parameters a row (about 3 ms
 * against 8 ms for 100 rows here). The casts name the types
 * `createAuditTable` gives the columns; PostgreSQL turns them into `json`,
 * `text` or `timestamp` columns of a table made otherwise on assignment.
 */
async function insertUnnested(
  db: AnyKysely,
  table: string,
  values: readonly Readonly<Record<(typeof AUDIT_COLUMNS)[number], unknown>>[],
): Promise<void> {
  const column = (name: (typeof AUDIT_COLUMNS)[number]) =>
    values.map((v) => {
      const value = v[name];
      return value instanceof Date ? value.toISOString() : value;
    });
  await sql`insert into ${sql.table(table)} (${sql.join(AUDIT_COLUMNS.map((c) => sql.ref(c)))})
    select u.table_name, u.entity_id, u.operation, u.old_values::jsonb, u.new_values::jsonb,
      u.changed_fields::jsonb, u.actor, u.tenant_id, u.metadata::jsonb, u.changed_at::timestamptz
    from unnest(${sql.join(AUDIT_COLUMNS.map((c) => sql`${column(c)}::text[]`))})
      as u(${sql.join(AUDIT_COLUMNS.map((c) => sql.ref(c)))})`.execute(db);
}

/** The `tenant` option's value as stored: text, or `NULL`. */
function tenantText(value: unknown, table: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string" || typeof value === "number" || typeof value === "bigint") return String(value);
  throw new TypeError(
    `Cannot audit a write to '${table}': 'tenant' must return a string, a number or null: current value is ${
      typeof value === "object" ? JSON.stringify(value) : String(value)
    }`,
  );
}
