/**
 * Row scopes on Kysely's operation-node tree: every reference to a table, in
 * every query level (subqueries in any clause, CTEs, set operations,
 * insert ... select), gets the plugins' predicates, qualified by its alias.
 *
 * The walk is generic over node properties (so node kinds added by a later
 * Kysely are still descended into) and copies only the nodes on the path to
 * a change.
 */
import {
  AliasNode,
  AndNode,
  ColumnNode,
  ColumnUpdateNode,
  type DeleteQueryNode,
  expressionBuilder,
  FromNode,
  FunctionNode,
  IdentifierNode,
  type InsertQueryNode,
  type JoinNode,
  type MatchedNode,
  type MergeQueryNode,
  OnConflictNode,
  OnDuplicateKeyNode,
  OnNode,
  type OperationNode,
  ParensNode,
  ReferenceNode,
  SelectionNode,
  SelectQueryNode,
  type TableNode,
  type UpdateQueryNode,
  type WhenNode,
  WhereNode,
} from "kysely";
import type {
  AnyExpressionBuilder,
  KyseraPlugin,
  QueryOperation,
  TableReference,
  TableReferencePosition,
} from "./kysera_plugin.ts";
import { type NamedTable, namedTable } from "./_statement.ts";
import { PluginError, wrapPluginError } from "./plugin_error.ts";

const EB: AnyExpressionBuilder = expressionBuilder();

/** Node kinds that can hold no query and no table reference. */
const LEAVES: ReadonlySet<string> = new Set([
  "ValueNode",
  "PrimitiveValueListNode",
  "IdentifierNode",
  "ColumnNode",
  "TableNode",
  "SchemableIdentifierNode",
  "OperatorNode",
  "ReferenceNode",
  "DefaultInsertValueNode",
  "SelectAllNode",
  "DataTypeNode",
]);

interface Walk {
  readonly plugins: readonly KyseraPlugin[];
  readonly statement: QueryOperation;
  readonly ctes: (readonly string[])[];
  rawSource: boolean;
}

/** What {@linkcode applyRowScopes} returns. */
export interface ScopedTree {
  readonly node: OperationNode;
  /** Whether a FROM/JOIN item was raw SQL, which no scope can reach. */
  readonly rawSource: boolean;
}

/**
 * Applies every plugin's `scopeRows` to every table reference of `root`.
 *
 * @param root The root node (select, insert, update, delete, merge).
 * @param plugins The plugins with `scopeRows`, in order.
 * @param statement The root's operation.
 */
export function applyRowScopes(
  root: OperationNode,
  plugins: readonly KyseraPlugin[],
  statement: QueryOperation,
): ScopedTree {
  const walk: Walk = { plugins, statement, ctes: [], rawSource: false };
  const node = visit(root, walk);
  return { node, rawSource: walk.rawSource };
}

function visit(node: OperationNode, w: Walk): OperationNode {
  switch (node.kind) {
    case "SelectQueryNode":
      return withCtes(node, w, () => scopeSelect(node as SelectQueryNode, w));
    case "UpdateQueryNode":
      return withCtes(node, w, () => scopeUpdate(node as UpdateQueryNode, w));
    case "DeleteQueryNode":
      return withCtes(node, w, () => scopeDelete(node as DeleteQueryNode, w));
    case "MergeQueryNode":
      return withCtes(node, w, () => scopeMerge(node as MergeQueryNode, w));
    case "InsertQueryNode":
      return withCtes(node, w, () => scopeInsert(node as InsertQueryNode, w));
    default:
      return LEAVES.has(node.kind) ? node : visitChildren(node, w);
  }
}

function visitChildren(node: OperationNode, w: Walk): OperationNode {
  let copy: Record<string, unknown> | undefined;
  for (const key in node) {
    const value = (node as unknown as Record<string, unknown>)[key];
    if (typeof value !== "object" || value === null) continue;
    let next: unknown = value;
    if (Array.isArray(value)) {
      let list: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (!isNode(item)) continue;
        const changed = visit(item, w);
        if (changed !== item) {
          list ??= [...value];
          list[i] = changed;
        }
      }
      if (list !== undefined) next = Object.freeze(list);
    } else if (isNode(value)) {
      next = visit(value, w);
    }
    if (next !== value) {
      copy ??= { ...node };
      copy[key] = next;
    }
  }
  return copy === undefined ? node : Object.freeze(copy) as unknown as OperationNode;
}

function isNode(value: unknown): value is OperationNode {
  return typeof value === "object" && value !== null && typeof (value as { kind?: unknown }).kind === "string";
}

function withCtes(node: OperationNode, w: Walk, fn: () => OperationNode): OperationNode {
  const withNode = (node as SelectQueryNode).with;
  if (withNode === undefined) return fn();
  w.ctes.push(withNode.expressions.map((e) => e.name.table.table.identifier.name));
  try {
    return fn();
  } finally {
    w.ctes.pop();
  }
}

function isCte(table: NamedTable, w: Walk): boolean {
  if (table.schema !== undefined) return false;
  return w.ctes.some((names) => names.includes(table.table));
}

/** The combined predicate of every plugin for one FROM/JOIN/target item. */
function predicateFor(
  item: OperationNode,
  w: Walk,
  operation: QueryOperation,
  position: TableReferencePosition,
): OperationNode | undefined {
  const table = namedTable(item);
  if (table === undefined) {
    const inner = item.kind === "AliasNode" ? (item as AliasNode).node : item;
    if (inner.kind === "RawNode") w.rawSource = true;
    return undefined;
  }
  if (isCte(table, w)) return undefined;
  const qualifier: TableNode = table.alias === undefined ? table.node : tableNodeOf(table.alias);
  let predicate: OperationNode | undefined;
  for (const plugin of w.plugins) {
    const ref: TableReference = {
      table: table.table,
      alias: table.alias,
      schema: table.schema,
      operation,
      statement: w.statement,
      position,
      context: plugin.context?.get(),
      column: (name) => columnOf(qualifier, name),
    };
    let expression;
    try {
      expression = plugin.scopeRows?.(ref, EB);
    } catch (error) {
      throw wrapPluginError(error, { plugin: plugin.name, hook: "scopeRows", operation, table: table.table });
    }
    if (expression === undefined) continue;
    const node = expression.toOperationNode();
    predicate = predicate === undefined ? node : and(predicate, node);
  }
  return predicate;
}

function tableNodeOf(name: string): TableNode {
  return Object.freeze({
    kind: "TableNode",
    table: Object.freeze({ kind: "SchemableIdentifierNode", identifier: IdentifierNode.create(name) }),
  }) as TableNode;
}

function columnOf(qualifier: TableNode, name: string) {
  const node = ReferenceNode.create(ColumnNode.create(name), qualifier);
  return { expressionType: undefined, toOperationNode: () => node } as const;
}

/** `a AND b`, parenthesizing anything that is not a plain comparison or AND. */
function and(a: OperationNode, b: OperationNode): OperationNode {
  return AndNode.create(parens(a), parens(b));
}

function parens(node: OperationNode): OperationNode {
  switch (node.kind) {
    case "BinaryOperationNode":
    case "ParensNode":
    case "AndNode":
      return node;
    default:
      return ParensNode.create(node);
  }
}

function addWhere(where: WhereNode | undefined, predicate: OperationNode | undefined): WhereNode | undefined {
  if (predicate === undefined) return where;
  return where === undefined ? WhereNode.create(predicate) : WhereNode.create(and(where.where, predicate));
}

function addOn(join: JoinNode, predicate: OperationNode): JoinNode {
  return Object.freeze({
    ...join,
    on: join.on === undefined ? OnNode.create(predicate) : OnNode.create(and(join.on.on, predicate)),
  });
}

/**
 * `(select * from <item> where <predicate>) as <alias>`: scopes an item
 * without moving its predicate. A schema-qualified table without an alias
 * is refused: the derived table could only be named after the bare table,
 * and references qualified by the schema (`s.t.col`) would break.
 */
function derived(item: OperationNode, predicate: OperationNode, w: Walk, operation: QueryOperation): OperationNode {
  const table = namedTable(item) as NamedTable;
  if (table.alias === undefined && table.schema !== undefined) {
    throw new PluginError({
      plugin: w.plugins.map((p) => p.name).join(", "),
      hook: "scopeRows",
      operation,
      table: table.table,
      cause: new Error(
        `a scoped table under a RIGHT or FULL join needs an alias: write '${table.schema}.${table.table} as ${table.table}'`,
      ),
    });
  }
  const query = Object.freeze({
    ...SelectQueryNode.createFrom([item]),
    selections: Object.freeze([SelectionNode.createSelectAll()]),
    where: WhereNode.create(predicate),
  }) as SelectQueryNode;
  return AliasNode.create(query, IdentifierNode.create(table.alias ?? table.table));
}

interface Clauses {
  froms: readonly OperationNode[] | undefined;
  joins: readonly JoinNode[] | undefined;
  where: WhereNode | undefined;
  changed: boolean;
}

/**
 * Scopes FROM items (into WHERE) and joins (into ON). When a RIGHT or FULL
 * join makes a side null-extended, WHERE and ON predicates would drop or
 * leak rows, so every scoped item of that query becomes a derived table
 * instead.
 */
function scopeClauses(
  froms: readonly OperationNode[] | undefined,
  joins: readonly JoinNode[] | undefined,
  where: WhereNode | undefined,
  w: Walk,
  operation: QueryOperation,
  fromPosition: TableReferencePosition,
): Clauses {
  let changed = false;
  const outer = joins?.some((j) => j.joinType === "RightJoin" || j.joinType === "FullJoin") ?? false;
  let newFroms = froms;
  if (froms !== undefined) {
    const list = froms.map((item) => {
      const predicate = predicateFor(item, w, operation, fromPosition);
      if (predicate === undefined) return item;
      changed = true;
      if (outer) return derived(item, predicate, w, operation);
      where = addWhere(where, predicate);
      return item;
    });
    if (changed) newFroms = Object.freeze(list);
  }
  let newJoins = joins;
  if (joins !== undefined) {
    let joinsChanged = false;
    const list = joins.map((join) => {
      const predicate = predicateFor(join.table, w, operation, "join");
      if (predicate === undefined) return join;
      joinsChanged = true;
      if (outer) return Object.freeze({ ...join, table: derived(join.table, predicate, w, operation) }) as JoinNode;
      if (join.on === undefined) {
        // CROSS JOIN and friends have no ON: the predicate filters in WHERE.
        where = addWhere(where, predicate);
        return join;
      }
      return addOn(join, predicate);
    });
    if (joinsChanged) {
      newJoins = Object.freeze(list);
      changed = true;
    }
  }
  return { froms: newFroms, joins: newJoins, where, changed };
}

function scopeSelect(node: SelectQueryNode, w: Walk): OperationNode {
  const walked = visitChildren(node, w) as SelectQueryNode;
  const c = scopeClauses(walked.from?.froms, walked.joins, walked.where, w, "select", "from");
  if (!c.changed) return walked;
  return withClauses(walked, c);
}

/**
 * An INSERT may update an existing row through `ON CONFLICT DO UPDATE`
 * (PostgreSQL, SQLite) or `ON DUPLICATE KEY UPDATE` (MySQL): that row must be
 * in scope, as for any UPDATE. PostgreSQL and SQLite take the predicate in
 * the `DO UPDATE ... WHERE` (an out-of-scope conflict then neither inserts nor
 * updates). MySQL has no such WHERE, so every assignment becomes
 * `col = IF(<scope>, <value>, col)`: an out-of-scope row keeps every value.
 * MySQL applies the assignments left to right, so if one of them changes a
 * column the scope reads, the later ones see the changed row.
 */
function scopeInsert(node: InsertQueryNode, w: Walk): OperationNode {
  const walked = visitChildren(node, w) as InsertQueryNode;
  const conflict = walked.onConflict?.updates !== undefined ? walked.onConflict : undefined;
  const duplicate = walked.onDuplicateKey;
  if ((conflict === undefined && duplicate === undefined) || walked.into === undefined) return walked;
  const predicate = predicateFor(walked.into, w, "update", "conflict-update");
  if (predicate === undefined) return walked;
  if (conflict !== undefined) {
    return Object.freeze({ ...walked, onConflict: OnConflictNode.cloneWithUpdateWhere(conflict, predicate) });
  }
  const updates = duplicate!.updates.map((update) =>
    ColumnUpdateNode.create(
      update.column,
      FunctionNode.create("if", [predicate, update.value, update.column]),
    )
  );
  return Object.freeze({ ...walked, onDuplicateKey: OnDuplicateKeyNode.create(updates) });
}

function scopeUpdate(node: UpdateQueryNode, w: Walk): OperationNode {
  const walked = visitChildren(node, w) as UpdateQueryNode;
  let where = walked.where;
  const targets = walked.table === undefined
    ? []
    : walked.table.kind === "ListNode"
    ? (walked.table as unknown as { items: readonly OperationNode[] }).items
    : [walked.table];
  let changed = false;
  for (const target of targets) {
    const predicate = predicateFor(target, w, "update", "target");
    if (predicate !== undefined) {
      where = addWhere(where, predicate);
      changed = true;
    }
  }
  const c = scopeClauses(walked.from?.froms, walked.joins, where, w, "update", "from");
  if (!changed && !c.changed) return walked;
  return withClauses(walked, c);
}

/** A copy of a SELECT or UPDATE node with the scoped FROM, joins and WHERE. */
function withClauses<N extends SelectQueryNode | UpdateQueryNode>(node: N, c: Clauses): N {
  return Object.freeze<N>({
    ...node,
    ...(c.froms === undefined ? {} : { from: FromNode.create(c.froms) }),
    ...(c.joins === undefined ? {} : { joins: c.joins }),
    ...(c.where === undefined ? {} : { where: c.where }),
  });
}

function scopeDelete(node: DeleteQueryNode, w: Walk): OperationNode {
  const walked = visitChildren(node, w) as DeleteQueryNode;
  // DELETE's FROM lists the targets; USING (and MySQL's joins) the other
  // tables. MySQL's `delete from a using a join b` names `a` twice: scope
  // each qualifier once.
  const seen = new Set<string>();
  let where = walked.where;
  let changed = false;
  const scopeOnce = (item: OperationNode, position: TableReferencePosition) => {
    const table = namedTable(item);
    const key = table === undefined ? undefined : `${table.schema ?? ""}.${table.alias ?? table.table}`;
    if (key !== undefined && seen.has(key)) return;
    if (key !== undefined) seen.add(key);
    const predicate = predicateFor(item, w, "delete", position);
    if (predicate !== undefined) {
      where = addWhere(where, predicate);
      changed = true;
    }
  };
  for (const item of walked.from.froms) scopeOnce(item, "target");
  for (const item of walked.using?.tables ?? []) scopeOnce(item, "using");
  const c = scopeClauses(undefined, walked.joins, where, w, "delete", "from");
  if (!changed && !c.changed) return walked;
  return Object.freeze({
    ...walked,
    ...(c.joins === undefined ? {} : { joins: c.joins }),
    ...(c.where === undefined ? {} : { where: c.where }),
  });
}

function scopeMerge(node: MergeQueryNode, w: Walk): OperationNode {
  let merged = visitChildren(node, w) as MergeQueryNode;
  // The target's rows are acted on by WHEN MATCHED and WHEN NOT MATCHED BY
  // SOURCE clauses: each gets the scope as an extra condition, so an
  // out-of-scope target row is left alone. WHEN NOT MATCHED inserts a new
  // row, which write hooks check.
  const target = predicateFor(merged.into, w, "merge", "target");
  if (target !== undefined && merged.whens !== undefined) {
    const whens = merged.whens.map((when) => {
      const matched = matchedOf(when.condition);
      if (matched === undefined) {
        throw new PluginError({
          plugin: w.plugins.map((p) => p.name).join(", "),
          hook: "scopeRows",
          operation: "merge",
          table: namedTable(merged.into)?.table ?? "?",
          cause: new Error("a row scope cannot be enforced on a MERGE clause without MATCHED"),
        });
      }
      return matched.not && !matched.bySource
        ? when
        : Object.freeze({ ...when, condition: AndNode.create(when.condition, parens(target)) }) as WhenNode;
    });
    merged = Object.freeze({ ...merged, whens: Object.freeze(whens) });
  }
  if (merged.using === undefined) return merged;
  const predicate = predicateFor(merged.using.table, w, "merge", "using");
  if (predicate === undefined) return merged;
  return Object.freeze({ ...merged, using: addOn(merged.using, predicate) });
}

/** The `MATCHED` of a WHEN condition: the condition itself, or the left of its ANDs. */
function matchedOf(condition: OperationNode): MatchedNode | undefined {
  let node: OperationNode = condition;
  while (node.kind === "AndNode") node = (node as AndNode).left;
  return node.kind === "MatchedNode" ? node as MatchedNode : undefined;
}
