/**
 * Readers of the query tree the audit plugin needs: the tables a write
 * targets, the columns an UPDATE sets, the rows an INSERT gives (private;
 * small functions, to be replaced by the executor's shared readers).
 */
import type {
  AliasNode,
  ColumnNode,
  ColumnUpdateNode,
  DeleteQueryNode,
  InsertQueryNode,
  OperationNode,
  PrimitiveValueListNode,
  RawNode,
  ReferenceNode,
  TableNode,
  UpdateQueryNode,
  ValueListNode,
  ValuesNode,
} from "kysely";

type Row = Record<string, unknown>;

/** The statement kinds that write, and the operation each is reported as. */
export const WRITE_OPERATIONS: Readonly<Record<string, string>> = {
  InsertQueryNode: "insert",
  UpdateQueryNode: "update",
  DeleteQueryNode: "delete",
  MergeQueryNode: "merge",
};

/** The name a target item is referred to by: its alias, or the table's name. */
export function referenceName(target: OperationNode): string {
  return target.kind === "AliasNode"
    ? ((target as AliasNode).alias as unknown as { name: string }).name
    : (target as TableNode).table.identifier.name;
}

/** A target item without its alias. */
export function targetTableNode(target: OperationNode): TableNode {
  return (target.kind === "AliasNode" ? (target as AliasNode).node : target) as TableNode;
}

/** The first (written) item of an UPDATE's table list. */
export function updateTarget(node: UpdateQueryNode): OperationNode {
  return node.table?.kind === "ListNode"
    ? (node.table as unknown as { items: readonly OperationNode[] }).items[0]!
    : node.table!;
}

/**
 * Every item a write statement may write: each table of a multi-table
 * UPDATE (MariaDB/MySQL `update a, b set ...`), each table a DELETE deletes
 * from (`delete a, b from ...` is `deleteFrom(["a", "b"])`), the target of an
 * INSERT or MERGE.
 */
export function writeTargets(node: OperationNode): readonly OperationNode[] {
  switch (node.kind) {
    case "UpdateQueryNode": {
      const table = (node as UpdateQueryNode).table;
      if (table === undefined) return [];
      return table.kind === "ListNode" ? (table as unknown as { items: readonly OperationNode[] }).items : [table];
    }
    case "DeleteQueryNode":
      return (node as DeleteQueryNode).from.froms;
    default: {
      const into = (node as { into?: OperationNode }).into;
      return into === undefined ? [] : [into];
    }
  }
}

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
  const inner = item.kind === "AliasNode" ? (item as AliasNode).node : item;
  if (inner.kind === "TableNode") return { table: (inner as TableNode).table.identifier.name, raw: false };
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
  const ctes = (node as { with?: { expressions: readonly { expression: OperationNode }[] } }).with?.expressions ?? [];
  return ctes.map((cte) => cte.expression).filter((e) => WRITE_OPERATIONS[e.kind] !== undefined);
}

/** The table a write statement writes (its first target), if it is a plain table. */
export function writeTarget(node: OperationNode): string | undefined {
  const [target] = writeTargets(node);
  if (target === undefined) return undefined;
  const table = targetTableNode(target);
  return table.kind === "TableNode" ? table.table.identifier.name : undefined;
}

/** The column an UPDATE's SET item writes (`set({ "p.id": ... })` names it through a reference). */
export function updatedColumn(update: ColumnUpdateNode): string | undefined {
  const column = update.column as OperationNode;
  if (column.kind === "ColumnNode") return (column as ColumnNode).column.name;
  if (column.kind === "ReferenceNode") {
    const inner = (column as ReferenceNode).column;
    return inner.kind === "ColumnNode" ? (inner as ColumnNode).column.name : undefined;
  }
  return undefined;
}

/** The primary key columns an UPDATE sets: to values, and to SQL expressions. */
export function keyUpdates(
  node: UpdateQueryNode,
  pk: readonly string[],
): { values: Row; expressions: (readonly [string, OperationNode])[] } {
  const values: Row = {};
  const expressions: (readonly [string, OperationNode])[] = [];
  for (const u of node.updates ?? []) {
    const column = updatedColumn(u);
    if (column === undefined || !pk.includes(column)) continue;
    if (u.value.kind === "ValueNode") values[column] = (u.value as unknown as { value: unknown }).value;
    else expressions.push([column, u.value]);
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
  const columns = (node.columns ?? []).map((c) => c.column.name);
  if (node.values?.kind !== "ValuesNode") return undefined;
  return (node.values as ValuesNode).values.map((row) => {
    const out: Row = {};
    columns.forEach((column, i) => {
      if (row.kind === "PrimitiveValueListNode") {
        out[column] = (row as PrimitiveValueListNode).values[i];
        return;
      }
      const item = (row as ValueListNode).values[i];
      if (item === undefined || item.kind === "DefaultInsertValueNode") return;
      out[column] = item.kind === "ValueNode" ? (item as unknown as { value: unknown }).value : EXPRESSION;
    });
    return out;
  });
}
