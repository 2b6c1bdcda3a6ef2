import { type ExpressionBuilder, type Kysely, sql } from "kysely";
import { type DialectName, UniqueConstraintError } from "../core/mod.ts";
import { allowRawSql, type KyseraPlugin } from "../executor/mod.ts";
import { transaction } from "../dal/mod.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";
import type { UpsertOptions } from "./repository.ts";
import { checkColumn, compileWhere, type WhereContext } from "./_where.ts";
import { byColumns, KeyIndex, MAX_PARAMETERS, slices } from "./_keys.ts";

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
type Values = Record<string, unknown>;
// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;

/** What every copy of one repository shares. */
export interface Shared {
  readonly table: string;
  readonly pk: readonly string[];
  readonly primaryKey: unknown;
  readonly single: boolean;
  readonly dialect: DialectName;
  readonly where: WhereContext;
  readonly create: StandardSchemaV1 | undefined;
  readonly update: StandardSchemaV1 | undefined;
  readonly output: StandardSchemaV1 | undefined;
  readonly mapRow: ((row: never) => unknown) | undefined;
  readonly plugins: readonly KyseraPlugin[];
  autoIncrement: { inc: number; mode: number } | undefined;
}

/** A group of rows that one statement may carry, with their input positions. */
interface Batch {
  readonly rows: Values[];
  readonly at: number[];
}

/**
 * How many rows one statement built by `build` may carry under the dialect's
 * parameter limit, measured on the compiled query (so the columns plugins
 * add, such as timestamps or a tenant column, count): the parameters of a
 * one-row and a two-row statement give the cost per row and the fixed cost.
 */
function rowsPerStatement(
  s: Shared,
  db: AnyDb,
  sample: Values,
  build: (db: AnyDb, rows: Values[]) => {
    compile(): { parameters: readonly unknown[] };
  },
): number {
  const limit = MAX_PARAMETERS[s.dialect];
  let one: number;
  let two: number;
  try {
    one = build(db, [sample]).compile().parameters.length;
    two = build(db, [sample, sample]).compile().parameters.length;
  } catch {
    // The statement cannot compile (a plugin refuses it): it will fail the
    // same way when sent; any size will do.
    return Math.max(1, Math.floor(limit / Math.max(1, Object.keys(sample).length)));
  }
  const perRow = Math.max(1, two - one);
  const fixed = Math.max(0, one - perRow);
  return Math.max(1, Math.floor((limit - fixed) / perRow));
}

/** Splits groups of rows into statements under the parameter limit. */
function batches(
  s: Shared,
  db: AnyDb,
  groups: readonly Batch[],
  build: (db: AnyDb, rows: Values[], group: Batch) => { compile(): { parameters: readonly unknown[] } },
): Batch[] {
  const out: Batch[] = [];
  for (const group of groups) {
    if (group.rows.length === 1) {
      out.push(group);
      continue;
    }
    const size = rowsPerStatement(s, db, group.rows[0]!, (k, rows) => build(k, rows, group));
    const at = slices(group.at, size);
    slices(group.rows, size).forEach((rows, i) => out.push({ rows, at: at[i]! }));
  }
  return out;
}

const all = (rows: Values[]): Batch => ({ rows, at: rows.map((_, i) => i) });

/**
 * The rows with these keys, in the order of `keys` (missing ones left out),
 * matched as the database compares them (see `KeyIndex`). A single-column
 * key of any length goes in one query (`_where.ts` keeps long lists under
 * the parameter limit); composite keys go in queries under the limit.
 */
export async function selectByKeys(
  s: Shared,
  db: AnyDb,
  keys: readonly Values[],
  columns: readonly string[],
): Promise<Values[]> {
  if (keys.length === 0) return [];
  const rows: Values[] = [];
  if (columns.length === 1) {
    const c = columns[0]!;
    const where = { [c]: { $in: [...new Set(keys.map((k) => k[c]))] } };
    rows.push(
      ...await db.selectFrom(s.table).selectAll().where((eb: AnyEB) => compileWhere(eb, where, s.where)!)
        .execute() as Values[],
    );
  } else {
    for (const part of slices(keys, MAX_PARAMETERS[s.dialect] / columns.length)) {
      rows.push(
        ...await db.selectFrom(s.table).selectAll()
          .where((eb: AnyEB) => eb.or(part.map((k) => eb.and(columns.map((c) => eb(c, "=", k[c]))))))
          .execute() as Values[],
      );
    }
  }
  const index = new KeyIndex(rows, columns, s.dialect);
  const out: Values[] = [];
  for (const k of keys) {
    const row = index.find(k);
    if (row !== undefined) out.push(row);
  }
  return out;
}

async function autoIncrement(s: Shared, db: AnyDb): Promise<{ inc: number; mode: number }> {
  if (s.autoIncrement !== undefined) return s.autoIncrement;
  const result = await allowRawSql(() =>
    sql<{ inc: unknown; mode: unknown }>`select @@auto_increment_increment as inc, @@innodb_autoinc_lock_mode as mode`
      .execute(db)
  );
  const row = result.rows[0];
  const info = { inc: Number(row?.inc ?? 1), mode: Number(row?.mode ?? 2) };
  s.autoIncrement = info;
  return info;
}

/** Inserts and reads back without RETURNING (MySQL/MariaDB), inside one transaction (a savepoint in the caller's). */
function insertReadBack(s: Shared, db: AnyDb, rows: Values[]): Promise<Values[]> {
  const build = (k: AnyDb, chunk: Values[]) => k.insertInto(s.table).values(chunk);
  return transaction(db, async ({ db: trx }) => {
    if (rows.every((r) => s.pk.every((c) => r[c] !== undefined))) {
      for (const chunk of batches(s, trx, [all(rows)], build)) await build(trx, chunk.rows).execute();
      return await selectByKeys(s, trx, rows, s.pk);
    }
    if (s.pk.length !== 1) {
      throw new TypeError(
        `Cannot create a row in '${s.table}' on MySQL: every column of the composite primary key must be given`,
      );
    }
    const column = s.pk[0]!;
    const { inc, mode } = await autoIncrement(s, trx);
    const keys: Values[] = [];
    // With innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT takes
    // consecutive ids (step auto_increment_increment) starting at insertId;
    // mode 2 interleaves concurrent inserts, so rows go one by one there.
    const chunks = mode === 2 ? rows.map((r) => [r]) : batches(s, trx, [all(rows)], build).map((b) => b.rows);
    for (const chunk of chunks) {
      const result = await build(trx, chunk).executeTakeFirstOrThrow();
      const first = Number(result.insertId);
      if (!(first > 0)) {
        throw new TypeError(`Cannot read back the row created in '${s.table}': MySQL returned no insert id`);
      }
      chunk.forEach((row, i) => keys.push({ [column]: row[column] ?? first + i * inc }));
    }
    return await selectByKeys(s, trx, keys, s.pk);
  });
}

/**
 * Inserts rows (their `undefined` values already dropped) and returns them
 * as stored, in input order. SQLite writes `NULL` where a multi-row VALUES
 * leaves a column out (it has no `DEFAULT` there), so on SQLite rows go in
 * one statement per set of given columns. Several statements run in one
 * transaction, or a savepoint inside the caller's: all rows or none.
 */
export async function insertRows(s: Shared, db: AnyDb, rows: Values[]): Promise<Values[]> {
  if (s.dialect === "mysql") return await insertReadBack(s, db, rows);
  const build = (k: AnyDb, chunk: Values[]) => {
    const q = k.insertInto(s.table).values(chunk);
    return s.dialect === "mssql" ? q.outputAll("inserted") : q.returningAll();
  };
  const groups = s.dialect === "sqlite" ? byColumns(rows) : [all(rows)];
  const statements = batches(s, db, groups, build);
  if (statements.length === 1) return await build(db, rows).execute() as Values[];
  return await transaction(db, async ({ db: trx }) => {
    const out: Values[] = new Array(rows.length);
    for (const statement of statements) {
      const stored = await build(trx, statement.rows).execute() as Values[];
      stored.forEach((row, i) => out[statement.at[i]!] = row);
    }
    return out;
  });
}

/** The columns a group's conflict updates: those asked for (or all but the key) that the group writes. */
function updateColumns(
  group: { columns: string[] },
  conflict: readonly string[],
  asked: readonly string[] | undefined,
) {
  const given = (asked ?? group.columns.filter((c) => !conflict.includes(c))).filter((c) => group.columns.includes(c));
  // Nothing to update: set a key column to itself, so the row still comes back.
  return given.length > 0 ? given : [conflict[0]!];
}

function upsertStatement(s: Shared, k: AnyDb, rows: Values[], conflict: readonly string[], update: string[]) {
  switch (s.dialect) {
    case "postgres":
    case "sqlite":
      return k.insertInto(s.table).values(rows)
        .onConflict((oc) =>
          oc.columns(conflict as string[]).doUpdateSet((eb) =>
            Object.fromEntries(update.map((c) => [c, eb.ref(`excluded.${c}`)]))
          )
        )
        .returningAll();
    case "mysql":
      return k.insertInto(s.table).values(rows)
        .onDuplicateKeyUpdate(Object.fromEntries(update.map((c) => [c, sql`values(${sql.ref(c)})`])));
    case "mssql": {
      const columns = Object.keys(rows[0]!);
      const source = sql`(values ${sql.join(rows.map((r) => sql`(${sql.join(columns.map((c) => r[c] ?? null))})`))})`
        .as<"source">(sql`source(${sql.join(columns.map((c) => sql.ref(c)))})`);
      return k.mergeInto(`${s.table} as target`)
        .using(source, (join) => {
          let on = join.onRef(`target.${conflict[0]!}`, "=", `source.${conflict[0]!}`);
          for (const c of conflict.slice(1)) on = on.onRef(`target.${c}`, "=", `source.${c}`);
          return on;
        })
        .whenMatched().thenUpdateSet((eb: AnyEB) => Object.fromEntries(update.map((c) => [c, eb.ref(`source.${c}`)])))
        .whenNotMatched().thenInsertValues((eb: AnyEB) =>
          Object.fromEntries(columns.map((c) => [c, eb.ref(`source.${c}`)]))
        )
        .outputAll("inserted");
    }
  }
}

/**
 * Upserts rows (their `undefined` values already dropped) per dialect (ON
 * CONFLICT, ON DUPLICATE KEY UPDATE, MERGE) and returns them as stored, in
 * input order. Rows go in one statement per set of given columns, so a
 * conflict updates only the columns its row gave (never a column to the
 * default the INSERT would have written); several statements run in one
 * transaction. A row that comes back from no statement had its key taken
 * by a row the executor's plugins hide (another tenant's, a soft-deleted
 * one): that is refused as a conflict, and the transaction rolled back.
 */
export async function upsertRows(
  s: Shared,
  db: AnyDb,
  rows: Values[],
  options: UpsertOptions<Values> | undefined,
): Promise<Values[]> {
  const conflict = options?.conflict ?? s.pk;
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  for (const c of [...conflict, ...columns, ...options?.update ?? []]) checkColumn(c, s.where);
  for (const row of rows) {
    for (const c of conflict) {
      if (row[c] === undefined) {
        throw new TypeError(`Cannot upsert into '${s.table}': every row needs the conflict column '${c}'`);
      }
    }
  }
  const groups = byColumns(rows).map((g) => ({ ...g, update: updateColumns(g, conflict, options?.update) }));
  const run = async (k: AnyDb): Promise<Values[]> => {
    const out: (Values | undefined)[] = new Array(rows.length).fill(undefined);
    for (const group of groups) {
      const statements = batches(
        s,
        k,
        [group],
        (d, chunk) => upsertStatement(s, d, chunk, conflict, group.update) as never,
      );
      for (const statement of statements) {
        const q = upsertStatement(s, k, statement.rows, conflict, group.update);
        let stored: Values[];
        if (s.dialect === "mysql") {
          await q.execute();
          stored = await selectByKeys(s, k, statement.rows, conflict);
        } else {
          stored = await q.execute() as Values[];
        }
        const index = new KeyIndex(stored, conflict, s.dialect);
        statement.rows.forEach((row, i) => out[statement.at[i]!] = index.find(row));
      }
    }
    if (out.some((r) => r === undefined)) {
      throw new UniqueConstraintError(
        `Cannot upsert into '${s.table}': the key (${conflict.join(", ")}) belongs to a row out of scope`,
        { dialect: s.dialect, table: s.table, columns: conflict },
      );
    }
    return out as Values[];
  };
  // One statement that reads its rows back itself (RETURNING/OUTPUT) needs
  // no transaction; anything else runs in one.
  if (rows.length === 1 && s.dialect !== "mysql") return await run(db);
  return await transaction(db, ({ db: trx }) => run(trx));
}
