import {
  type CompiledQuery,
  createQueryId,
  type DeleteQueryNode,
  type InsertQueryNode,
  type OperationNode,
  type PrimitiveValueListNode,
  type QueryResult,
  ReturningNode,
  type RootOperationNode,
  SelectionNode,
  SelectModifierNode,
  SelectQueryNode,
  sql,
  TableNode,
  type UpdateQueryNode,
  type ValueListNode,
  type ValuesNode,
} from "kysely";
import type { AnyKysely, KyseraPlugin, WriteExecution } from "../../executor/mod.ts";
import { type DialectName, getDialect } from "../../core/mod.ts";
import { type AuditOperation, type AuditReader, auditReader } from "./audit_reader.ts";
import { toJson } from "./_json.ts";

/** Options of {@linkcode auditPlugin}. */
export interface AuditOptions {
  /** The audit table. @default "audit_logs" */
  readonly table?: string;
  /** Only these tables are audited (all others are not). @default every table */
  readonly tables?: readonly string[];
  /** Tables never audited (the audit table itself never is). @default [] */
  readonly excludeTables?: readonly string[];
  /**
   * The primary key column(s): one for every table, or per table (tables
   * not listed use `"id"`). @default "id"
   */
  readonly primaryKey?: string | readonly string[] | Readonly<Record<string, string | readonly string[]>>;
  /** Record the row before an update or delete. @default true */
  readonly captureOldValues?: boolean;
  /** Record the row after an insert or update. @default true */
  readonly captureNewValues?: boolean;
  /** The acting user of the current call, read once per write. @default () => null */
  readonly actor?: () => string | null;
  /** Extra data stored with every audit row of the current call. @default () => ({}) */
  readonly metadata?: () => object;
  /** The tenant of the current call. @default () => null */
  readonly tenant?: () => string | number | null;
  /** The clock for `changed_at`. @default () => new Date() */
  readonly clock?: () => Date;
}

/** The audit plugin, with its repository methods. */
export interface AuditPlugin extends KyseraPlugin {
  /** Adds `getAuditHistory`, `asOf` and `restoreFromAudit` for the repository's table. */
  extendRepository(repository: object): AuditRepositoryMethods;
}

/** Methods the audit plugin adds to a repository (config form: `tableName`, `executor`). */
export interface AuditRepositoryMethods {
  /** The audit entries of one row of this repository's table, oldest first. */
  getAuditHistory(id: unknown): Promise<import("./audit_reader.ts").AuditEntry[]>;
  /** The row as it was at `time` (`undefined` if it did not exist). */
  asOf(id: unknown, time: Date): Promise<Record<string, unknown> | undefined>;
  /** Restores a row from an audit entry (see {@linkcode AuditReader.restoreFromAudit}). */
  restoreFromAudit(auditId: number | string, options?: { force?: boolean }): Promise<void>;
}

type Row = Record<string, unknown>;

/** Resolves the primary key columns of a table from the plugin's option. */
export function primaryKeyOf(option: AuditOptions["primaryKey"], table: string): readonly string[] {
  if (option === undefined) return ["id"];
  if (typeof option === "string") return [option];
  if (Array.isArray(option)) return option as readonly string[];
  const own = (option as Readonly<Record<string, string | readonly string[]>>)[table];
  if (own === undefined) return ["id"];
  return typeof own === "string" ? [own] : own;
}

/** The `entity_id` stored for a key: the value for one column, JSON of the columns for a composite key. */
export function entityIdOf(pk: readonly string[], row: Row): string {
  if (pk.length === 1) return String(row[pk[0]!]);
  const key: Row = {};
  for (const column of pk) key[column] = row[column];
  return toJson(key)!;
}

/**
 * Creates the audit plugin: every INSERT, UPDATE and DELETE through the
 * executor (repository, DAL, plain builders, multi-row, upsert,
 * `insert ... select`) writes one row per affected row into the audit table,
 * on the write's own connection and transaction. A lone write gets an
 * implicit transaction; inside a transaction the plugin uses a savepoint, so
 * a failed audit insert undoes the write and fails it. Old rows are read in
 * one `SELECT ... FOR UPDATE` (PostgreSQL, MariaDB) before the write, new
 * rows come from `RETURNING` (inserts) or one `SELECT` after (updates), and
 * the audit rows are inserted in one statement. Create the table first with
 * {@linkcode createAuditTable}; nothing is created for you.
 *
 * `REPLACE` and `MERGE` statements are not audited yet.
 *
 * @param options What to audit and where the actor, tenant and metadata come from.
 * @returns The plugin, to pass to `createExecutor` or `createORM`.
 *
 * @example Auditing a builder update
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects";
 * import { createExecutorSync } from "@kysera/kysera/executor";
 * import { auditPlugin, createAuditTable, auditReader } from "@kysera/kysera/audit";
 *
 * // deno-lint-ignore no-explicit-any
 * const db = new Kysely<any>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await createAuditTable(db);
 * await db.schema.createTable("posts").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("title", "text").execute();
 * const executor = createExecutorSync(db, [auditPlugin({ actor: () => "ada" })]);
 * await executor.insertInto("posts").values({ id: 1, title: "draft" }).execute();
 * await executor.updateTable("posts").set({ title: "final" }).where("id", "=", 1).execute();
 * const history = await auditReader(db).getAuditHistory("posts", 1);
 * console.log(history.map((e) => [e.operation, e.changedFields]));
 * // [["insert", ["id", "title"]], ["update", ["title"]]]
 * await db.destroy();
 * ```
 */
export function auditPlugin(options: AuditOptions = {}): AuditPlugin {
  const auditTable = options.table ?? "audit_logs";
  const only = options.tables === undefined ? undefined : new Set(options.tables);
  const excluded = new Set([...(options.excludeTables ?? []), auditTable]);
  const captureOld = options.captureOldValues ?? true;
  const captureNew = options.captureNewValues ?? true;
  const clock = options.clock ?? (() => new Date());

  const audited = (table: string | undefined): table is string =>
    table !== undefined && !excluded.has(table) && (only === undefined || only.has(table));

  async function around(
    execution: WriteExecution,
    next: (query?: CompiledQuery) => Promise<QueryResult<unknown>>,
  ): Promise<QueryResult<unknown>> {
    const { table, rawDb } = execution;
    const node = execution.query.query as RootOperationNode;
    const kind = node.kind;
    if (
      !audited(table) ||
      (kind !== "InsertQueryNode" && kind !== "UpdateQueryNode" && kind !== "DeleteQueryNode") ||
      (kind === "InsertQueryNode" && (node as InsertQueryNode).replace === true)
    ) {
      return await next();
    }
    const dialect = getDialect(rawDb);
    const pk = primaryKeyOf(options.primaryKey, table);
    const context = {
      actor: options.actor?.() ?? null,
      tenant: options.tenant?.() ?? null,
      metadata: options.metadata?.() ?? null,
      at: clock(),
    };
    const tx = await openScope(rawDb, dialect);
    try {
      let entries: Entry[];
      let result: QueryResult<unknown>;
      if (kind === "InsertQueryNode") {
        ({ entries, result } = await auditInsert(execution, node as InsertQueryNode, pk, dialect, next));
      } else if (kind === "UpdateQueryNode") {
        ({ entries, result } = await auditUpdate(execution, node as UpdateQueryNode, pk, dialect, next));
      } else {
        ({ entries, result } = await auditDelete(execution, node as DeleteQueryNode, dialect, next));
      }
      await writeEntries(rawDb, auditTable, table, pk, dialect, entries, context, captureOld, captureNew);
      await tx.commit();
      return result;
    } catch (error) {
      await tx.rollback().catch(() => {});
      throw error;
    }
  }

  return {
    name: "audit",
    version: "1.0.0",
    // Runs innermost among aroundWrite hooks, next to the write itself.
    priority: -1000,
    aroundWrite: around,
    extendRepository(repository: object): AuditRepositoryMethods {
      const repo = repository as { tableName?: string; executor?: AnyKysely };
      const tableName = repo.tableName;
      const executor = repo.executor;
      if (tableName === undefined || executor === undefined) {
        throw new TypeError("Cannot extend a repository with audit methods: it has no 'tableName' or 'executor'");
      }
      const reader = (): AuditReader =>
        auditReader(executor, {
          table: auditTable,
          ...(options.primaryKey === undefined ? {} : { primaryKey: options.primaryKey }),
        });
      return {
        getAuditHistory: (id) => reader().getAuditHistory(tableName, id),
        asOf: (id, time) => reader().asOf(tableName, id, time),
        restoreFromAudit: (auditId, restoreOptions) => reader().restoreFromAudit(auditId, restoreOptions),
      };
    },
  } satisfies AuditPlugin;
}

interface Entry {
  readonly operation: AuditOperation;
  readonly old: Row | undefined;
  readonly new: Row | undefined;
}

interface Scope {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

const SAVEPOINT = "kysera_audit";

/**
 * Opens an implicit transaction for a lone write, or a savepoint inside an
 * open one. The probe differs per dialect: SQLite refuses `BEGIN` inside a
 * transaction, PostgreSQL refuses `SAVEPOINT` outside one, MariaDB reports
 * `@@in_transaction`.
 */
async function openScope(db: AnyKysely, dialect: DialectName): Promise<Scope> {
  const run = async (text: string) => void await sql.raw(text).execute(db);
  const transaction: Scope = { commit: () => run("commit"), rollback: () => run("rollback") };
  const savepoint: Scope = {
    commit: () => run(`release savepoint ${SAVEPOINT}`),
    rollback: async () => {
      await run(`rollback to savepoint ${SAVEPOINT}`);
      await run(`release savepoint ${SAVEPOINT}`);
    },
  };
  if (dialect === "sqlite") {
    try {
      await run("begin immediate");
      return transaction;
    } catch (error) {
      if (!/within a transaction/i.test(String((error as Error)?.message))) throw error;
      await run(`savepoint ${SAVEPOINT}`);
      return savepoint;
    }
  }
  if (dialect === "postgres") {
    try {
      await run(`savepoint ${SAVEPOINT}`);
      return savepoint;
    } catch (error) {
      if ((error as { code?: string })?.code !== "25P01") throw error;
      await run("begin");
      return transaction;
    }
  }
  const { rows } = await sql<{ t: number | string }>`select @@in_transaction as t`.execute(db);
  if (Number(rows[0]?.t) === 1) {
    await run(`savepoint ${SAVEPOINT}`);
    return savepoint;
  }
  await run("start transaction");
  return transaction;
}

async function runNode(db: AnyKysely, node: RootOperationNode): Promise<Row[]> {
  const compiled = db.getExecutor().compileQuery(node, createQueryId());
  return (await db.executeQuery<Row>(compiled)).rows.map((r) => ({ ...r }));
}

function selectOld(
  target: OperationNode,
  from: readonly OperationNode[],
  rest: Partial<SelectQueryNode>,
  dialect: DialectName,
): SelectQueryNode {
  const name = target.kind === "AliasNode"
    ? (target as unknown as { alias: { name: string } }).alias.name
    : (target as TableNode).table.identifier.name;
  const base = SelectQueryNode.createFrom([target, ...from]);
  return Object.freeze({
    ...base,
    ...rest,
    selections: Object.freeze([SelectionNode.createSelectAllFromTable(TableNode.create(name))]),
    ...(dialect === "sqlite" ? {} : { endModifiers: Object.freeze([SelectModifierNode.create("ForUpdate")]) }),
  });
}

function targetTableNode(target: OperationNode): TableNode {
  return (target.kind === "AliasNode" ? (target as unknown as { node: TableNode }).node : target) as TableNode;
}

async function selectByKeys(
  db: AnyKysely,
  target: TableNode,
  pk: readonly string[],
  keys: readonly Row[],
): Promise<Row[]> {
  if (keys.length === 0) return [];
  const schema = target.table.schema?.name;
  const scoped = schema === undefined ? db : db.withSchema(schema);
  const rows = await scoped.selectFrom(target.table.identifier.name).selectAll().where((eb) =>
    pk.length === 1
      ? eb(pk[0]!, "in", keys.map((k) => k[pk[0]!]))
      : eb.or(keys.map((k) => eb.and(pk.map((c) => eb(c, "=", k[c])))))
  ).execute();
  return rows.map((r) => ({ ...r }));
}

const keyString = (pk: readonly string[], row: Row): string => pk.map((c) => String(row[c])).join("\u0000");

async function auditUpdate(
  execution: WriteExecution,
  node: UpdateQueryNode,
  pk: readonly string[],
  dialect: DialectName,
  next: (query?: CompiledQuery) => Promise<QueryResult<unknown>>,
): Promise<{ entries: Entry[]; result: QueryResult<unknown> }> {
  const target = node.table?.kind === "ListNode"
    ? (node.table as unknown as { items: readonly OperationNode[] }).items[0]!
    : node.table!;
  const oldRows = await runNode(
    execution.rawDb,
    selectOld(target, node.from?.froms ?? [], clausesOf(node), dialect),
  );
  const result = await next();
  if (oldRows.length === 0) return { entries: [], result };
  // A SET of the primary key moves the row: find it by its new key.
  const setKey: Row = {};
  for (const u of node.updates ?? []) {
    const column = (u.column as { column?: { name: string } }).column?.name;
    if (column !== undefined && pk.includes(column) && u.value.kind === "ValueNode") {
      setKey[column] = (u.value as unknown as { value: unknown }).value;
    }
  }
  const newKeys = oldRows.map((r) => ({ ...r, ...setKey }));
  const newRows = await selectByKeys(execution.rawDb, targetTableNode(target), pk, newKeys);
  const byKey = new Map(newRows.map((r) => [keyString(pk, r), r]));
  return {
    entries: oldRows.map((old, i) => ({ operation: "update", old, new: byKey.get(keyString(pk, newKeys[i]!)) })),
    result,
  };
}

/** The clauses of an UPDATE or DELETE that decide which rows it touches. */
function clausesOf(node: UpdateQueryNode | DeleteQueryNode) {
  return {
    ...(node.joins === undefined ? {} : { joins: node.joins }),
    ...(node.where === undefined ? {} : { where: node.where }),
    ...(node.with === undefined ? {} : { with: node.with }),
    ...(node.orderBy === undefined ? {} : { orderBy: node.orderBy }),
    ...(node.limit === undefined ? {} : { limit: node.limit }),
  };
}

async function auditDelete(
  execution: WriteExecution,
  node: DeleteQueryNode,
  dialect: DialectName,
  next: (query?: CompiledQuery) => Promise<QueryResult<unknown>>,
): Promise<{ entries: Entry[]; result: QueryResult<unknown> }> {
  const [target, ...others] = node.from.froms;
  const oldRows = await runNode(
    execution.rawDb,
    selectOld(target!, [...others, ...(node.using?.tables ?? [])], clausesOf(node), dialect),
  );
  const result = await next();
  return { entries: oldRows.map((old) => ({ operation: "delete", old, new: undefined })), result };
}

/** The key values an INSERT's VALUES give, per row (for upserts). */
function insertedKeys(node: InsertQueryNode, pk: readonly string[]): Row[] {
  const columns = (node.columns ?? []).map((c) => c.column.name);
  if (node.values?.kind !== "ValuesNode" || !pk.every((c) => columns.includes(c))) return [];
  return (node.values as ValuesNode).values.map((row) => {
    const out: Row = {};
    for (const c of pk) {
      const i = columns.indexOf(c);
      out[c] = row.kind === "PrimitiveValueListNode"
        ? (row as PrimitiveValueListNode).values[i]
        : ((row as ValueListNode).values[i] as unknown as { value?: unknown })?.value;
    }
    return out;
  }).filter((k) => pk.every((c) => k[c] !== undefined));
}

async function auditInsert(
  execution: WriteExecution,
  node: InsertQueryNode,
  pk: readonly string[],
  dialect: DialectName,
  next: (query?: CompiledQuery) => Promise<QueryResult<unknown>>,
): Promise<{ entries: Entry[]; result: QueryResult<unknown> }> {
  const upsert = node.onConflict !== undefined || node.onDuplicateKey !== undefined || node.ignore === true;
  let existing = new Map<string, Row>();
  if (upsert) {
    const keys = insertedKeys(node, pk);
    const oldRows = await selectByKeys(execution.rawDb, targetTableNode(node.into!), pk, keys);
    existing = new Map(oldRows.map((r) => [keyString(pk, r), r]));
  }
  const userSelections = node.returning?.selections;
  const returning = ReturningNode.create([SelectionNode.createSelectAll(), ...(userSelections ?? [])]);
  const amended: InsertQueryNode = Object.freeze({ ...node, returning });
  const compiled = execution.rawDb.getExecutor().compileQuery(amended, execution.query.queryId);
  const raw = await next(compiled);
  const rows = raw.rows.map((r) => ({ ...(r as Row) }));
  const entries: Entry[] = [];
  for (const row of rows) {
    const old = existing.get(keyString(pk, row));
    // ON CONFLICT DO NOTHING / INSERT IGNORE return the untouched row on MariaDB; skip it when unchanged.
    if (
      old !== undefined && toJson(old) === toJson(row) && node.onConflict?.updates === undefined &&
      node.onDuplicateKey === undefined
    ) continue;
    entries.push({ operation: old === undefined ? "insert" : "update", old, new: row });
  }
  const result = userRows(raw, rows, userSelections, pk, dialect);
  return { entries, result };
}

/** The result the caller's statement would have given without the added `RETURNING *`. */
function userRows(
  raw: QueryResult<unknown>,
  rows: Row[],
  selections: readonly SelectionNode[] | undefined,
  pk: readonly string[],
  dialect: DialectName,
): QueryResult<unknown> {
  const numAffectedRows = raw.numAffectedRows ?? BigInt(rows.length);
  let insertId = raw.insertId;
  if (insertId === undefined && pk.length === 1 && rows.length > 0) {
    const value = (dialect === "mysql" ? rows[0]! : rows[rows.length - 1]!)[pk[0]!];
    if (typeof value === "number" || typeof value === "bigint") insertId = BigInt(value);
  }
  const base = { numAffectedRows, ...(insertId === undefined ? {} : { insertId }) };
  if (selections === undefined) return { ...base, rows: [] };
  const names: string[] = [];
  for (const s of selections) {
    const name = outputName(s.selection);
    if (name === "*") return { ...base, rows: raw.rows };
    if (name === undefined) return { ...base, rows: raw.rows };
    names.push(name);
  }
  return {
    ...base,
    rows: (raw.rows as Row[]).map((r) => Object.fromEntries(names.map((n) => [n, r[n]]))),
  };
}

function outputName(node: OperationNode): string | undefined {
  switch (node.kind) {
    case "AliasNode":
      return (node as unknown as { alias: { name: string } }).alias.name;
    case "ColumnNode":
      return (node as unknown as { column: { name: string } }).column.name;
    case "SelectAllNode":
      return "*";
    case "ReferenceNode":
      return outputName((node as unknown as { column: OperationNode }).column);
    default:
      return undefined;
  }
}

function changedFields(old: Row | undefined, now: Row | undefined): string[] {
  if (old === undefined) return Object.keys(now ?? {});
  if (now === undefined) return Object.keys(old);
  return Object.keys(now).filter((k) => toJson(old[k]) !== toJson(now[k]));
}

const CHUNK = 2000;

async function writeEntries(
  db: AnyKysely,
  auditTable: string,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
  entries: readonly Entry[],
  context: { actor: string | null; tenant: string | number | null; metadata: object | null; at: Date },
  captureOld: boolean,
  captureNew: boolean,
): Promise<void> {
  if (entries.length === 0) return;
  const at = dialect === "sqlite" ? context.at.toISOString() : context.at;
  const values = entries.map((e) => ({
    table_name: table,
    entity_id: entityIdOf(pk, (e.new ?? e.old)!),
    operation: e.operation,
    old_values: captureOld ? toJson(e.old) : null,
    new_values: captureNew ? toJson(e.new) : null,
    changed_fields: toJson(changedFields(e.old, e.new)),
    actor: context.actor,
    tenant_id: context.tenant === null ? null : String(context.tenant),
    metadata: toJson(context.metadata ?? undefined),
    changed_at: at,
  }));
  for (let i = 0; i < values.length; i += CHUNK) {
    await db.insertInto(auditTable).values(values.slice(i, i + CHUNK)).execute();
  }
}
