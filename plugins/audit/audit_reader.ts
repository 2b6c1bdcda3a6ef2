import { getDialect, NotFoundError } from "../../core/mod.ts";
import type { AnyKysely } from "../../executor/mod.ts";
import { fromJson, toJson } from "./_json.ts";
import { entityIdOf, primaryKeyOf } from "./audit_plugin.ts";

/** What an audit row records. */
export type AuditOperation = "insert" | "update" | "delete";

/** One audit row, parsed. */
export interface AuditEntry {
  /** The audit row's id. */
  readonly id: number;
  /** The audited table. */
  readonly table: string;
  /** The row's key: the value, or JSON of the columns for a composite key. */
  readonly entityId: string;
  /** What happened to the row. */
  readonly operation: AuditOperation;
  /** The row before the change (`null` for an insert or when not captured). */
  readonly oldValues: Record<string, unknown> | null;
  /** The row after the change (`null` for a delete or when not captured). */
  readonly newValues: Record<string, unknown> | null;
  /** The columns whose value changed. */
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
  /** The row as it was at `time` (`undefined` when it did not exist then). */
  asOf(table: string, id: unknown, time: Date): Promise<Record<string, unknown> | undefined>;
  /**
   * Puts a row back as it was before an audit entry's change: updates it,
   * re-inserts a deleted row, or deletes an inserted one. The restore is a
   * write through `db`, so with the plugin on `db` it is audited itself.
   * Refuses (a `TypeError`) when the row changed since the entry, unless
   * `force`.
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
 * audit plugin) so that restores are audited and RLS scopes the audit rows.
 *
 * @param db The Kysely instance or executor to read (and restore) through.
 * @param options The audit table and primary keys.
 * @returns The readers.
 *
 * @example The row as it was
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
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
 * console.log((await reader.asOf("posts", 1, new Date("2024-01-15T00:00:00.000Z")))?.title); // "v1"
 * const [, second] = await reader.getAuditHistory("posts", 1);
 * await reader.restoreFromAudit(second!.id);
 * console.log((await db.selectFrom("posts").select("title").executeTakeFirst())?.title); // "v1"
 * await db.destroy();
 * ```
 */
export function auditReader(db: AnyKysely, options: AuditReaderOptions = {}): AuditReader {
  const table = options.table ?? "audit_logs";
  const pkOf = (t: string) => primaryKeyOf(options.primaryKey, t);
  const base = () => db.selectFrom(table).selectAll();
  const stamp = (d: Date): Date | string => getDialect(db) === "sqlite" ? d.toISOString() : d;
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
  const history = (t: string, id: unknown) =>
    filtered((q) => q.where("table_name", "=", t).where("entity_id", "=", entityIdOf(pkOf(t), keyOf(pkOf(t), id))));
  const reader: AuditReader = {
    getAuditHistory: history,
    getTableAuditLogs: (t, filters) => filtered((q) => q.where("table_name", "=", t), filters),
    getUserChanges: (actor, filters) => filtered((q) => q, { ...filters, actor }),
    async asOf(t, id, time) {
      const entries = (await history(t, id)).filter((e) => e.changedAt.getTime() <= time.getTime());
      const last = entries.at(-1);
      return last === undefined || last.operation === "delete" ? undefined : last.newValues ?? undefined;
    },
    async restoreFromAudit(auditId, restoreOptions = {}) {
      const row = await db.selectFrom(table).selectAll().where("id", "=", auditId).executeTakeFirst();
      if (row === undefined) throw new NotFoundError(`Cannot restore: audit entry ${auditId} does not exist`);
      const entry = parse(row as Row);
      const pk = pkOf(entry.table);
      const key = entry.newValues ?? entry.oldValues;
      if (key === null) throw new TypeError(`Cannot restore from audit entry ${auditId}: it captured no values`);
      const where = <Q extends { where: (c: string, op: "=", v: unknown) => Q }>(q: Q): Q =>
        pk.reduce((acc, c) => acc.where(c, "=", key[c]), q);
      await db.transaction().execute(async (trx) => {
        const current = await where(trx.selectFrom(entry.table).selectAll()).executeTakeFirst() as Row | undefined;
        const expected = entry.operation === "delete" ? undefined : entry.newValues ?? undefined;
        const same = current === undefined || expected === undefined
          ? current === expected
          : Object.keys(expected).every((c) =>
            toJson(current[c]) === toJson(expected[c]) || sameTime(current[c], expected[c])
          );
        if (!same && restoreOptions.force !== true) {
          throw new TypeError(
            `Cannot restore from audit entry ${auditId}: the row in '${entry.table}' changed since (pass force to restore anyway)`,
          );
        }
        const target = entry.oldValues;
        if (target === null || entry.operation === "insert") {
          if (current !== undefined) await where(trx.deleteFrom(entry.table)).execute();
        } else if (current === undefined) {
          await trx.insertInto(entry.table).values(target).execute();
        } else {
          await where(trx.updateTable(entry.table).set(target)).execute();
        }
      });
    },
  };
  return reader;
}

function sameTime(a: unknown, b: unknown): boolean {
  if (!(a instanceof Date) || typeof b !== "string") return false;
  return a.getTime() === new Date(b).getTime();
}
