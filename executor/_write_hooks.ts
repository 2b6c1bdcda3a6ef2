/**
 * Write hooks on Kysely's operation-node tree: each plugin sees an
 * INSERT/UPDATE's table and values and may set columns.
 */
import {
  AliasNode,
  ColumnNode,
  type ColumnNode as ColumnNodeType,
  ColumnUpdateNode,
  DefaultInsertValueNode,
  IdentifierNode,
  type InsertQueryNode,
  isExpression,
  type OnConflictNode,
  type OnDuplicateKeyNode,
  type OperationNode,
  type PrimitiveValueListNode,
  SelectionNode,
  type SelectQueryNode,
  type UpdateQueryNode,
  type ValueListNode,
  ValueListNode as ValueListNodeFactory,
  ValueNode,
  type ValuesNode,
} from "kysely";
import {
  type KyseraPlugin,
  type WriteChange,
  WriteExpression,
  type WriteInfo,
  type WriteKind,
} from "./kysera_plugin.ts";
import { type NamedTable, namedTable } from "./_statement.ts";
import { wrapPluginError } from "./plugin_error.ts";
import type { DialectName } from "../core/mod.ts";

type AskInfo = Omit<WriteInfo, "context" | "dialect">;

/** Runs every plugin's `onWrite` on an INSERT or UPDATE root and applies the changes. */
export function applyWriteHooks(
  root: OperationNode,
  plugins: readonly KyseraPlugin[],
  dialect?: DialectName,
): OperationNode {
  if (root.kind === "InsertQueryNode") return insert(root as InsertQueryNode, plugins, dialect);
  if (root.kind === "UpdateQueryNode") return update(root as UpdateQueryNode, plugins, dialect);
  return root;
}

function valueOf(node: OperationNode): unknown {
  if (node.kind === "ValueNode") return (node as ValueNode).value;
  return new WriteExpression(node);
}

function toNode(value: unknown): OperationNode {
  return isExpression(value) ? value.toOperationNode() : ValueNode.create(value);
}

function ask(
  plugin: KyseraPlugin,
  info: AskInfo,
  dialect: DialectName | undefined,
): WriteChange | undefined {
  try {
    return plugin.onWrite?.({ ...info, context: plugin.context?.get(), dialect }) ?? undefined;
  } catch (error) {
    throw wrapPluginError(error, {
      plugin: plugin.name,
      hook: "onWrite",
      operation: info.operation,
      table: info.table,
    });
  }
}

function insert(
  node: InsertQueryNode,
  plugins: readonly KyseraPlugin[],
  dialect: DialectName | undefined,
): OperationNode {
  const target = namedTable(node.into);
  if (target === undefined) return node;
  const operation = node.replace ? "replace" : "insert";
  for (const plugin of plugins) {
    const columns = (node.columns ?? []).map((c) => c.column.name);
    let kind: WriteKind;
    let rows: Record<string, unknown>[] = [];
    const values = node.values;
    if (values?.kind === "ValuesNode") {
      kind = "values";
      rows = (values as ValuesNode).values.map((row) => {
        const out: Record<string, unknown> = {};
        columns.forEach((column, i) => {
          if (row.kind === "PrimitiveValueListNode") {
            out[column] = (row as PrimitiveValueListNode).values[i];
          } else {
            const item = (row as ValueListNode).values[i];
            if (item !== undefined && item.kind !== "DefaultInsertValueNode") out[column] = valueOf(item);
          }
        });
        return out;
      });
    } else if (values?.kind === "SelectQueryNode") {
      kind = "select";
    } else {
      kind = "values";
      rows = [{}];
    }
    const change = ask(plugin, { operation, table: target.table, schema: target.schema, kind, columns, rows }, dialect);
    if (change?.set !== undefined) node = setOnInsert(node, change.set);
    if (change?.rows !== undefined && kind === "values") node = setRowsOnInsert(node, change.rows);
    const upsert = upsertSet(node, plugin, operation, target, dialect);
    if (upsert !== undefined) node = upsert;
  }
  return node;
}

function setOnInsert(node: InsertQueryNode, set: Readonly<Record<string, unknown>>): InsertQueryNode {
  let columns: readonly ColumnNodeType[] = node.columns ?? [];
  let values = node.values;
  for (const [column, value] of Object.entries(set)) {
    const index = columns.findIndex((c) => c.column.name === column);
    if (values === undefined || values.kind === "ValuesNode") {
      const rows: readonly OperationNode[] = values === undefined
        ? [ValueListNodeFactory.create([])]
        : (values as ValuesNode).values;
      const newRows = rows.map((row) => {
        const items: OperationNode[] = row.kind === "PrimitiveValueListNode"
          ? (row as PrimitiveValueListNode).values.map((v) => ValueNode.create(v))
          : [...(row as ValueListNode).values];
        if (index === -1) items.push(toNode(value));
        else items[index] = toNode(value);
        return ValueListNodeFactory.create(items);
      });
      values = Object.freeze({ kind: "ValuesNode", values: Object.freeze(newRows) }) as ValuesNode;
    } else if (values.kind === "SelectQueryNode" && index === -1) {
      const select = values as SelectQueryNode;
      values = Object.freeze({
        ...select,
        selections: Object.freeze([
          ...(select.selections ?? []),
          SelectionNode.create(AliasNode.create(toNode(value), IdentifierNode.create(column))),
        ]),
      });
    } else {
      continue;
    }
    if (index === -1) columns = Object.freeze([...columns, ColumnNode.create(column)]);
  }
  return Object.freeze({ ...node, columns, ...(values === undefined ? {} : { values }), defaultValues: false });
}

function setRowsOnInsert(
  node: InsertQueryNode,
  perRow: readonly (Readonly<Record<string, unknown>> | undefined)[],
): InsertQueryNode {
  const values = node.values;
  if (values !== undefined && values.kind !== "ValuesNode") return node;
  let columns: readonly ColumnNodeType[] = node.columns ?? [];
  const rows: OperationNode[][] =
    (values === undefined ? [ValueListNodeFactory.create([])] : (values as ValuesNode).values)
      .map((row) =>
        row.kind === "PrimitiveValueListNode"
          ? (row as PrimitiveValueListNode).values.map((v) => ValueNode.create(v))
          : [...(row as ValueListNode).values]
      );
  const names = new Set<string>();
  for (const set of perRow) for (const column of Object.keys(set ?? {})) names.add(column);
  for (const column of names) {
    let index = columns.findIndex((c) => c.column.name === column);
    if (index === -1) {
      index = columns.length;
      columns = Object.freeze([...columns, ColumnNode.create(column)]);
      for (const items of rows) items[index] = DefaultInsertValueNode.create();
    }
    rows.forEach((items, i) => {
      const set = perRow[i];
      if (set !== undefined && Object.hasOwn(set, column)) items[index] = toNode(set[column]);
    });
  }
  const newValues = Object.freeze({
    kind: "ValuesNode",
    values: Object.freeze(rows.map((items) => ValueListNodeFactory.create(items))),
  }) as ValuesNode;
  return Object.freeze({ ...node, columns, values: newValues, defaultValues: false });
}

function setUpdates(
  updates: readonly ColumnUpdateNode[],
  set: Readonly<Record<string, unknown>>,
): readonly ColumnUpdateNode[] {
  const out = [...updates];
  for (const [column, value] of Object.entries(set)) {
    const update = ColumnUpdateNode.create(ColumnNode.create(column), toNode(value));
    const index = out.findIndex((u) =>
      u.column.kind === "ColumnNode" && (u.column as ColumnNodeType).column.name === column
    );
    if (index === -1) out.push(update);
    else out[index] = update;
  }
  return Object.freeze(out);
}

function rowOfUpdates(updates: readonly ColumnUpdateNode[]): { columns: string[]; row: Record<string, unknown> } {
  const columns: string[] = [];
  const row: Record<string, unknown> = {};
  for (const u of updates) {
    if (u.column.kind !== "ColumnNode") continue;
    const name = (u.column as ColumnNodeType).column.name;
    columns.push(name);
    row[name] = valueOf(u.value);
  }
  return { columns, row };
}

function upsertSet(
  node: InsertQueryNode,
  plugin: KyseraPlugin,
  operation: "insert" | "replace",
  target: NamedTable,
  dialect: DialectName | undefined,
): InsertQueryNode | undefined {
  const conflict: OnConflictNode | OnDuplicateKeyNode | undefined = node.onConflict?.updates !== undefined
    ? node.onConflict
    : node.onDuplicateKey;
  if (conflict?.updates === undefined) return undefined;
  const { columns, row } = rowOfUpdates(conflict.updates);
  const change = ask(plugin, {
    operation,
    table: target.table,
    schema: target.schema,
    kind: "upsert-set",
    columns,
    rows: [row],
  }, dialect);
  if (change?.set === undefined) return undefined;
  const updated = Object.freeze({ ...conflict, updates: setUpdates(conflict.updates, change.set) });
  return Object.freeze(
    conflict.kind === "OnConflictNode" ? { ...node, onConflict: updated } : {
      ...node,
      onDuplicateKey: updated,
    },
  ) as InsertQueryNode;
}

function update(
  node: UpdateQueryNode,
  plugins: readonly KyseraPlugin[],
  dialect: DialectName | undefined,
): OperationNode {
  const item = node.table?.kind === "ListNode"
    ? (node.table as unknown as { items: readonly OperationNode[] }).items[0]
    : node.table;
  const target = namedTable(item);
  if (target === undefined) return node;
  for (const plugin of plugins) {
    const { columns, row } = rowOfUpdates(node.updates ?? []);
    const change = ask(plugin, {
      operation: "update",
      table: target.table,
      schema: target.schema,
      kind: "set",
      columns,
      rows: [row],
    }, dialect);
    if (change?.set !== undefined) {
      node = Object.freeze({ ...node, updates: setUpdates(node.updates ?? [], change.set) });
    }
  }
  return node;
}
