/**
 * What the audit plugin reads of a write's query tree, in the plugin's
 * terms, over the executor's shared readers (`executor/query_tree.ts`), so
 * that audit reads write targets, SET columns and INSERT rows exactly as the
 * row scopes and write hooks do (private).
 */
import type { ColumnUpdateNode, InsertQueryNode, OperationNode, RawNode, TableNode, UpdateQueryNode } from "kysely";
import {
  cteWrites,
  insertedRows as sharedInsertedRows,
  namedTable,
  operationOf,
  setColumn,
  setEntries,
  targetOf,
  updateTargets,
  writeTargets as sharedWriteTargets,
} from "../../executor/mod.ts";

type Row = Record<string, unknown>;

/** The operation a write statement is audited as (`replace` statements are refused before this), by node kind. */
export function writeOperation(node: OperationNode): string | undefined {
  const operation = operationOf(node);
  return operation === "select" ? undefined : operation;
}

/** The name a target item is referred to by: its alias, or the table's name. */
export function referenceName(target: OperationNode): string {
  const table = namedTable(target);
  return table === undefined ? "" : table.alias ?? table.table;
}

/** A target item without its alias. */
export function targetTableNode(target: OperationNode): TableNode {
  return (namedTable(target)?.node ?? target) as TableNode;
}

/** The first (written) item of an UPDATE's table list. */
export function updateTarget(node: UpdateQueryNode): OperationNode {
  return updateTargets(node)[0]!;
}

/**
 * Every item a write statement may write: each table of a multi-table
 * UPDATE (MariaDB/MySQL `update a, b set ...`), each table a DELETE deletes
 * from (a MySQL target by alias resolved to the table it names), the target
 * of an INSERT or MERGE.
 */
export const writeTargets: (node: OperationNode) => readonly OperationNode[] = sharedWriteTargets;

/** What a target item names. */
export interface TargetName {
  /** The table, when it can be read. */
  readonly table: string | undefined;
  /** Whether the item is raw SQL (`sql.table("posts")`, `sql\`...\``) rather than a plain table. */
  readonly raw: boolean;
}

/**
 * The table a target item names: a plain table (aliased or not), or the
 * table inside `sql.table(...)` (raw, aliased or not); `table` is
 * `undefined` for other raw SQL, whose table cannot be known.
 */
export function targetName(item: OperationNode): TargetName {
  const table = namedTable(item);
  if (table !== undefined) return { table: table.table, raw: false };
  const inner = item.kind === "AliasNode" ? (item as unknown as { node: OperationNode }).node : item;
  if (inner.kind === "RawNode") {
    const raw = inner as RawNode;
    const only = raw.parameters.length === 1 && raw.sqlFragments.every((f) => f.trim() === "")
      ? raw.parameters[0]
      : undefined;
    return { table: only?.kind === "TableNode" ? (only as TableNode).table.identifier.name : undefined, raw: true };
  }
  return { table: undefined, raw: true };
}

/** The write statements of a data-modifying WITH clause (PostgreSQL). */
export function writesInWith(node: OperationNode): OperationNode[] {
  return cteWrites(node).map((cte) => cte.expression);
}

/** The table a write statement writes (its first target), if it is a plain table. */
export function writeTarget(node: OperationNode): string | undefined {
  return targetOf(node)?.table;
}

/** The column an UPDATE's SET item writes (`set({ "p.id": ... })` names it through a reference). */
export function updatedColumn(update: ColumnUpdateNode): string | undefined {
  return setColumn(update.column)?.name;
}

/** The primary key columns an UPDATE sets: to values, and to SQL expressions. */
export function keyUpdates(
  node: UpdateQueryNode,
  pk: readonly string[],
): { values: Row; expressions: (readonly [string, OperationNode])[] } {
  const values: Row = {};
  const expressions: (readonly [string, OperationNode])[] = [];
  for (const { name, value } of setEntries(node.updates)) {
    if (!pk.includes(name)) continue;
    if (value.kind === "ValueNode") values[name] = (value as unknown as { value: unknown }).value;
    else expressions.push([name, value]);
  }
  return { values, expressions };
}

/** A value of an INSERT's VALUES that is SQL, not a literal. */
export const EXPRESSION: unique symbol = Symbol("expression");

/**
 * The rows of an INSERT's VALUES, column to literal value ({@linkcode
 * EXPRESSION} for SQL, absent for DEFAULT); `undefined` for `insert ...
 * select` and other sources.
 */
export function insertedRows(node: InsertQueryNode): Row[] | undefined {
  const read = sharedInsertedRows(node);
  if (read.kind !== "values" || node.values === undefined) return undefined;
  return read.rows.map((row) => {
    const out: Row = {};
    for (const [column, value] of row) {
      out[column] = value.kind === "ValueNode" ? (value as unknown as { value: unknown }).value : EXPRESSION;
    }
    return out;
  });
}
