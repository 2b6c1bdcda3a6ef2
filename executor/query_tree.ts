/**
 * Reading facts off Kysely's operation-node tree: which statement a root
 * node is and which table it targets. Uses only Kysely's public node types.
 */
import type {
  AliasNode,
  CommonTableExpressionNode,
  DeleteQueryNode,
  IdentifierNode,
  InsertQueryNode,
  MergeQueryNode,
  OperationNode,
  SelectQueryNode,
  TableNode,
  UpdateQueryNode,
} from "kysely";
import type { QueryOperation } from "./kysera_plugin.ts";

/** A table as a query names it. */
export interface NamedTable {
  readonly table: string;
  readonly schema: string | undefined;
  readonly alias: string | undefined;
  /** The TableNode itself (with its schema). */
  readonly node: TableNode;
}

/** The operation of a root node, or `undefined` for DDL and raw nodes. */
export function operationOf(node: OperationNode): QueryOperation | undefined {
  switch (node.kind) {
    case "SelectQueryNode":
      return "select";
    case "InsertQueryNode":
      return (node as InsertQueryNode).replace ? "replace" : "insert";
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

/** Reads a table (possibly aliased) from a FROM/JOIN/target item; `undefined` if it is not a plain table. */
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

/** The top-level table of a statement: first FROM item, or the write target. */
export function targetOf(node: OperationNode): NamedTable | undefined {
  switch (node.kind) {
    case "SelectQueryNode":
      return namedTable((node as SelectQueryNode).from?.froms[0]);
    case "InsertQueryNode":
      return namedTable((node as InsertQueryNode).into);
    case "UpdateQueryNode": {
      const table = (node as UpdateQueryNode).table;
      return namedTable(table?.kind === "ListNode" ? (table as unknown as { items: OperationNode[] }).items[0] : table);
    }
    case "DeleteQueryNode":
      return namedTable((node as DeleteQueryNode).from.froms[0]);
    case "MergeQueryNode":
      return namedTable((node as MergeQueryNode).into);
    default:
      return undefined;
  }
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
 */
export function cteWrites(node: OperationNode): readonly CommonTableExpressionNode[] {
  const expressions = (node as { with?: { expressions: readonly CommonTableExpressionNode[] } }).with?.expressions;
  return expressions === undefined ? [] : expressions.filter((cte) => WRITE_KINDS.has(cte.expression.kind));
}

/** Whether a root node writes: an INSERT, UPDATE, DELETE or MERGE, or a statement with a data-modifying CTE. */
export function isWrite(node: OperationNode): boolean {
  return WRITE_KINDS.has(node.kind) || cteWrites(node).length > 0;
}
