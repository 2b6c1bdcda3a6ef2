import { sql } from "kysely";
import { getDialect, NotFoundError } from "../../core/mod.ts";
import type { AnyKysely } from "../../executor/mod.ts";
import { fromJson, toJson } from "./_json.ts";
import { entityIdOf, primaryKeyOf } from "./_keys.ts";
import { type ColumnFacts, columnFacts } from "./_columns.ts";
import { AuditRestoreError } from "./errors.ts";

/** What an audit row records. */
export type AuditOperation = "insert" | "update" | "delete";

/** One audit row, parsed. */
export interface AuditEntry {
  /** The audit row's id. */
  readonly id: number;
  /** The audited table. */
  readonly table: string;
  /**
   * The row's key: the value as text, or JSON of the columns' values as
   * text for a composite key (`{"a":"1","b":"2"}`), whatever numeric type
   * the driver gives the key in.
   */
  readonly entityId: string;
  /** What happened to the row. */
  readonly operation: AuditOperation;
  /**
   * The row before the change (`null` for an insert or when not captured),
   * as stored: JSON values (dates as ISO strings), redacted columns left out.
   */
  readonly oldValues: Record<string, unknown> | null;
  /** The row after the change (`null` for a delete or when not captured), as stored. */
  readonly newValues: Record<string, unknown> | null;
  /** The columns whose value changed (redacted ones included). */
  readonly changedFields: string[];
  /** Who made the change. */
  readonly actor: string | null;
  /** The tenant it was made in. */
  readonly tenantId: string | null;
  /** The call's metadata. */
  readonly metadata: Record<string, unknown> | null;
  /** When (the plugin's clock). */
  readonly changedAt: Date;
}

/** Filters of {@linkcode AuditReader.getTableAuditLogs}. */
export interface AuditFilters {
  /** Only this operation. */
  readonly operation?: AuditOperation;
  /** Only this actor. */
  readonly actor?: string;
  /** From this time on (inclusive). */
  readonly since?: Date;
  /** Before this time (exclusive). */
  readonly until?: Date;
  /** At most this many entries. */
  readonly limit?: number;
}

/** Options of {@linkcode auditReader}. */
export interface AuditReaderOptions {
  /** The audit table. @default "audit_logs" */
  readonly table?: string;
  /** Primary keys, as in the plugin's options. @default "id" */
  readonly primaryKey?: string | readonly string[] | Readonly<Record<string, string | readonly string[]>>;
}

/** Reads the audit log, reconstructs rows and restores them. */
export interface AuditReader {
  /** Every entry of one row, oldest first. */
  getAuditHistory(table: string, id: unknown): Promise<AuditEntry[]>;
  /** A table's entries, oldest first, filtered. */
  getTableAuditLogs(table: string, filters?: AuditFilters): Promise<AuditEntry[]>;
  /** Every entry made by one actor, oldest first. */
  getUserChanges(actor: string, filters?: Omit<AuditFilters, "actor">): Promise<AuditEntry[]>;
  /**
   * The row as it was at `time` (`undefined` when it did not exist then),
   * with date and time columns as `Date`s, as a select returns them on
   * PostgreSQL and MariaDB (SQLite keeps its text); redacted columns are
   * absent.
   */
  asOf(table: string, id: unknown, time: Date): Promise<Record<string, unknown> | undefined>;
  /**
   * Puts a row back as it was before an audit entry's change: updates it,
   * re-inserts a deleted row, or deletes an inserted one, in one
   * transaction (or the caller's). The restore is a write through `db`, so
   * with the plugin on `db` it is audited itself, and under row-level
   * security it obeys the policies. Date and time columns are written back
   * as `Date`s, so a DATETIME (MariaDB) or timestamp (PostgreSQL) column
   * gets its exact value. Only the columns the entry holds are written:
   * redacted columns keep their current value (or their default, when a
   * deleted row is re-inserted). Generated columns are left to the database,
   * and an identity key generated always (PostgreSQL) is re-inserted with
   * `OVERRIDING SYSTEM VALUE`, so the row keeps its key.
   * @throws {NotFoundError} When the entry does not exist or `db` may not see it (another tenant's).
   * @throws {AuditRestoreError} When the entry holds no values to restore: an update or delete recorded
   * with `captureOldValues: false`, or an entry with no values at all (nothing is written).
   * @throws {TypeError} When the row changed since the entry (compared on the entry's columns), unless `force`.
   */
  restoreFromAudit(auditId: number | string, options?: { force?: boolean }): Promise<void>;
}

type Row = Record<string, unknown>;

function keyOf(pk: readonly string[], id: unknown): Row {
  if (pk.length === 1) return { [pk[0]!]: typeof id === "object" && id !== null ? (id as Row)[pk[0]!] : id };
  return id as Row;
}

function parse(row: Row): AuditEntry {
  const at = row.changed_at;
  return {
    id: Number(row.id),
    table: String(row.table_name),
    entityId: String(row.entity_id),
    operation: row.operation as AuditOperation,
    oldValues: fromJson(row.old_values),
    newValues: fromJson(row.new_values),
    changedFields: fromJson<string[]>(row.changed_fields) ?? [],
    actor: (row.actor ?? null) as string | null,
    tenantId: (row.tenant_id ?? null) as string | null,
    metadata: fromJson(row.metadata),
    changedAt: at instanceof Date ? at : new Date(String(at).replace(" ", "T") + (/[zZ+]/.test(String(at)) ? "" : "Z")),
  };
}

/**
 * Returns the audit log's readers over `db`: history per row, per table,
 * per actor, the row as of a time, and restore. Pass the executor (with the
 * audit plugin) so that restores are audited and row-level security applies.
 *
 * Tenant isolation: the readers read the audit table through `db` like any
 * other table, so on an executor with the RLS plugin a tenant sees only its
 * own audit rows once the RLS schema lists the audit table with
 * `filter("read", auditTenantFilter())` (see {@linkcode auditTenantFilter})
 * and the audit plugin's `tenant` option fills `tenant_id`.
 * That holds for every reader, the repository methods, and a plain
 * `selectFrom("audit_logs")` through the executor; restoring another
 * tenant's entry throws `NotFoundError`, as for an entry that does not
 * exist. A reader over a Kysely without the RLS plugin sees every tenant.
 *
 * @param db The Kysely instance or executor to read (and restore) through.
 * @param options The audit table and primary keys.
 * @returns The readers.
 *
 * @example The row as it was
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 * import { createExecutorSync } from "@kysera/kysera/executor";
 * import { auditPlugin, auditReader, createAuditTable } from "@kysera/kysera/audit";
 *
 * // deno-lint-ignore no-explicit-any
 * const db = new Kysely<any>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await createAuditTable(db);
 * await db.schema.createTable("posts").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("title", "text").execute();
 * let now = new Date("2024-01-01T00:00:00.000Z");
 * const executor = createExecutorSync(db, [auditPlugin({ clock: () => now })]);
 * await executor.insertInto("posts").values({ id: 1, title: "v1" }).execute();
 * now = new Date("2024-02-01T00:00:00.000Z");
 * await executor.updateTable("posts").set({ title: "v2" }).where("id", "=", 1).execute();
 * const reader = auditReader(executor);
 * assert.equal((await reader.asOf("posts", 1, new Date("2024-01-15T00:00:00.000Z")))?.title, "v1");
 * const [, second] = await reader.getAuditHistory("posts", 1);
 * await reader.restoreFromAudit(second!.id);
 * assert.equal((await db.selectFrom("posts").select("title").executeTakeFirst())?.title, "v1");
 * await db.destroy();
 * ```
 *
 * @example Each tenant sees only its own audit rows
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 * import { createExecutorSync } from "@kysera/kysera/executor";
 * import { deny, defineRLSSchema, filter, rlsContext, rlsPlugin } from "@kysera/kysera/rls";
 * import { auditPlugin, auditReader, auditTenantFilter, createAuditTable } from "@kysera/kysera/audit";
 *
 * // deno-lint-ignore no-explicit-any
 * const db = new Kysely<any>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await createAuditTable(db);
 * await db.schema.createTable("notes").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("tenant_id", "integer", (c) => c.notNull()).addColumn("body", "text").execute();
 * const tenantFilter = filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }));
 * const rls = rlsPlugin({
 *   schema: defineRLSSchema({
 *     notes: { policies: [tenantFilter] },
 *     // The audit log: read filtered by tenant, written only by the audit plugin.
 *     audit_logs: { policies: [filter("read", auditTenantFilter()), deny(["create", "update", "delete"])] },
 *   }),
 * });
 * const audit = auditPlugin({ tables: ["notes"], tenant: (row) => row.tenant_id as number });
 * const executor = createExecutorSync(db, [rls, audit]);
 * const as = (tenantId: number) => ({ auth: { userId: tenantId, tenantId, roles: [] } });
 *
 * await rlsContext.runAsync(as(1), () => executor.insertInto("notes").values({ id: 1, body: "one" }).execute());
 * await rlsContext.runAsync(as(2), () => executor.insertInto("notes").values({ id: 2, body: "two" }).execute());
 * await rlsContext.runAsync(as(1), async () => {
 *   const reader = auditReader(executor);
 *   assert.deepEqual((await reader.getTableAuditLogs("notes")).map((e) => e.entityId), ["1"]);
 *   assert.deepEqual(await reader.getAuditHistory("notes", 2), []); // tenant 2's note is hidden
 * });
 * await db.destroy();
 * ```
 */
export function auditReader(db: AnyKysely, options: AuditReaderOptions = {}): AuditReader {
  const table = options.table ?? "audit_logs";
  const pkOf = (t: string) => primaryKeyOf(options.primaryKey, t);
  const base = () => db.selectFrom(table).selectAll();
  const stamp = (d: Date): Date | string => getDialect(db) === "sqlite" ? d.toISOString() : d;
  const facts = new Map<string, ColumnFacts>();
  const factsOf = async (t: string): Promise<ColumnFacts> => {
    let columns = facts.get(t);
    if (columns === undefined) facts.set(t, columns = await columnFacts(db, t));
    return columns;
  };
  const timeColumnsOf = async (t: string): Promise<ReadonlySet<string>> => (await factsOf(t)).times;
  const filtered = async (
    build: (q: ReturnType<typeof base>) => ReturnType<typeof base>,
    filters: AuditFilters = {},
  ): Promise<AuditEntry[]> => {
    let q = build(base());
    if (filters.operation !== undefined) q = q.where("operation", "=", filters.operation);
    if (filters.actor !== undefined) q = q.where("actor", "=", filters.actor);
    if (filters.since !== undefined) q = q.where("changed_at", ">=", stamp(filters.since));
    if (filters.until !== undefined) q = q.where("changed_at", "<", stamp(filters.until));
    q = q.orderBy("changed_at").orderBy("id");
    if (filters.limit !== undefined) q = q.limit(filters.limit);
    return (await q.execute()).map((r) => parse(r as Row));
  };
  // SQLite reads POSTS as posts, and the plugin records a table under one spelling: find it under any.
  const tableIs = (q: ReturnType<typeof base>, t: string): ReturnType<typeof base> =>
    getDialect(db) === "sqlite"
      ? q.where((eb) => eb(eb.fn("lower", [eb.ref("table_name")]), "=", t.toLowerCase()))
      : q.where("table_name", "=", t);
  const history = (t: string, id: unknown) =>
    filtered((q) => tableIs(q, t).where("entity_id", "=", entityIdOf(pkOf(t), keyOf(pkOf(t), id))));
  const reader: AuditReader = {
    getAuditHistory: history,
    getTableAuditLogs: (t, filters) => filtered((q) => tableIs(q, t), filters),
    getUserChanges: (actor, filters) => filtered((q) => q, { ...filters, actor }),
    async asOf(t, id, time) {
      const entries = (await history(t, id)).filter((e) => e.changedAt.getTime() <= time.getTime());
      const last = entries.at(-1);
      if (last === undefined || last.operation === "delete" || last.newValues === null) return undefined;
      return revive(last.newValues, await timeColumnsOf(t));
    },
    async restoreFromAudit(auditId, restoreOptions = {}) {
      const row = await db.selectFrom(table).selectAll().where("id", "=", auditId).executeTakeFirst();
      if (row === undefined) throw new NotFoundError(table, { id: auditId });
      const entry = parse(row as Row);
      const pk = pkOf(entry.table);
      const key = entry.newValues ?? entry.oldValues;
      if (key === null) {
        throw new AuditRestoreError(auditId, "it captured no values (captureOldValues and captureNewValues were off)");
      }
      if (entry.operation !== "insert" && entry.oldValues === null) {
        throw new AuditRestoreError(
          auditId,
          `it records the ${entry.operation} without the row before it (captureOldValues was off), so there is nothing to put back`,
        );
      }
      const columns = await factsOf(entry.table);
      const times = columns.times;
      const where = <Q extends { where: (c: string, op: "=", v: unknown) => Q }>(q: Q): Q =>
        pk.reduce((acc, c) => acc.where(c, "=", key[c]), q);
      const restore = async (trx: AnyKysely) => {
        const current = await where(trx.selectFrom(entry.table).selectAll()).executeTakeFirst() as Row | undefined;
        const expected = entry.operation === "delete" || entry.newValues === null
          ? undefined
          : revive(entry.newValues, times);
        const same = current === undefined || expected === undefined
          ? current === expected
          : Object.keys(expected).every((c) => toJson(current[c]) === toJson(expected[c]));
        if (!same && restoreOptions.force !== true) {
          throw new TypeError(
            `Cannot restore from audit entry ${auditId}: the row in '${entry.table}' changed since (pass force to restore anyway)`,
          );
        }
        if (entry.operation === "insert") {
          if (current !== undefined) await where(trx.deleteFrom(entry.table)).execute();
          return;
        }
        const target = writable(revive(entry.oldValues!, times), columns, getDialect(db));
        if (current === undefined) {
          const names = Object.keys(target);
          const overriding = names.some((c) => columns.identityAlways.has(c));
          if (!overriding) await trx.insertInto(entry.table).values(target).execute();
          else {
            // PostgreSQL: an identity generated always takes the row's own key only with OVERRIDING SYSTEM VALUE.
            await trx.insertInto(entry.table).columns(names).expression(
              sql`overriding system value values (${sql.join(names.map((c) => target[c]))})`,
            ).execute();
          }
        } else {
          const changes = Object.fromEntries(Object.entries(target).filter(([c]) => !pk.includes(c)));
          if (Object.keys(changes).length > 0) await where(trx.updateTable(entry.table).set(changes)).execute();
        }
      };
      if (db.isTransaction) await restore(db);
      else await db.transaction().execute(restore);
    },
  };
  return reader;
}

/**
 * Stored values as the row's columns take them: generated columns left out
 * (the database computes them), JSON columns as JSON text (PostgreSQL's
 * driver would send a JavaScript array as an SQL array; MariaDB's would
 * expand it into a list), other objects and arrays as JSON text on MariaDB
 * and SQLite.
 */
function writable(values: Readonly<Row>, columns: ColumnFacts, dialect: string): Row {
  const out: Row = {};
  for (const [column, value] of Object.entries(values)) {
    if (columns.generated.has(column)) continue;
    const json = columns.json.has(column) ||
      (dialect !== "postgres" && typeof value === "object" && value !== null && !(value instanceof Date));
    out[column] = json && value !== null && value !== undefined ? JSON.stringify(value) : value;
  }
  return out;
}

/** Stored values with the ISO strings of date and time columns back as `Date`s. */
function revive(values: Readonly<Row>, times: ReadonlySet<string>): Row {
  const out: Row = { ...values };
  for (const column of times) {
    const value = out[column];
    if (typeof value !== "string") continue;
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) out[column] = date;
  }
  return out;
}
