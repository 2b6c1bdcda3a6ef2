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
  ReferenceNode,
  SelectionNode,
  type SelectQueryNode,
  TableNode,
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

/**
 * Sets columns in a SET list, replacing an entry that writes the same
 * column (qualified or not). With `qualify` (a multi-table UPDATE), the
 * column is qualified by that target's alias (or name), and only entries
 * qualified the same way are replaced.
 */
function setUpdates(
  updates: readonly ColumnUpdateNode[],
  set: Readonly<Record<string, unknown>>,
  qualify?: NamedTable,
): readonly ColumnUpdateNode[] {
  const out = [...updates];
  const own = qualify === undefined ? undefined : qualify.alias ?? qualify.table;
  for (const [column, value] of Object.entries(set)) {
    const target = qualify === undefined ? ColumnNode.create(column) : ReferenceNode.create(
      ColumnNode.create(column),
      qualify.alias === undefined ? qualify.node : TableNode.create(qualify.alias),
    );
    const update = ColumnUpdateNode.create(target, toNode(value));
    const index = out.findIndex((u) => {
      const written = setTarget(u.column);
      return written !== undefined && written.name === column && (own === undefined || written.qualifier === own);
    });
    if (index === -1) out.push(update);
    else out[index] = update;
  }
  return Object.freeze(out);
}

/**
 * The column a SET entry writes and the table name or alias that qualifies
 * it: `set({ a: 1 })` gives a ColumnNode, `set("a", 1)` an unqualified
 * ReferenceNode, `set("p.a", 1)` (MySQL) a qualified one. `undefined` for
 * raw SQL, which row scopes report as raw SQL.
 */
function setTarget(column: OperationNode): { name: string; qualifier: string | undefined } | undefined {
  if (column.kind === "ColumnNode") return { name: (column as ColumnNodeType).column.name, qualifier: undefined };
  if (column.kind === "ReferenceNode") {
    const ref = column as ReferenceNode;
    if (ref.column.kind !== "ColumnNode") return undefined;
    return { name: (ref.column as ColumnNodeType).column.name, qualifier: ref.table?.table.identifier.name };
  }
  return undefined;
}

/**
 * The SET entries that may write `target`: all of them when the UPDATE has
 * one target; of a multi-table UPDATE (MySQL `update a, b set ...`), those
 * qualified by the target's alias or name, and those that name no target
 * (unqualified, or qualified by something else: the database decides which
 * table they write, so every target is told).
 */
function rowOfUpdates(
  updates: readonly ColumnUpdateNode[],
  target?: NamedTable,
  qualifiers?: ReadonlySet<string>,
): { columns: string[]; row: Record<string, unknown> } {
  const columns: string[] = [];
  const row: Record<string, unknown> = {};
  const own = target === undefined ? undefined : target.alias ?? target.table;
  for (const u of updates) {
    const written = setTarget(u.column);
    if (written === undefined) continue;
    if (
      own !== undefined && written.qualifier !== undefined && written.qualifier !== own &&
      qualifiers?.has(written.qualifier) === true
    ) continue;
    columns.push(written.name);
    row[written.name] = valueOf(u.value);
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

/**
 * Asks every plugin about an UPDATE's SET, once per target table: a
 * multi-table UPDATE (MySQL `update posts as p, users as u set u.x = ...`)
 * writes every table it lists, so each is checked with the entries that may
 * write it, and columns a plugin sets on it are qualified by its alias.
 */
function update(
  node: UpdateQueryNode,
  plugins: readonly KyseraPlugin[],
  dialect: DialectName | undefined,
): OperationNode {
  const items = node.table?.kind === "ListNode"
    ? (node.table as unknown as { items: readonly OperationNode[] }).items
    : node.table === undefined
    ? []
    : [node.table];
  const targets = items.map((item) => namedTable(item));
  if (targets[0] === undefined) return node;
  const multi = targets.length > 1;
  const qualifiers = new Set<string>();
  for (const t of targets) if (t !== undefined) qualifiers.add(t.alias ?? t.table);
  for (const plugin of plugins) {
    for (const target of targets) {
      if (target === undefined) continue;
      const { columns, row } = multi
        ? rowOfUpdates(node.updates ?? [], target, qualifiers)
        : rowOfUpdates(node.updates ?? []);
      const change = ask(plugin, {
        operation: "update",
        table: target.table,
        schema: target.schema,
        kind: "set",
        columns,
        rows: [row],
      }, dialect);
      if (change?.set !== undefined) {
        node = Object.freeze({
          ...node,
          updates: setUpdates(node.updates ?? [], change.set, multi ? target : undefined),
        });
      }
    }
  }
  return node;
}
