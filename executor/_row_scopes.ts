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
  type CommonTableExpressionNode,
  type DeleteQueryNode,
  expressionBuilder,
  FromNode,
  FunctionNode,
  IdentifierNode,
  type InsertQueryNode,
  type JoinNode,
  type MatchedNode,
  type MergeQueryNode,
  OnDuplicateKeyNode,
  OnNode,
  type OperationNode,
  ParensNode,
  type RawNode,
  ReferenceNode,
  SelectionNode,
  SelectQueryNode,
  type TableNode,
  type UpdateQueryNode,
  type WhenNode,
  WhereNode,
  type WithNode,
} from "kysely";
import type {
  AnyExpressionBuilder,
  KyseraPlugin,
  QueryOperation,
  TableReference,
  TableReferencePosition,
} from "./kysera_plugin.ts";
import { deleteTargets, type NamedTable, namedTable, updateTargets } from "./query_tree.ts";
import { isInertRaw, runsSqlFromString } from "./_raw_sql.ts";
import { PluginError, wrapPluginError } from "./plugin_error.ts";

const EB: AnyExpressionBuilder = expressionBuilder();

/** Node kinds that can hold no query and no table reference (a switch: cheaper than a Set lookup). */
function isLeaf(kind: string): boolean {
  switch (kind) {
    case "ValueNode":
    case "PrimitiveValueListNode":
    case "IdentifierNode":
    case "ColumnNode":
    case "TableNode":
    case "SchemableIdentifierNode":
    case "OperatorNode":
    case "ReferenceNode":
    case "DefaultInsertValueNode":
    case "SelectAllNode":
    case "DataTypeNode":
      return true;
    default:
      return false;
  }
}

/** A raw node of letters and spaces only, as Kysely makes for `orderBy(column, "desc")`. */
function isWordsOnly(node: RawNode): boolean {
  return node.parameters.length === 0 && node.sqlFragments.length === 1 && /^[A-Za-z ]*$/.test(node.sqlFragments[0]!);
}

/** A name as SQL writes it unquoted: identifiers, dot-separated. */
function isPlainName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)*$/.test(name);
}

interface Walk {
  readonly plugins: readonly KyseraPlugin[];
  readonly statement: QueryOperation;
  readonly ctes: (readonly string[])[];
  /** What made the statement raw SQL (the first such piece), if anything did. */
  raw: string | undefined;
  /**
   * Whether the statement holds a piece Kysely writes into the SQL text in
   * a way that could open a comment (a raw fragment, a unary operator, a
   * `#` operator): then its compiled text is read once more (`_sql_text.ts`).
   */
  textCheck: boolean;
  /** Nodes the plugins' write hooks added (their raw SQL is the plugins', not the caller's). */
  readonly trusted: WeakSet<OperationNode> | undefined;
  /** Each plugin's context value, read once per query (on its first table reference). */
  contexts: unknown[] | undefined;
}

/** What {@linkcode applyRowScopes} returns. */
export interface ScopedTree {
  readonly node: OperationNode;
  /**
   * What in the statement is raw SQL no hook can read, which plugins
   * refusing raw SQL must refuse: a FROM/JOIN item no scope can reach, a SET
   * target no write hook can read (`set(sql\`tenant_id\`, 2)`), a raw
   * fragment that is not inert (see `_raw_sql.ts`), or a function that runs
   * SQL from a string. `undefined` when there is none.
   */
  readonly raw: string | undefined;
  /** Whether the compiled text needs the last look of `_sql_text.ts` (see the walk's `textCheck`). */
  readonly textCheck: boolean;
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
  trusted?: WeakSet<OperationNode>,
): ScopedTree {
  const walk: Walk = { plugins, statement, ctes: [], raw: undefined, textCheck: false, trusted, contexts: undefined };
  const node = visit(root, walk);
  return { node, raw: walk.raw, textCheck: walk.textCheck };
}

function visit(node: OperationNode, w: Walk): OperationNode {
  switch (node.kind) {
    case "SelectQueryNode":
      return withCtes(node as SelectQueryNode, w, (n) => scopeSelect(n, w));
    case "UpdateQueryNode":
      return withCtes(node as UpdateQueryNode, w, (n) => scopeUpdate(n, w));
    case "DeleteQueryNode":
      return withCtes(node as DeleteQueryNode, w, (n) => scopeDelete(n, w));
    case "MergeQueryNode":
      return withCtes(node as MergeQueryNode, w, (n) => scopeMerge(n, w));
    case "InsertQueryNode":
      return withCtes(node as InsertQueryNode, w, (n) => scopeInsert(n, w));
    case "UnaryOperationNode":
      // A unary minus before a negative literal compiles to `--1`.
      w.textCheck = true;
      return visitChildren(node, w);
    case "BinaryOperationNode": {
      // MySQL reads `#` (PostgreSQL's XOR, and its `#>` operators) as a comment.
      const operator = (node as unknown as { operator: OperationNode }).operator;
      if (operator.kind === "OperatorNode" && (operator as unknown as { operator: string }).operator.includes("#")) {
        w.textCheck = true;
      }
      return visitChildren(node, w);
    }
    case "RawNode":
      // Kysely's own words (`desc`, `nulls first`) cannot open a comment or a quote.
      if (!isWordsOnly(node as RawNode)) w.textCheck = true;
      if (w.raw === undefined && w.trusted?.has(node) !== true && !isInertRaw(node as RawNode)) {
        w.raw = "raw SQL fragment";
      }
      return visitChildren(node, w);
    case "FunctionNode":
    case "AggregateFunctionNode": {
      // Kysely writes a function's name into the SQL as given: anything but
      // a plain (schema-qualified) name is SQL no hook read.
      const name = (node as FunctionNode).func;
      if (!isPlainName(name)) w.raw ??= "function name that is not a plain name";
      else if (runsSqlFromString(name)) w.raw ??= "function that runs SQL from a string";
      return visitChildren(node, w);
    }
    case "ExplainNode": {
      // `explain(format)`: the format is written into the SQL as given.
      const format = (node as unknown as { format?: unknown }).format;
      if (format !== undefined && !(typeof format === "string" && isPlainName(format))) {
        w.raw ??= "explain format that is not a plain word";
      }
      return visitChildren(node, w);
    }
    default:
      return isLeaf(node.kind) ? node : visitChildren(node, w);
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
        if (!isNode(item) || isLeaf(item.kind)) continue;
        const changed = visit(item, w);
        if (changed !== item) {
          list ??= [...value];
          list[i] = changed;
        }
      }
      if (list !== undefined) next = Object.freeze(list);
    } else if (isNode(value) && !isLeaf(value.kind)) {
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

/**
 * Scopes a statement that may carry a WITH clause. The names a WITH defines
 * hide tables only where the database resolves them to the CTE: in the
 * statement's body, everywhere; inside the CTE bodies, only the CTEs defined
 * earlier (and, under WITH RECURSIVE, the CTE itself). PostgreSQL and MySQL
 * resolve `with posts as (select * from posts)` to the real table inside the
 * body, so the body's `posts` is scoped like any table. (SQLite rejects that
 * as a circular reference, and PostgreSQL's WITH RECURSIVE also sees later
 * CTEs: scoping such a reference as a table is the cautious reading.)
 */
function withCtes<N extends OperationNode>(node: N, w: Walk, fn: (node: N) => OperationNode): OperationNode {
  const withNode = (node as unknown as SelectQueryNode).with;
  if (withNode === undefined) return fn(node);
  const names = withNode.expressions.map((e) => e.name.table.table.identifier.name);
  let expressions: CommonTableExpressionNode[] | undefined;
  withNode.expressions.forEach((cte, i) => {
    w.ctes.push(names.slice(0, withNode.recursive === true ? i + 1 : i));
    try {
      const body = visit(cte.expression, w);
      if (body !== cte.expression) {
        expressions ??= [...withNode.expressions];
        expressions[i] = Object.freeze({ ...cte, expression: body });
      }
    } finally {
      w.ctes.pop();
    }
  });
  const newWith = expressions === undefined
    ? withNode
    : Object.freeze({ ...withNode, expressions: Object.freeze(expressions) }) as WithNode;
  // The body is walked without its WITH (already walked above), under every name.
  const body = Object.freeze({ ...node, with: undefined }) as N;
  w.ctes.push(names);
  let scoped: OperationNode;
  try {
    scoped = fn(body);
  } finally {
    w.ctes.pop();
  }
  if (scoped === body && newWith === withNode) return node;
  return Object.freeze({ ...scoped, with: newWith }) as OperationNode;
}

function isCte(table: NamedTable, w: Walk): boolean {
  if (table.schema !== undefined) return false;
  return w.ctes.some((names) => names.includes(table.table));
}

/**
 * The combined predicate of every plugin for one FROM/JOIN/target item.
 * With `written`, the item is a table the statement writes (an UPDATE,
 * DELETE, MERGE or INSERT target), which the database resolves to the real
 * table even where a CTE has its name.
 */
function predicateFor(
  item: OperationNode,
  w: Walk,
  operation: QueryOperation,
  position: TableReferencePosition,
  written = false,
): OperationNode | undefined {
  const table = namedTable(item);
  if (table === undefined) {
    const inner = item.kind === "AliasNode" ? (item as AliasNode).node : item;
    if (inner.kind === "RawNode") w.raw ??= "raw table source";
    return undefined;
  }
  if (!written && isCte(table, w)) return undefined;
  const columns = columnsOf(table);
  const contexts = w.contexts ??= w.plugins.map((p) => p.context?.get());
  let predicate: OperationNode | undefined;
  for (let i = 0; i < w.plugins.length; i++) {
    const plugin = w.plugins[i] as KyseraPlugin;
    const ref: TableReference = {
      table: table.table,
      alias: table.alias,
      schema: table.schema,
      operation,
      statement: w.statement,
      position,
      context: contexts[i],
      column: columns,
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

/** A column reference as an expression (`TableReference.column`'s result). */
class ColumnExpression {
  readonly #node: ReferenceNode;
  constructor(node: ReferenceNode) {
    this.#node = node;
  }
  get expressionType(): undefined {
    return undefined;
  }
  toOperationNode(): ReferenceNode {
    return this.#node;
  }
}

/**
 * The `column(name)` functions per qualifier (the alias; or the table, by
 * schema), each caching its column expressions: nodes are immutable, so
 * every query may share them. Bounded, as aliases could be generated.
 */
const BY_ALIAS = new Map<string, (name: string) => ColumnExpression>();
const BY_TABLE = new Map<string, (name: string) => ColumnExpression>();
const BY_SCHEMA = new Map<string, Map<string, (name: string) => ColumnExpression>>();
const MAX_CACHED = 256;

/** The `column(name)` of a reference: its columns, qualified by its alias (or its schema and name). */
function columnsOf(table: NamedTable): (name: string) => ColumnExpression {
  let cache: Map<string, (name: string) => ColumnExpression>;
  let key: string;
  if (table.alias !== undefined) {
    cache = BY_ALIAS;
    key = table.alias;
  } else if (table.schema === undefined) {
    cache = BY_TABLE;
    key = table.table;
  } else {
    let bySchema = BY_SCHEMA.get(table.schema);
    if (bySchema === undefined) {
      if (BY_SCHEMA.size >= MAX_CACHED) BY_SCHEMA.clear();
      BY_SCHEMA.set(table.schema, bySchema = new Map());
    }
    cache = bySchema;
    key = table.table;
  }
  let column = cache.get(key);
  if (column === undefined) {
    if (cache.size >= MAX_CACHED) cache.clear();
    column = columnFunction(table.alias === undefined ? table.node : tableNodeOf(table.alias));
    cache.set(key, column);
  }
  return column;
}

function columnFunction(qualifier: TableNode): (name: string) => ColumnExpression {
  const cache = new Map<string, ColumnExpression>();
  return (name) => {
    let expression = cache.get(name);
    if (expression === undefined) {
      if (cache.size >= MAX_CACHED) cache.clear();
      expression = new ColumnExpression(ReferenceNode.create(ColumnNode.create(name), qualifier));
      cache.set(name, expression);
    }
    return expression;
  };
}

/**
 * `a AND b`, each side its own conjunct: anything that is not known to bind
 * tighter than AND (see {@linkcode isConjunct}) is parenthesized, so no
 * OR, raw fragment or operator of the caller's can take a scope into it.
 */
function and(a: OperationNode, b: OperationNode): OperationNode {
  return AndNode.create(parens(a), parens(b));
}

function parens(node: OperationNode): OperationNode {
  return isConjunct(node) ? node : ParensNode.create(node);
}

/** Comparison operators, which bind tighter than AND and OR on every dialect. */
const COMPARISONS: ReadonlySet<string> = new Set([
  "=",
  "==",
  "!=",
  "<>",
  "<",
  "<=",
  ">",
  ">=",
  "in",
  "not in",
  "is",
  "is not",
  "like",
  "not like",
  "ilike",
  "not ilike",
]);

/**
 * Whether a condition can stand as an operand of AND without parentheses.
 * An allow-list: parentheses, ANDs of such conditions (ours among them),
 * `[not] exists (subquery)`, and comparisons (by a known operator) between
 * references, values, value lists, function calls and subqueries (which
 * Kysely compiles in parentheses), each of which compiles to one operand.
 * Everything else (OR, NOT, a raw fragment, MySQL's `||`, a comparison
 * whose side is itself an operation) gets parentheses.
 */
function isConjunct(node: OperationNode): boolean {
  if (node.kind === "ParensNode") return true;
  if (node.kind === "AndNode") return isConjunct((node as AndNode).left) && isConjunct((node as AndNode).right);
  if (node.kind === "UnaryOperationNode") {
    const op = node as unknown as { operator: OperationNode; operand: OperationNode };
    const name = op.operator.kind === "OperatorNode"
      ? (op.operator as unknown as { operator: string }).operator.toLowerCase()
      : "";
    return (name === "exists" || name === "not exists") && op.operand.kind === "SelectQueryNode";
  }
  if (node.kind !== "BinaryOperationNode") return false;
  const op = node as unknown as { leftOperand: OperationNode; operator: OperationNode; rightOperand: OperationNode };
  if (op.operator.kind !== "OperatorNode") return false;
  const name = (op.operator as unknown as { operator: string }).operator;
  return (COMPARISONS.has(name) || COMPARISONS.has(name.toLowerCase())) &&
    isOperand(op.leftOperand) && isOperand(op.rightOperand);
}

function isOperand(node: OperationNode): boolean {
  switch (node.kind) {
    case "ReferenceNode":
    case "ColumnNode":
    case "ValueNode":
    case "PrimitiveValueListNode":
    case "ValueListNode":
    case "ParensNode":
    case "SelectQueryNode":
      return true;
    case "FunctionNode":
      return isPlainName((node as FunctionNode).func);
    default:
      return false;
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
  let outer = false;
  if (joins !== undefined) {
    for (const j of joins) if (j.joinType === "RightJoin" || j.joinType === "FullJoin") outer = true;
  }
  // Lists are copied only when an item itself changes (a derived table, a
  // join's ON): a predicate that goes to WHERE leaves FROM as it is.
  let newFroms = froms;
  if (froms !== undefined) {
    let list: OperationNode[] | undefined;
    for (let i = 0; i < froms.length; i++) {
      const item = froms[i] as OperationNode;
      const predicate = predicateFor(item, w, operation, fromPosition);
      if (predicate === undefined) continue;
      changed = true;
      if (outer) (list ??= [...froms])[i] = derived(item, predicate, w, operation);
      else where = addWhere(where, predicate);
    }
    if (list !== undefined) newFroms = Object.freeze(list);
  }
  let newJoins = joins;
  if (joins !== undefined) {
    let list: JoinNode[] | undefined;
    for (let i = 0; i < joins.length; i++) {
      const join = joins[i] as JoinNode;
      const predicate = predicateFor(join.table, w, operation, "join");
      if (predicate === undefined) continue;
      changed = true;
      if (outer) {
        (list ??= [...joins])[i] = Object.freeze({ ...join, table: derived(join.table, predicate, w, operation) });
      } else if (join.on === undefined) {
        // CROSS JOIN and friends have no ON: the predicate filters in WHERE.
        where = addWhere(where, predicate);
      } else {
        (list ??= [...joins])[i] = addOn(join, predicate);
      }
    }
    if (list !== undefined) newJoins = Object.freeze(list);
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
  checkSetTargets(walked.onConflict?.updates, w);
  checkSetTargets(walked.onDuplicateKey?.updates, w);
  const conflict = walked.onConflict?.updates !== undefined ? walked.onConflict : undefined;
  const duplicate = walked.onDuplicateKey;
  if ((conflict === undefined && duplicate === undefined) || walked.into === undefined) return walked;
  const predicate = predicateFor(walked.into, w, "update", "conflict-update", true);
  if (predicate === undefined) return walked;
  if (conflict !== undefined) {
    // Kysely's OnConflictNode.cloneWithUpdateWhere would AND the predicate
    // on without brackets: the caller's `DO UPDATE ... WHERE a OR b` would
    // take it in.
    const where = addWhere(conflict.updateWhere, predicate);
    return Object.freeze({ ...walked, onConflict: Object.freeze({ ...conflict, updateWhere: where }) });
  }
  const updates = duplicate!.updates.map((update) =>
    ColumnUpdateNode.create(
      update.column,
      FunctionNode.create("if", [predicate, update.value, update.column]),
    )
  );
  return Object.freeze({ ...walked, onDuplicateKey: OnDuplicateKeyNode.create(updates) });
}

/**
 * Flags SET targets that are neither a column nor a column reference (raw
 * SQL): write hooks see only named columns, so such a write is unchecked.
 */
function checkSetTargets(updates: readonly ColumnUpdateNode[] | undefined, w: Walk): void {
  if (updates === undefined) return;
  for (const update of updates) {
    const column = update.column;
    if (column.kind === "ColumnNode") continue;
    if (column.kind === "ReferenceNode" && (column as ReferenceNode).column.kind === "ColumnNode") continue;
    w.raw ??= "raw SET target";
  }
}

function scopeUpdate(node: UpdateQueryNode, w: Walk): OperationNode {
  const walked = visitChildren(node, w) as UpdateQueryNode;
  checkSetTargets(walked.updates, w);
  let where = walked.where;
  let changed = false;
  for (const target of updateTargets(walked)) {
    const predicate = predicateFor(target, w, "update", "target", true);
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
  const copy = { ...node } as { -readonly [K in keyof N]: N[K] };
  if (c.froms !== undefined && c.froms !== node.from?.froms) copy.from = FromNode.create(c.froms);
  if (c.joins !== undefined && c.joins !== node.joins) copy.joins = c.joins;
  if (c.where !== undefined) copy.where = c.where;
  return Object.freeze(copy) as N;
}

function scopeDelete(node: DeleteQueryNode, w: Walk): OperationNode {
  const walked = visitChildren(node, w) as DeleteQueryNode;
  // DELETE's FROM lists the targets; USING (and MySQL's joins) the other
  // tables. In MySQL's multi-table form a target names a USING/JOIN item
  // (`delete p from posts as p`, `deleteFrom("p").using("posts as p")`):
  // that item is the table written, scoped as the target, once.
  let where = walked.where;
  let changed = false;
  const resolved = new Set<OperationNode>();
  for (const { item, viaUsing } of deleteTargets(walked)) {
    if (viaUsing) {
      if (resolved.has(item)) continue;
      resolved.add(item);
    }
    const predicate = predicateFor(item, w, "delete", "target", true);
    if (predicate !== undefined) {
      where = addWhere(where, predicate);
      changed = true;
    }
  }
  for (const item of walked.using?.tables ?? []) {
    if (resolved.has(item)) continue;
    const predicate = predicateFor(item, w, "delete", "using");
    if (predicate !== undefined) {
      where = addWhere(where, predicate);
      changed = true;
    }
  }
  // A join a target resolved to is scoped as the target (in WHERE); the
  // others as joins.
  const joins = walked.joins?.filter((j) => !resolved.has(j.table));
  for (const join of walked.joins ?? []) {
    if (!resolved.has(join.table)) continue;
    const predicate = predicateFor(join.table, w, "delete", "target", true);
    if (predicate !== undefined) {
      where = addWhere(where, predicate);
      changed = true;
    }
  }
  const c = scopeClauses(undefined, joins, where, w, "delete", "from");
  if (!changed && !c.changed) return walked;
  let newJoins = walked.joins;
  if (c.joins !== undefined && c.joins !== joins && walked.joins !== undefined) {
    // Put the scoped joins back in their places among the resolved ones.
    const scoped = [...c.joins];
    newJoins = Object.freeze(walked.joins.map((j) => resolved.has(j.table) ? j : scoped.shift()!));
  }
  return Object.freeze({
    ...walked,
    ...(newJoins === undefined ? {} : { joins: newJoins }),
    ...(c.where === undefined ? {} : { where: c.where }),
  });
}

function scopeMerge(node: MergeQueryNode, w: Walk): OperationNode {
  let merged = visitChildren(node, w) as MergeQueryNode;
  // The target's rows are acted on by WHEN MATCHED and WHEN NOT MATCHED BY
  // SOURCE clauses: each gets the scope as an extra condition, so an
  // out-of-scope target row is left alone. WHEN NOT MATCHED inserts a new
  // row, which write hooks check.
  const target = predicateFor(merged.into, w, "merge", "target", true);
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
      if (matched.node.not && !matched.node.bySource) return when;
      // `MATCHED AND (<the caller's condition>) AND <scope>`: the caller's
      // condition bracketed, so no OR of it takes the scope in.
      // (MATCHED itself takes no parentheses.)
      const condition = AndNode.create(
        matched.rest === undefined ? matched.node : AndNode.create(matched.node, parens(matched.rest)),
        parens(target),
      );
      return Object.freeze({ ...when, condition }) as WhenNode;
    });
    merged = Object.freeze({ ...merged, whens: Object.freeze(whens) });
  }
  if (merged.using === undefined) return merged;
  const predicate = predicateFor(merged.using.table, w, "merge", "using");
  if (predicate === undefined) return merged;
  return Object.freeze({ ...merged, using: addOn(merged.using, predicate) });
}

/**
 * The `MATCHED` of a WHEN condition (the condition itself, or the leftmost
 * of its ANDs) and the rest of the condition, ANDed as written.
 */
function matchedOf(condition: OperationNode): { node: MatchedNode; rest: OperationNode | undefined } | undefined {
  const terms: OperationNode[] = [];
  let node: OperationNode = condition;
  while (node.kind === "AndNode") {
    terms.unshift((node as AndNode).right);
    node = (node as AndNode).left;
  }
  if (node.kind !== "MatchedNode") return undefined;
  const rest = terms.length === 0 ? undefined : terms.reduce((a, b) => AndNode.create(a, b));
  return { node: node as MatchedNode, rest };
}
