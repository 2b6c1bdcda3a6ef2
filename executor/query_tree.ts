/**
 * Reading facts off Kysely's operation-node tree: which statement a root
 * node is, which tables it writes and how, what an INSERT's rows and an
 * UPDATE's SET entries hold, and every table a statement names. The
 * executor's hooks and every plugin read the tree through these functions,
 * so that one reading (aliases, MySQL's multi-table UPDATE and DELETE,
 * SQLite's `INSERT OR REPLACE`, data-modifying CTEs) holds everywhere. Only
 * Kysely's public node types are used.
 *
 * @module
 */
import type {
  AliasNode,
  ColumnNode,
  ColumnUpdateNode,
  CommonTableExpressionNode,
  DeleteQueryNode,
  IdentifierNode,
  InsertQueryNode,
  MergeQueryNode,
  OperationNode,
  PrimitiveValueListNode,
  ReferenceNode,
  SelectQueryNode,
  TableNode,
  UpdateQueryNode,
  ValueListNode,
  ValuesNode,
} from "kysely";
import { ValueNode } from "kysely";
import type { QueryOperation } from "./kysera_plugin.ts";
import type { DialectName } from "../core/mod.ts";

/**
 * A table as a query names it.
 *
 * @example Reading a FROM item
 * ```ts
 * import { Kysely, SqliteAdapter, DummyDriver, SqliteIntrospector, SqliteQueryCompiler } from "kysely";
 * import { namedTable, type NamedTable } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const db = new Kysely<any>({ dialect: {
 *   createAdapter: () => new SqliteAdapter(), createDriver: () => new DummyDriver(),
 *   createIntrospector: (db) => new SqliteIntrospector(db), createQueryCompiler: () => new SqliteQueryCompiler(),
 * } });
 * const from = db.selectFrom("posts as p").selectAll().toOperationNode().from!.froms[0];
 * const table: NamedTable | undefined = namedTable(from);
 * assert.deepEqual([table?.table, table?.alias, table?.schema], ["posts", "p", undefined]);
 * ```
 */
export interface NamedTable {
  /** The table's name. */
  readonly table: string;
  /** Its schema, when the query names one (or `withSchema` set it). */
  readonly schema: string | undefined;
  /** Its alias, when it has one. */
  readonly alias: string | undefined;
  /** The TableNode itself (with its schema). */
  readonly node: TableNode;
}

/**
 * The operation of a root node, or `undefined` for DDL and raw nodes. An
 * INSERT that replaces conflicting rows (MySQL `REPLACE INTO`, SQLite
 * `INSERT OR REPLACE`) is `"replace"`: it deletes rows first.
 *
 * @param node A root operation node.
 * @returns Its operation.
 *
 * @example The operation of a query tree
 * ```ts
 * import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from "kysely";
 * import { operationOf } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const db = new Kysely<any>({ dialect: {
 *   createAdapter: () => new SqliteAdapter(), createDriver: () => new DummyDriver(),
 *   createIntrospector: (db) => new SqliteIntrospector(db), createQueryCompiler: () => new SqliteQueryCompiler(),
 * } });
 * const node = db.insertInto("posts").orReplace().values({ id: 1 }).toOperationNode();
 * assert.equal(operationOf(node), "replace");
 * ```
 */
export function operationOf(node: OperationNode): QueryOperation | undefined {
  switch (node.kind) {
    case "SelectQueryNode":
      return "select";
    case "InsertQueryNode":
      return replaces(node as InsertQueryNode) ? "replace" : "insert";
    case "UpdateQueryNode":
      return "update";
    case "DeleteQueryNode":
      return "delete";
    case "MergeQueryNode":
      return "merge";
    default:
      return undefined;
  }
}

/** Whether an INSERT replaces conflicting rows: `REPLACE INTO`, or SQLite's `INSERT OR REPLACE`. */
function replaces(node: InsertQueryNode): boolean {
  return node.replace === true || node.orAction?.action.toLowerCase() === "replace";
}

/**
 * Reads a table (possibly aliased) from a FROM/JOIN/target item.
 *
 * @param item A FROM, JOIN or target item.
 * @returns The table, or `undefined` when the item is not a plain table
 * (a subquery, raw SQL).
 *
 * @example The table of a FROM item
 * ```ts
 * import { AliasNode, IdentifierNode, TableNode } from "kysely";
 * import { namedTable } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const item = AliasNode.create(TableNode.create("posts"), IdentifierNode.create("p"));
 * assert.equal(namedTable(item)?.alias, "p");
 * ```
 */
export function namedTable(item: OperationNode | undefined): NamedTable | undefined {
  if (item === undefined) return undefined;
  if (item.kind === "TableNode") return fromTableNode(item as TableNode, undefined);
  if (item.kind === "AliasNode") {
    const aliased = item as AliasNode;
    if (aliased.node.kind !== "TableNode") return undefined;
    const alias = aliased.alias.kind === "IdentifierNode" ? (aliased.alias as IdentifierNode).name : undefined;
    return fromTableNode(aliased.node as TableNode, alias);
  }
  return undefined;
}

function fromTableNode(node: TableNode, alias: string | undefined): NamedTable {
  return { table: node.table.identifier.name, schema: node.table.schema?.name, alias, node };
}

/**
 * The top-level table of a statement: the first FROM item of a select, the
 * first written table of an insert, update, delete or merge.
 *
 * @param node A root operation node.
 * @returns The table, or `undefined` when it is not a plain table.
 *
 * @example The target table of a write
 * ```ts
 * import { AliasNode, IdentifierNode, TableNode, UpdateQueryNode } from "kysely";
 * import { targetOf } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const update = UpdateQueryNode.create([AliasNode.create(TableNode.create("posts"), IdentifierNode.create("p"))]);
 * assert.equal(targetOf(update)?.table, "posts");
 * ```
 */
export function targetOf(node: OperationNode): NamedTable | undefined {
  switch (node.kind) {
    case "SelectQueryNode":
      return namedTable((node as SelectQueryNode).from?.froms[0]);
    case "InsertQueryNode":
    case "UpdateQueryNode":
    case "DeleteQueryNode":
    case "MergeQueryNode":
      return namedTable(writeTargets(node)[0]);
    default:
      return undefined;
  }
}

/**
 * The items of an UPDATE's table list: one, or several in MySQL's
 * multi-table `update a, b set ...`.
 *
 * @param node An UPDATE.
 * @returns Its target items (tables, aliased or not; anything else is raw SQL or a subquery).
 *
 * @example The tables an UPDATE writes
 * ```ts
 * import { TableNode, UpdateQueryNode } from "kysely";
 * import { updateTargets } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const update = UpdateQueryNode.create([TableNode.create("posts"), TableNode.create("users")]);
 * assert.equal(updateTargets(update).length, 2);
 * ```
 */
export function updateTargets(node: UpdateQueryNode): readonly OperationNode[] {
  const table = node.table;
  if (table === undefined) return [];
  return table.kind === "ListNode" ? (table as unknown as { items: readonly OperationNode[] }).items : [table];
}

/** A name as a DELETE target or a FROM/USING item is referred to: its alias, else its table name. */
function referredName(item: OperationNode): string | undefined {
  const table = namedTable(item);
  return table === undefined ? undefined : table.alias ?? table.table;
}

/**
 * How the targets of a DELETE resolve. PostgreSQL's and SQLite's `delete
 * from t` names the table it deletes from; MySQL's multi-table form
 * (`delete p from posts as p ...`, which Kysely builds as
 * `deleteFrom("p").using("posts as p")`) names items of its USING list (or
 * joins) by alias or table name, and those items are the tables written.
 *
 * @param node A DELETE.
 * @returns For each target item: the item that is the written table (the
 * target itself, or the USING/JOIN item it names), and whether it was
 * resolved through USING/JOIN.
 *
 * @example The tables a DELETE writes
 * ```ts
 * import { DummyDriver, Kysely, MysqlAdapter, MysqlIntrospector, MysqlQueryCompiler } from "kysely";
 * import { deleteTargets, namedTable } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const db = new Kysely<any>({ dialect: {
 *   createAdapter: () => new MysqlAdapter(), createDriver: () => new DummyDriver(),
 *   createIntrospector: (db) => new MysqlIntrospector(db), createQueryCompiler: () => new MysqlQueryCompiler(),
 * } });
 * const node = db.deleteFrom("p").using("posts as p").toOperationNode();
 * const [target] = deleteTargets(node);
 * assert.equal(namedTable(target?.item)?.table, "posts");
 * ```
 */
export function deleteTargets(node: DeleteQueryNode): readonly { item: OperationNode; viaUsing: boolean }[] {
  const sources: OperationNode[] = [...(node.using?.tables ?? []), ...(node.joins ?? []).map((j) => j.table)];
  return node.from.froms.map((target) => {
    if (sources.length > 0) {
      const own = namedTable(target);
      // A bare name (no alias, no schema) may refer to a source by its alias
      // or table name; MySQL compares aliases case-insensitively on
      // case-insensitive file systems, so the comparison folds case.
      if (own !== undefined && own.alias === undefined && own.schema === undefined) {
        const name = own.table.toLowerCase();
        const source = sources.find((s) => referredName(s)?.toLowerCase() === name);
        if (source !== undefined) return { item: source, viaUsing: true };
      }
    }
    return { item: target, viaUsing: false };
  });
}

/**
 * The items a write statement writes: an INSERT's or MERGE's target, every
 * table of an UPDATE's list, every DELETE target resolved to the table it
 * names (see {@linkcode deleteTargets}). A database resolves these to real
 * tables, never to a CTE of the same name. Empty for a select.
 *
 * @param node A root operation node.
 * @returns The written items (tables, aliased or not; anything else is raw SQL).
 *
 * @example The tables a write touches
 * ```ts
 * import { TableNode, UpdateQueryNode } from "kysely";
 * import { namedTable, writeTargets } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const update = UpdateQueryNode.create([TableNode.create("posts")]);
 * assert.deepEqual(writeTargets(update).map((t) => namedTable(t)?.table), ["posts"]);
 * ```
 */
export function writeTargets(node: OperationNode): readonly OperationNode[] {
  switch (node.kind) {
    case "InsertQueryNode": {
      const into = (node as InsertQueryNode).into;
      return into === undefined ? [] : [into];
    }
    case "UpdateQueryNode":
      return updateTargets(node as UpdateQueryNode);
    case "DeleteQueryNode":
      return deleteTargets(node as DeleteQueryNode).map((t) => t.item);
    case "MergeQueryNode":
      return [(node as MergeQueryNode).into];
    default:
      return [];
  }
}

/**
 * The column a SET entry writes and the table name or alias that qualifies
 * it: `set({ a: 1 })` gives a ColumnNode, `set("a", 1)` an unqualified
 * ReferenceNode, `set("p.a", 1)` (MySQL) a qualified one.
 *
 * @param column The `column` of a `ColumnUpdateNode`.
 * @returns The column and its qualifier, or `undefined` for raw SQL (which
 * no hook can read).
 *
 * @example The column of a SET entry
 * ```ts
 * import { ColumnNode, ColumnUpdateNode, ValueNode } from "kysely";
 * import { setColumn } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const update = ColumnUpdateNode.create(ColumnNode.create("title"), ValueNode.create("x"));
 * assert.deepEqual(setColumn(update.column), { name: "title", qualifier: undefined });
 * ```
 */
export function setColumn(column: OperationNode): { name: string; qualifier: string | undefined } | undefined {
  if (column.kind === "ColumnNode") return { name: (column as ColumnNode).column.name, qualifier: undefined };
  if (column.kind === "ReferenceNode") {
    const ref = column as ReferenceNode;
    if (ref.column.kind !== "ColumnNode") return undefined;
    return { name: (ref.column as ColumnNode).column.name, qualifier: ref.table?.table.identifier.name };
  }
  return undefined;
}

/**
 * The SET entries of an UPDATE (or upsert) as columns and value nodes,
 * skipping raw SQL targets.
 *
 * @param updates The `ColumnUpdateNode`s.
 * @returns Each entry's column, qualifier and value node.
 *
 * @example The SET entries of an UPDATE
 * ```ts
 * import { ColumnNode, ColumnUpdateNode, ValueNode } from "kysely";
 * import { setEntries } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const entries = setEntries([ColumnUpdateNode.create(ColumnNode.create("title"), ValueNode.create("x"))]);
 * assert.equal(entries[0]?.name, "title");
 * ```
 */
export function setEntries(
  updates: readonly ColumnUpdateNode[] | undefined,
): { name: string; qualifier: string | undefined; value: OperationNode }[] {
  const out: { name: string; qualifier: string | undefined; value: OperationNode }[] = [];
  for (const update of updates ?? []) {
    const column = setColumn(update.column);
    if (column !== undefined) out.push({ ...column, value: update.value });
  }
  return out;
}

/**
 * What an INSERT writes, read off its node. `values`: the rows of
 * `insert ... values`, each a column-to-value-node map (a column left to its
 * default is absent); `select`: `insert ... select` (no rows); `raw`: a raw
 * SQL source (`.expression(sql\`values (...)\`)`), whose values no hook can
 * read.
 *
 * @param node An INSERT.
 * @returns Its columns, the kind of source, and the rows of a VALUES list.
 *
 * @example The rows of an INSERT
 * ```ts
 * import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from "kysely";
 * import { insertedRows } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const db = new Kysely<any>({ dialect: {
 *   createAdapter: () => new SqliteAdapter(), createDriver: () => new DummyDriver(),
 *   createIntrospector: (db) => new SqliteIntrospector(db), createQueryCompiler: () => new SqliteQueryCompiler(),
 * } });
 * const rows = insertedRows(db.insertInto("posts").values([{ id: 1 }, { id: 2 }]).toOperationNode());
 * assert.deepEqual([rows.kind, rows.columns, rows.rows.length], ["values", ["id"], 2]);
 * ```
 */
export function insertedRows(node: InsertQueryNode): {
  kind: "values" | "select" | "raw";
  columns: string[];
  rows: Map<string, OperationNode>[];
} {
  const columns = (node.columns ?? []).map((c) => c.column.name);
  const values = node.values;
  if (values === undefined) return { kind: "values", columns, rows: [new Map()] };
  if (values.kind === "SelectQueryNode") return { kind: "select", columns, rows: [] };
  if (values.kind !== "ValuesNode") return { kind: "raw", columns, rows: [] };
  const rows = (values as ValuesNode).values.map((row) => {
    const out = new Map<string, OperationNode>();
    if (row.kind === "PrimitiveValueListNode") {
      const list = (row as PrimitiveValueListNode).values;
      columns.forEach((column, i) => {
        if (i < list.length) out.set(column, ValueNode.create(list[i]));
      });
    } else {
      const list = (row as ValueListNode).values;
      columns.forEach((column, i) => {
        const item = list[i];
        if (item !== undefined && item.kind !== "DefaultInsertValueNode") out.set(column, item);
      });
    }
    return out;
  });
  return { kind: "values", columns, rows };
}

const WRITE_KINDS: ReadonlySet<string> = new Set([
  "InsertQueryNode",
  "UpdateQueryNode",
  "DeleteQueryNode",
  "MergeQueryNode",
]);

/**
 * The write statements of a statement's WITH clause (PostgreSQL's
 * data-modifying CTEs, `with x as (insert ... returning ...) select ...`).
 *
 * @param node A root operation node.
 * @returns The CTEs whose body writes.
 *
 * @example Writes inside WITH clauses
 * ```ts
 * import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from "kysely";
 * import { cteWrites } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const db = new Kysely<any>({ dialect: {
 *   createAdapter: () => new PostgresAdapter(), createDriver: () => new DummyDriver(),
 *   createIntrospector: (db) => new PostgresIntrospector(db), createQueryCompiler: () => new PostgresQueryCompiler(),
 * } });
 * const node = db.with("d", (qc) => qc.deleteFrom("posts").returning("id")).selectFrom("d").selectAll()
 *   .toOperationNode();
 * assert.equal(cteWrites(node).length, 1);
 * ```
 */
export function cteWrites(node: OperationNode): readonly CommonTableExpressionNode[] {
  const expressions = (node as { with?: { expressions: readonly CommonTableExpressionNode[] } }).with?.expressions;
  return expressions === undefined ? [] : expressions.filter((cte) => WRITE_KINDS.has(cte.expression.kind));
}

/**
 * Whether a root node writes: an INSERT, UPDATE, DELETE or MERGE, or a
 * statement with a data-modifying CTE.
 *
 * @param node A root operation node.
 * @returns `true` for a write.
 *
 * @example Telling writes from reads
 * ```ts
 * import { SelectQueryNode } from "kysely";
 * import { isWrite } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isWrite(SelectQueryNode.create()), false);
 * ```
 */
export function isWrite(node: OperationNode): boolean {
  return WRITE_KINDS.has(node.kind) || cteWrites(node).length > 0;
}

/**
 * Whether the dialect compares column names case-insensitively: SQLite and
 * MySQL/MariaDB always do, as does SQL Server under its default collation;
 * PostgreSQL compares the quoted identifiers Kysely writes exactly. An
 * unknown dialect is taken as case-insensitive, the cautious reading for a
 * hook that guards a column.
 *
 * @param dialect The executor's dialect.
 * @returns `true` when `TENANT_ID` and `tenant_id` are one column.
 *
 * @example Dialects that fold column names
 * ```ts
 * import { foldsColumnNames } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([foldsColumnNames("sqlite"), foldsColumnNames("postgres")], [true, false]);
 * ```
 */
export function foldsColumnNames(dialect: DialectName | undefined): boolean {
  return dialect !== "postgres";
}

/**
 * A row of written values whose lookups find a column the way the database
 * does: on a dialect that folds column names ({@linkcode foldsColumnNames}),
 * `row.tenant_id`, `"tenant_id" in row` and `Object.hasOwn(row,
 * "tenant_id")` find a value written as `TENANT_ID`. Spread and
 * `Object.keys` give the names as written. On other dialects, `row` itself.
 *
 * @param row Column to value, as the statement spells the columns.
 * @param dialect The executor's dialect.
 * @returns The row, read as the database reads it.
 *
 * @example A row keyed by column name
 * ```ts
 * import { columnRow } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const row = columnRow({ TENANT_ID: 2 }, "mysql");
 * assert.equal(row.tenant_id, 2);
 * assert.equal(Object.hasOwn(columnRow({ TENANT_ID: 2 }, "postgres"), "tenant_id"), false);
 * ```
 */
export function columnRow(row: Record<string, unknown>, dialect: DialectName | undefined): Record<string, unknown> {
  if (!foldsColumnNames(dialect)) return row;
  const names = Object.keys(row);
  if (names.length === 0) return row;
  const index = new Map(names.map((name) => [name.toLowerCase(), name]));
  const own = (property: string | symbol): string | symbol =>
    typeof property === "string" && !Object.hasOwn(row, property)
      ? index.get(property.toLowerCase()) ?? property
      : property;
  return new Proxy(row, {
    get: (target, property, receiver) => Reflect.get(target, own(property), receiver),
    has: (target, property) => Reflect.has(target, own(property)),
    getOwnPropertyDescriptor: (target, property) => Reflect.getOwnPropertyDescriptor(target, own(property)),
  });
}

/**
 * Every table a statement names, in any clause and at any depth (FROM,
 * joins, subqueries, CTE bodies, set operations, write targets, USING,
 * MERGE sources), CTE references included, each once by schema and name.
 *
 * @param node A root operation node.
 * @returns The tables, in the order first met.
 *
 * @example Every table a statement names
 * ```ts
 * import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from "kysely";
 * import { statementTables } from "@kysera/kysera/executor";
 * import assert from "node:assert/strict";
 *
 * const db = new Kysely<any>({ dialect: {
 *   createAdapter: () => new SqliteAdapter(), createDriver: () => new DummyDriver(),
 *   createIntrospector: (db) => new SqliteIntrospector(db), createQueryCompiler: () => new SqliteQueryCompiler(),
 * } });
 * const node = db.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id")
 *   .where("p.id", "in", (eb: any) => eb.selectFrom("tags").select("post_id")).selectAll().toOperationNode();
 * assert.deepEqual(statementTables(node).map((t) => t.table), ["posts", "users", "tags"]);
 * ```
 */
export function statementTables(node: OperationNode): NamedTable[] {
  const seen = new Set<string>();
  const out: NamedTable[] = [];
  const visit = (n: OperationNode): void => {
    if (n.kind === "TableNode" || (n.kind === "AliasNode" && (n as AliasNode).node.kind === "TableNode")) {
      const table = namedTable(n)!;
      const key = `${table.schema ?? ""}\u0000${table.table}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(table);
      }
      return;
    }
    // Column references name a table as their qualifier, not as a source.
    if (n.kind === "ReferenceNode" || n.kind === "ColumnNode" || n.kind === "IdentifierNode") return;
    for (const key in n) {
      const value = (n as unknown as Record<string, unknown>)[key];
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) visit(item);
      } else if (isNode(value)) visit(value);
    }
  };
  visit(node);
  return out;
}

function isNode(value: unknown): value is OperationNode {
  return typeof value === "object" && value !== null && typeof (value as { kind?: unknown }).kind === "string";
}
