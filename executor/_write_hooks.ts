/**
 * Write hooks on Kysely's operation-node tree: each plugin sees an
 * INSERT/UPDATE's table and values and may set columns.
 *
 * Column names are compared the way the database compares them
 * ({@linkcode foldsColumnNames}): on SQLite and MySQL `TENANT_ID` is
 * `tenant_id`, so a hook asking a row for `tenant_id` finds a value written
 * as `TENANT_ID`, a column a hook sets replaces the caller's entry under any
 * spelling, and one write naming a column twice in two spellings is refused
 * before any hook runs.
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
import {
  columnRow,
  foldsColumnNames,
  insertedRows,
  type NamedTable,
  namedTable,
  setColumn,
  updateTargets,
} from "./query_tree.ts";
import { PluginError, wrapPluginError } from "./plugin_error.ts";
import type { DialectName } from "../core/mod.ts";

type AskInfo = Omit<WriteInfo, "context" | "dialect">;

/** One statement's write-hook pass. */
interface Pass {
  readonly plugins: readonly KyseraPlugin[];
  readonly dialect: DialectName | undefined;
  /** The key a column name is compared by: folded to lower case where the database folds it. */
  readonly key: (name: string) => string;
  /** Nodes the hooks added (their raw SQL is the plugins' own). */
  readonly trusted: WeakSet<OperationNode>;
}

/**
 * Runs every plugin's `onWrite` on an INSERT or UPDATE root and applies the changes.
 *
 * @param trusted Collects the value nodes the hooks added, which the row-scope
 * walk must not take for the caller's raw SQL.
 */
export function applyWriteHooks(
  root: OperationNode,
  plugins: readonly KyseraPlugin[],
  dialect: DialectName | undefined,
  trusted: WeakSet<OperationNode>,
): OperationNode {
  const fold = foldsColumnNames(dialect);
  const pass: Pass = { plugins, dialect, key: fold ? (name) => name.toLowerCase() : (name) => name, trusted };
  if (root.kind === "InsertQueryNode") return insert(root as InsertQueryNode, pass);
  if (root.kind === "UpdateQueryNode") return update(root as UpdateQueryNode, pass);
  return root;
}

function valueOf(node: OperationNode): unknown {
  if (node.kind === "ValueNode") return (node as ValueNode).value;
  return new WriteExpression(node);
}

function toNode(value: unknown, pass: Pass): OperationNode {
  const node = isExpression(value) ? value.toOperationNode() : ValueNode.create(value);
  pass.trusted.add(node);
  return node;
}

function rowFor(row: Record<string, unknown>, pass: Pass): Record<string, unknown> {
  return columnRow(row, pass.dialect);
}

/** Refuses a write that names one column twice (in two spellings the database reads as one). */
function refuseTwice(names: readonly string[], table: string, pass: Pass): void {
  const seen = new Map<string, string>();
  for (const name of names) {
    const key = pass.key(name);
    const other = seen.get(key);
    if (other !== undefined && other !== name) {
      throw new TypeError(
        `Cannot write '${table}': column '${name}' is written twice, also as '${other}', which the database reads as the same column`,
      );
    }
    seen.set(key, name);
  }
}

function ask(plugin: KyseraPlugin, info: AskInfo, pass: Pass): WriteChange | undefined {
  try {
    return plugin.onWrite?.({ ...info, context: plugin.context?.get(), dialect: pass.dialect }) ?? undefined;
  } catch (error) {
    throw wrapPluginError(error, {
      plugin: plugin.name,
      hook: "onWrite",
      operation: info.operation,
      table: info.table,
    });
  }
}

function insert(node: InsertQueryNode, pass: Pass): OperationNode {
  const target = namedTable(node.into);
  if (target === undefined) return node;
  const operation = node.replace === true || node.orAction?.action.toLowerCase() === "replace" ? "replace" : "insert";
  for (const plugin of pass.plugins) {
    const read = insertedRows(node);
    refuseTwice(read.columns, target.table, pass);
    const kind: WriteKind = read.kind;
    const rows = read.rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (const [column, value] of row) out[column] = valueOf(value);
      return rowFor(out, pass);
    });
    const change = ask(
      plugin,
      { operation, table: target.table, schema: target.schema, kind, columns: read.columns, rows },
      pass,
    );
    if (kind === "raw" && (change?.set !== undefined || change?.rows !== undefined)) {
      // The source is raw SQL: there is nowhere to put the plugin's values,
      // and leaving them out would write what the plugin meant to change.
      throw new PluginError({
        plugin: plugin.name,
        hook: "onWrite",
        operation,
        table: target.table,
        cause: new Error("its values cannot be added to an INSERT whose source is raw SQL; use values() or a select"),
      });
    }
    if (change?.set !== undefined) node = setOnInsert(node, change.set, pass);
    if (change?.rows !== undefined && kind === "values") node = setRowsOnInsert(node, change.rows, pass);
    const upsert = upsertSet(node, plugin, operation, target, pass);
    if (upsert !== undefined) node = upsert;
  }
  return node;
}

function setOnInsert(node: InsertQueryNode, set: Readonly<Record<string, unknown>>, pass: Pass): InsertQueryNode {
  let columns: readonly ColumnNodeType[] = node.columns ?? [];
  let values = node.values;
  for (const [column, value] of Object.entries(set)) {
    const index = columns.findIndex((c) => pass.key(c.column.name) === pass.key(column));
    if (values === undefined || values.kind === "ValuesNode") {
      const rows: readonly OperationNode[] = values === undefined
        ? [ValueListNodeFactory.create([])]
        : (values as ValuesNode).values;
      const newRows = rows.map((row) => {
        const items: OperationNode[] = row.kind === "PrimitiveValueListNode"
          ? (row as PrimitiveValueListNode).values.map((v) => ValueNode.create(v))
          : [...(row as ValueListNode).values];
        if (index === -1) items.push(toNode(value, pass));
        else items[index] = toNode(value, pass);
        return ValueListNodeFactory.create(items);
      });
      values = Object.freeze({ kind: "ValuesNode", values: Object.freeze(newRows) }) as ValuesNode;
    } else if (values.kind === "SelectQueryNode" && index === -1) {
      const select = values as SelectQueryNode;
      values = Object.freeze({
        ...select,
        selections: Object.freeze([
          ...(select.selections ?? []),
          SelectionNode.create(AliasNode.create(toNode(value, pass), IdentifierNode.create(column))),
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
  pass: Pass,
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
    let index = columns.findIndex((c) => pass.key(c.column.name) === pass.key(column));
    if (index === -1) {
      index = columns.length;
      columns = Object.freeze([...columns, ColumnNode.create(column)]);
      for (const items of rows) items[index] = DefaultInsertValueNode.create();
    }
    rows.forEach((items, i) => {
      const set = perRow[i];
      if (set !== undefined && Object.hasOwn(set, column)) items[index] = toNode(set[column], pass);
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
 * column (qualified or not, in any spelling the database reads as it).
 * With `qualify` (a multi-table UPDATE), the column is qualified by that
 * target's alias (or name), and only entries qualified the same way are
 * replaced.
 */
function setUpdates(
  updates: readonly ColumnUpdateNode[],
  set: Readonly<Record<string, unknown>>,
  pass: Pass,
  qualify?: NamedTable,
): readonly ColumnUpdateNode[] {
  const out = [...updates];
  const own = qualify === undefined ? undefined : qualify.alias ?? qualify.table;
  for (const [column, value] of Object.entries(set)) {
    const target = qualify === undefined ? ColumnNode.create(column) : ReferenceNode.create(
      ColumnNode.create(column),
      qualify.alias === undefined ? qualify.node : TableNode.create(qualify.alias),
    );
    const update = ColumnUpdateNode.create(target, toNode(value, pass));
    const index = out.findIndex((u) => {
      const written = setColumn(u.column);
      return written !== undefined && pass.key(written.name) === pass.key(column) &&
        (own === undefined || written.qualifier === own);
    });
    if (index === -1) out.push(update);
    else out[index] = update;
  }
  return Object.freeze(out);
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
  table: string,
  pass: Pass,
  target?: NamedTable,
  qualifiers?: ReadonlySet<string>,
): { columns: string[]; row: Record<string, unknown> } {
  const columns: string[] = [];
  const row: Record<string, unknown> = {};
  const own = target === undefined ? undefined : target.alias ?? target.table;
  for (const u of updates) {
    const written = setColumn(u.column);
    if (written === undefined) continue;
    if (
      own !== undefined && written.qualifier !== undefined && written.qualifier !== own &&
      qualifiers?.has(written.qualifier) === true
    ) continue;
    columns.push(written.name);
    row[written.name] = valueOf(u.value);
  }
  refuseTwice(columns, table, pass);
  return { columns, row: rowFor(row, pass) };
}

function upsertSet(
  node: InsertQueryNode,
  plugin: KyseraPlugin,
  operation: "insert" | "replace",
  target: NamedTable,
  pass: Pass,
): InsertQueryNode | undefined {
  const conflict: OnConflictNode | OnDuplicateKeyNode | undefined = node.onConflict?.updates !== undefined
    ? node.onConflict
    : node.onDuplicateKey;
  if (conflict?.updates === undefined) return undefined;
  const { columns, row } = rowOfUpdates(conflict.updates, target.table, pass);
  const change = ask(plugin, {
    operation,
    table: target.table,
    schema: target.schema,
    kind: "upsert-set",
    columns,
    rows: [row],
  }, pass);
  if (change?.set === undefined) return undefined;
  const updated = Object.freeze({ ...conflict, updates: setUpdates(conflict.updates, change.set, pass) });
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
function update(node: UpdateQueryNode, pass: Pass): OperationNode {
  const targets = updateTargets(node).map((item) => namedTable(item));
  if (targets[0] === undefined) return node;
  const multi = targets.length > 1;
  const qualifiers = new Set<string>();
  for (const t of targets) if (t !== undefined) qualifiers.add(t.alias ?? t.table);
  for (const plugin of pass.plugins) {
    for (const target of targets) {
      if (target === undefined) continue;
      const { columns, row } = multi
        ? rowOfUpdates(node.updates ?? [], target.table, pass, target, qualifiers)
        : rowOfUpdates(node.updates ?? [], target.table, pass);
      const change = ask(plugin, {
        operation: "update",
        table: target.table,
        schema: target.schema,
        kind: "set",
        columns,
        rows: [row],
      }, pass);
      if (change?.set !== undefined) {
        node = Object.freeze({
          ...node,
          updates: setUpdates(node.updates ?? [], change.set, pass, multi ? target : undefined),
        });
      }
    }
  }
  return node;
}
