/**
 * Capturing what a write changes: the rows before (read with row locks
 * before the write) and after (from `RETURNING`, or read after the write),
 * paired per row (private).
 */
import {
  AliasNode,
  AndNode,
  ColumnNode,
  type CompiledQuery,
  createQueryId,
  type DeleteQueryNode,
  IdentifierNode,
  type InsertQueryNode,
  type OperationNode,
  type QueryResult,
  ReferenceNode,
  ReturningNode,
  type RootOperationNode,
  SelectionNode,
  SelectModifierNode,
  SelectQueryNode,
  sql,
  TableNode,
  type UpdateQueryNode,
  WhereNode,
} from "kysely";
import type { AnyKysely, WriteExecution } from "../../executor/mod.ts";
import { type DialectName, LockTimeoutError, SerializationError } from "../../core/mod.ts";
import { UnauditableWriteError } from "./errors.ts";
import type { Entry } from "./_store.ts";
import { keyPart, keyString } from "./_keys.ts";
import { EXPRESSION, insertedRows, keyUpdates, referenceName, targetTableNode, updateTarget } from "./_targets.ts";
import { toJson } from "./_json.ts";

type Row = Record<string, unknown>;
type Next = (query?: CompiledQuery) => Promise<QueryResult<unknown>>;

/** What a write changed, its result for the caller, and what to run once the audit rows are written. */
export interface Capture {
  readonly entries: Entry[];
  readonly result: QueryResult<unknown>;
  /** Releases what the capture holds (MariaDB's upsert key locks); run after the audit rows, also on failure. */
  readonly release?: () => Promise<void>;
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
  extra: readonly SelectionNode[] = [],
): SelectQueryNode {
  const base = SelectQueryNode.createFrom([target, ...from]);
  return Object.freeze({
    ...base,
    ...rest,
    selections: Object.freeze([
      SelectionNode.createSelectAllFromTable(TableNode.create(referenceName(target))),
      ...extra,
    ]),
    ...(dialect === "sqlite" ? {} : { endModifiers: Object.freeze([SelectModifierNode.create("ForUpdate")]) }),
  });
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

/** One row per key: a join can match a target row more than once, the write changes it once. */
function distinct(pk: readonly string[], rows: readonly Row[]): Row[] {
  const seen = new Set<string>();
  return rows.filter((row) => {
    const key = keyString(pk, row);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Refuses rows without the key columns: their history would be merged under one `entity_id`. */
function checkKeyed(operation: string, table: string, pk: readonly string[], rows: readonly Row[]): void {
  const row = rows[0];
  if (row === undefined) return;
  const missing = pk.find((c) => !Object.hasOwn(row, c));
  if (missing === undefined) return;
  throw new UnauditableWriteError(
    operation,
    table,
    `it has no column '${missing}' to key its history by; name its key columns in the 'primaryKey' option`,
  );
}

/**
 * The write restricted to the rows read and locked before it (PostgreSQL,
 * MariaDB/MySQL): under READ COMMITTED a row that starts matching between
 * the locking read and the write is left alone, as if the write had run at
 * the read, so the write changes exactly the rows audited. SQLite has one
 * writer at a time, so nothing can start matching in between there.
 */
function restricted<N extends UpdateQueryNode | DeleteQueryNode>(
  node: N,
  target: OperationNode,
  pk: readonly string[],
  rows: readonly Row[],
  dialect: DialectName,
): N {
  if (dialect === "sqlite") return node;
  const name = referenceName(target);
  const refs = pk.map((c) => sql.ref(`${name}.${c}`));
  const predicate = rows.length === 0
    ? sql`1 = 0`
    : pk.length === 1 && dialect === "postgres"
    ? sql`${refs[0]} = any(${rows.map((r) => r[pk[0]!])})`
    : pk.length === 1
    ? sql`${refs[0]} in (${sql.join(rows.map((r) => r[pk[0]!]))})`
    : sql`(${sql.join(refs)}) in (${sql.join(rows.map((r) => sql`(${sql.join(pk.map((c) => r[c]))})`))})`;
  const filter = predicate.toOperationNode();
  const where = node.where === undefined
    ? WhereNode.create(filter)
    : WhereNode.create(AndNode.create(node.where.where, filter));
  return Object.freeze({ ...node, where }) as unknown as N;
}

/**
 * MariaDB/MySQL: old rows locked and read before, the write restricted to
 * them, new rows read by key after (a primary key set to a value moves the
 * row to that key; one set to an expression was refused before).
 */
export async function auditUpdateAfter(
  execution: WriteExecution,
  node: UpdateQueryNode,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
  next: Next,
): Promise<Capture> {
  const target = updateTarget(node);
  const oldRows = distinct(
    pk,
    await runNode(execution.rawDb, selectOld(target, node.from?.froms ?? [], clausesOf(node), dialect)),
  );
  checkKeyed("update", table, pk, oldRows);
  const amended = restricted(node, target, pk, oldRows, dialect);
  const result = await next(execution.rawDb.getExecutor().compileQuery(amended, execution.query.queryId));
  if (oldRows.length === 0) return { entries: [], result };
  const { values } = keyUpdates(node, pk);
  const newKeys = oldRows.map((r) => ({ ...r, ...values }));
  const newRows = await selectByKeys(execution.rawDb, targetTableNode(target), pk, newKeys);
  const byKey = new Map(newRows.map((r) => [keyString(pk, r), r]));
  return {
    entries: oldRows.map((old, i) => ({ operation: "update", old, new: byKey.get(keyString(pk, newKeys[i]!)) })),
    result,
  };
}

const NEW_KEY = "__kysera_audit_key_";
/** The private alias prefix of the caller's own RETURNING outputs on an audited INSERT. */
const CALLER = "__kysera_audit_out_";
const RETURNED = "__kysera_audit_";
/** PostgreSQL: whether an upsert's returned row was updated (its `xmax` is set), not inserted. */
const UPDATED = "__kysera_audit_updated";

/** A selection without its alias. */
function unaliased(node: OperationNode): OperationNode {
  return node.kind === "AliasNode" ? (node as AliasNode).node : node;
}

/**
 * PostgreSQL and SQLite: old rows locked and read before (with the new
 * value of every primary key column the SET computes, evaluated on the old
 * row as the UPDATE does), the write restricted to them (PostgreSQL), new
 * rows from a `RETURNING` added to the UPDATE under private aliases (so the
 * caller's own `RETURNING`, whatever it names its outputs, is untouched),
 * paired with the old rows by their new keys.
 */
export async function auditUpdateReturning(
  execution: WriteExecution,
  node: UpdateQueryNode,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
  next: Next,
): Promise<Capture> {
  const target = updateTarget(node);
  const { values, expressions } = keyUpdates(node, pk);
  const extra = expressions.map(([, expression], i) =>
    SelectionNode.create(AliasNode.create(expression, IdentifierNode.create(`${NEW_KEY}${i}`)))
  );
  const selected = distinct(
    pk,
    await runNode(execution.rawDb, selectOld(target, node.from?.froms ?? [], clausesOf(node), dialect, extra)),
  );
  checkKeyed("update", table, pk, selected);
  if (selected.length === 0) {
    const none = restricted(node, target, pk, [], dialect);
    return {
      entries: [],
      result: await next(execution.rawDb.getExecutor().compileQuery(none, execution.query.queryId)),
    };
  }
  const oldRows: Row[] = [];
  const newKeys: Row[] = [];
  for (const row of selected) {
    const key: Row = { ...row, ...values };
    expressions.forEach(([column], i) => {
      key[column] = row[`${NEW_KEY}${i}`];
      delete row[`${NEW_KEY}${i}`];
    });
    oldRows.push(row);
    newKeys.push(key);
  }
  // SQLite's RETURNING names the target's columns unqualified (it cannot use an alias).
  const owner = dialect === "sqlite" ? undefined : TableNode.create(referenceName(target));
  const columns = Object.keys(oldRows[0]!);
  const userSelections = node.returning?.selections;
  const returning = ReturningNode.create([
    ...(userSelections ?? []),
    ...columns.map((c) =>
      SelectionNode.create(
        AliasNode.create(
          owner === undefined ? ColumnNode.create(c) : ReferenceNode.create(ColumnNode.create(c), owner),
          IdentifierNode.create(`${RETURNED}${c}`),
        ),
      )
    ),
  ]);
  const amended: UpdateQueryNode = Object.freeze({ ...restricted(node, target, pk, oldRows, dialect), returning });
  const raw = await next(execution.rawDb.getExecutor().compileQuery(amended, execution.query.queryId));
  const newRows: Row[] = [];
  const userRows: Row[] = [];
  for (const r of raw.rows as Row[]) {
    const mine: Row = {};
    const theirs: Row = {};
    for (const [name, value] of Object.entries(r)) {
      if (name.startsWith(RETURNED)) mine[name.slice(RETURNED.length)] = value;
      else theirs[name] = value;
    }
    newRows.push(mine);
    userRows.push(theirs);
  }
  const byKey = new Map(newRows.map((r) => [keyString(pk, r), r]));
  const paired = new Set<Row>();
  const entries: Entry[] = oldRows.map((old, i) => {
    let now = byKey.get(keyString(pk, newKeys[i]!));
    if (now === undefined && oldRows.length === 1 && newRows.length === 1) now = newRows[0];
    if (now === undefined) {
      // Rolled back with the write by the caller's scope.
      throw new UnauditableWriteError(
        "update",
        table,
        "the updated rows could not be matched to the rows read before (a primary key set by a volatile expression?)",
      );
    }
    paired.add(now);
    return { operation: "update", old, new: now };
  });
  if (newRows.some((now) => !paired.has(now))) {
    throw new UnauditableWriteError("update", table, "it changed rows that were not read before it");
  }
  const numAffectedRows = raw.numAffectedRows ?? BigInt(raw.rows.length);
  return {
    entries,
    result: {
      numAffectedRows,
      ...(raw.numChangedRows === undefined ? {} : { numChangedRows: raw.numChangedRows }),
      rows: userSelections === undefined ? [] : userRows,
    },
  };
}

/** DELETE: old rows locked and read before, the write restricted to them. */
export async function auditDelete(
  execution: WriteExecution,
  node: DeleteQueryNode,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
  next: Next,
): Promise<Capture> {
  const [target, ...others] = node.from.froms;
  const oldRows = distinct(
    pk,
    await runNode(
      execution.rawDb,
      selectOld(target!, [...others, ...(node.using?.tables ?? [])], clausesOf(node), dialect),
    ),
  );
  checkKeyed("delete", table, pk, oldRows);
  const amended = restricted(node, target!, pk, oldRows, dialect);
  const result = await next(execution.rawDb.getExecutor().compileQuery(amended, execution.query.queryId));
  return { entries: oldRows.map((old) => ({ operation: "delete", old, new: undefined })), result };
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

/**
 * The unique keys (column lists) of a table, read from the catalog: the
 * keys an `ON DUPLICATE KEY UPDATE` (or an `ON CONFLICT` without columns)
 * may conflict on. Read for each upsert, so a unique key added by a
 * migration counts at once.
 */
async function uniqueKeys(
  db: AnyKysely,
  target: TableNode,
  dialect: DialectName,
  constraint?: string,
): Promise<string[][]> {
  const table = target.table.identifier.name;
  const schema = target.table.schema?.name;
  let rows: { name: unknown; col: unknown }[];
  if (dialect === "postgres") {
    const relation = schema === undefined
      ? sql`to_regclass(quote_ident(${table}))`
      : sql`to_regclass(quote_ident(${schema}) || '.' || quote_ident(${table}))`;
    const which = constraint === undefined
      ? sql`i.indisunique and i.indexprs is null`
      : sql`i.indexrelid = (select c.conindid from pg_catalog.pg_constraint c where c.conrelid = ${relation} and c.conname = ${constraint})`;
    rows = (await sql<{ name: unknown; col: unknown }>`select i.indexrelid::text as name, a.attname as col
      from pg_catalog.pg_index i
      cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = ${relation} and ${which}
      order by i.indexrelid, k.ord`.execute(db)).rows;
  } else if (dialect === "mysql") {
    rows = (await sql<{ name: unknown; col: unknown }>`select index_name as name, column_name as col
      from information_schema.statistics
      where table_schema = ${schema === undefined ? sql`database()` : schema} and table_name = ${table}
        and non_unique = 0 and column_name is not null
      order by index_name, seq_in_index`.execute(db)).rows;
  } else {
    rows = (await sql<{ name: unknown; col: unknown }>`select il.name as name, ii.name as col
      from pragma_index_list(${table}) il, pragma_index_info(il.name) ii
      where il."unique" = 1 order by il.name, ii.seqno`.execute(db)).rows;
  }
  const keys = new Map<string, string[]>();
  for (const row of rows) {
    const name = String(row.name);
    if (!keys.has(name)) keys.set(name, []);
    keys.get(name)!.push(String(row.col));
  }
  return [...keys.values()];
}

/** The column lists an upsert may conflict on (and so the rows it may update). */
async function conflictKeys(
  db: AnyKysely,
  node: InsertQueryNode,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
): Promise<string[][]> {
  const target = targetTableNode(node.into!);
  const conflict = node.onConflict;
  if (conflict?.indexExpression !== undefined) {
    throw new UnauditableWriteError(
      "insert",
      table,
      "an upsert conflicting on an index expression cannot be read before it; name the conflict columns",
    );
  }
  if (conflict?.columns !== undefined && conflict.columns.length > 0) {
    return [conflict.columns.map((c) => c.column.name)];
  }
  if (conflict?.constraint !== undefined) {
    return await uniqueKeys(db, target, dialect, conflict.constraint.name);
  }
  // ON DUPLICATE KEY UPDATE, or ON CONFLICT DO UPDATE without a target: any unique key.
  const keys = await uniqueKeys(db, target, dialect);
  if (!keys.some((k) => k.length === pk.length && k.every((c) => pk.includes(c)))) keys.push([...pk]);
  return keys;
}

/** A 64-bit FNV-1a hash of a text, as a signed decimal (PostgreSQL `bigint`). */
function hash64(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, h);
}

/**
 * Serialises audited upserts of the same keys, so the locking read before
 * an upsert cannot miss a row a concurrent upsert is inserting (a row lock
 * cannot be taken on a row that does not exist yet). PostgreSQL: advisory
 * locks held to the end of the transaction (a row inserted by an
 * uncommitted transaction is invisible to the read). MariaDB/MySQL:
 * `GET_LOCK` until the write is done (released by `release`), since a
 * locking read there waits for a row inserted by an uncommitted
 * transaction. SQLite has one writer at a time.
 */
async function lockKeys(
  db: AnyKysely,
  dialect: DialectName,
  table: string,
  keys: readonly string[],
): Promise<(() => Promise<void>) | undefined> {
  if (keys.length === 0 || dialect === "sqlite") return undefined;
  const ids = [...new Set(keys.map((k) => hash64(`${table}\u0000${k}`)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (dialect === "postgres") {
    await sql`select pg_advisory_xact_lock(k) from unnest(${ids.map(String)}::int8[]) as k`.execute(db);
    return undefined;
  }
  const names = ids.map((id) => `kysera_audit_${BigInt.asUintN(64, id).toString(16)}`);
  const taken =
    (await sql<Row>`select ${
      sql.join(names.map((n, i) => sql`get_lock(${n}, @@innodb_lock_wait_timeout) as ${sql.ref(`l${i}`)}`))
    }`.execute(db)).rows[0] ?? {};
  const release = async () => {
    await sql`select ${sql.join(names.map((n, i) => sql`release_lock(${n}) as ${sql.ref(`l${i}`)}`))}`.execute(db);
  };
  if (names.some((_, i) => Number(taken[`l${i}`]) !== 1)) {
    await release().catch(() => {});
    throw new LockTimeoutError(`Cannot audit an upsert of '${table}': its key lock was not granted in time`, {
      dialect,
      table,
    });
  }
  return release;
}

/**
 * An upsert's existing rows, read with row locks before it: the rows whose
 * values on a conflict key equal a VALUES row's (the arbiter columns of
 * `ON CONFLICT (...)`, every unique key for `ON DUPLICATE KEY UPDATE`).
 */
async function upsertOldRows(
  execution: WriteExecution,
  node: InsertQueryNode,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
): Promise<{ rows: Row[]; keys: string[][]; release: (() => Promise<void>) | undefined }> {
  const values = insertedRows(node);
  if (values === undefined) {
    throw new UnauditableWriteError(
      "insert",
      table,
      "the rows an upsert from a SELECT updates cannot be read before it; upsert from VALUES",
    );
  }
  const keys = await conflictKeys(execution.rawDb, node, table, pk, dialect);
  const probes: Row[][] = keys.map(() => []);
  const names: string[] = [];
  for (const row of values) {
    keys.forEach((key, k) => {
      if (!key.every((c) => row[c] !== undefined && row[c] !== null)) return;
      if (key.some((c) => row[c] === EXPRESSION)) {
        throw new UnauditableWriteError(
          "insert",
          table,
          `the rows an upsert updates cannot be read before it when a key column is set by SQL ('${
            key.find((c) => row[c] === EXPRESSION)
          }'); give its value`,
        );
      }
      probes[k]!.push(row);
      names.push(`${key.join(",")}\u0000${key.map((c) => keyPart(row[c])).join("\u0000")}`);
    });
  }
  if (names.length === 0) return { rows: [], keys, release: undefined };
  const release = await lockKeys(execution.rawDb, dialect, table, names);
  try {
    const target = node.into!;
    const where = sql.join(
      keys.flatMap((key, k) =>
        probes[k]!.length === 0 ? [] : [
          key.length === 1
            ? sql`${sql.ref(key[0]!)} in (${sql.join(probes[k]!.map((r) => r[key[0]!]))})`
            : sql`(${sql.join(key.map((c) => sql.ref(c)))}) in (${
              sql.join(probes[k]!.map((r) => sql`(${sql.join(key.map((c) => r[c]))})`))
            })`,
        ]
      ),
      sql` or `,
    );
    const select: SelectQueryNode = Object.freeze({
      ...SelectQueryNode.createFrom([target]),
      selections: Object.freeze([SelectionNode.createSelectAll()]),
      where: WhereNode.create(where.toOperationNode()),
      ...(dialect === "sqlite" ? {} : { endModifiers: Object.freeze([SelectModifierNode.create("ForUpdate")]) }),
    });
    return { rows: await runNode(execution.rawDb, select), keys, release };
  } catch (error) {
    await release?.().catch(() => {});
    throw error;
  }
}

/**
 * INSERT: new rows from a `RETURNING *` added to it. An upsert that may
 * update (`ON CONFLICT ... DO UPDATE`, `ON DUPLICATE KEY UPDATE`) first
 * locks its keys and reads the rows it may update, so each returned row is
 * recorded as the update of the row read before (on whichever unique key it
 * conflicted) or as an insert.
 */
export async function auditInsert(
  execution: WriteExecution,
  node: InsertQueryNode,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
  next: Next,
): Promise<Capture> {
  const updates = node.onConflict?.updates !== undefined || node.onDuplicateKey !== undefined;
  const before = updates ? await upsertOldRows(execution, node, table, pk, dialect) : undefined;
  try {
    const capture = await insertAndPair(execution, node, table, pk, dialect, next, before);
    return before?.release === undefined ? capture : { ...capture, release: before.release };
  } catch (error) {
    await before?.release?.().catch(() => {});
    throw error;
  }
}

async function insertAndPair(
  execution: WriteExecution,
  node: InsertQueryNode,
  table: string,
  pk: readonly string[],
  dialect: DialectName,
  next: Next,
  before: { rows: Row[]; keys: string[][] } | undefined,
): Promise<Capture> {
  const existing = new Map((before?.rows ?? []).map((r) => [keyString(pk, r), r]));
  const userSelections = node.returning?.selections;
  // The caller's outputs go under private aliases, so one named like a
  // column (`returning(sql\`upper(title)\`.as("title"))`) cannot stand in
  // for the column in the audited row.
  const names = userSelections?.map((s) => outputName(s.selection));
  const renamed = names !== undefined && names.every((n) => n !== undefined && n !== "*");
  const detect = before !== undefined && dialect === "postgres";
  const returning = ReturningNode.create([
    SelectionNode.createSelectAll(),
    ...(detect
      ? [SelectionNode.create(
        sql`(${sql.ref(`${referenceName(node.into!)}.xmax`)}::text <> '0')`.as(UPDATED).toOperationNode(),
      )]
      : []),
    ...(!renamed
      // The caller's `*` is the `*` above: sent twice, every column would come back twice.
      ? (userSelections ?? []).filter((s) => !selectsAll(s.selection))
      : userSelections!.map((s, i) =>
        SelectionNode.create(AliasNode.create(unaliased(s.selection), IdentifierNode.create(`${CALLER}${i}`)))
      )),
  ]);
  const amended: InsertQueryNode = Object.freeze({ ...node, returning });
  const compiled = execution.rawDb.getExecutor().compileQuery(amended, execution.query.queryId);
  const returned = await next(compiled);
  const callerRows: Row[] = [];
  const updated = new Set<Row>();
  const rows = returned.rows.map((r) => {
    const row = { ...(r as Row) };
    if (detect) {
      if (row[UPDATED] === true) updated.add(row);
      delete row[UPDATED];
    }
    if (renamed) {
      callerRows.push(Object.fromEntries(names.map((name, i) => [name, row[`${CALLER}${i}`]])));
      names.forEach((_, i) => delete row[`${CALLER}${i}`]);
    }
    return row;
  });
  checkKeyed("insert", table, pk, rows);
  const raw = renamed ? { ...returned, rows: callerRows } : detect
    ? {
      ...returned,
      rows: (returned.rows as Row[]).map((r) => Object.fromEntries(Object.entries(r).filter(([n]) => n !== UPDATED))),
    }
    : returned;
  const paired = new Set<Row>();
  const entries: Entry[] = rows.map((row) => {
    let old = existing.get(keyString(pk, row));
    if (old === undefined && before !== undefined) {
      // The upsert set a key column: the row it updated is the one read on the conflict key.
      old = before.rows.find((o) =>
        !paired.has(o) &&
        before.keys.some((key) => key.every((c) => row[c] != null && toJson(o[c]) === toJson(row[c])))
      );
    }
    if (old !== undefined) paired.add(old);
    else if (updated.has(row)) {
      // PostgreSQL, READ COMMITTED: another transaction's INSERT (not an audited upsert, which takes the
      // key lock) committed the key after the locking read; its old values are unknown. Rolled back.
      throw new SerializationError(
        `Cannot audit an upsert of '${table}': a concurrent INSERT committed the row it updated after the read before it; retry the write`,
        { dialect, table },
      );
    }
    return { operation: old === undefined ? "insert" : "update", old, new: row };
  });
  return { entries, result: insertResult(raw, rows, userSelections, pk, dialect) };
}

/** The result the caller's INSERT would have given without the added `RETURNING *`. */
function insertResult(
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

/** Whether a RETURNING selection is `*` or `table.*`. */
function selectsAll(node: OperationNode): boolean {
  return node.kind === "SelectAllNode" ||
    (node.kind === "ReferenceNode" && (node as ReferenceNode).column.kind === "SelectAllNode");
}

function outputName(node: OperationNode): string | undefined {
  switch (node.kind) {
    case "AliasNode":
      return ((node as AliasNode).alias as unknown as { name: string }).name;
    case "ColumnNode":
      return (node as ColumnNode).column.name;
    case "SelectAllNode":
      return "*";
    case "ReferenceNode":
      return outputName((node as ReferenceNode).column);
    default:
      return undefined;
  }
}
