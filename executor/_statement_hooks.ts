/**
 * The statement hooks: Kysera plugins' `transformQuery` wherever Kysely turns
 * a builder into nodes, and `interceptQuery`, `onWrite` and `scopeRows` on
 * the whole statement as it is compiled for execution.
 */
import type { CommonTableExpressionNode, OperationNode, QueryId, RootOperationNode, WithNode } from "kysely";
import { RawNode } from "kysely";
import type { InterceptContext, QueryOperation } from "./kysera_plugin.ts";
import { PluginError, wrapPluginError } from "./plugin_error.ts";
import { cteWrites, operationOf, targetOf } from "./query_tree.ts";
import { applyRowScopes } from "./_row_scopes.ts";
import { applyWriteHooks } from "./_write_hooks.ts";
import { builderOf } from "./_kysely_internals.ts";
import type { Family } from "./_family.ts";

/** Kysera plugins' own `transformQuery` hooks and the raw-SQL policy, wherever Kysely turns a builder into nodes. */
export function transformBuilt(node: RootOperationNode, queryId: QueryId, f: Family): RootOperationNode {
  for (const plugin of f.transformers) {
    let next: RootOperationNode;
    try {
      next = plugin.transformQuery!({ node, queryId });
    } catch (error) {
      throw wrapPluginError(error, { plugin: plugin.name, hook: "transformQuery" });
    }
    if (next.kind !== node.kind) {
      throw new PluginError({
        plugin: plugin.name,
        hook: "transformQuery",
        cause: new TypeError(`transformQuery must return a ${node.kind}: current value is a ${next.kind}`),
      });
    }
    node = next;
  }
  if (node.kind === "RawNode") f.checkRaw("raw query");
  return node;
}

/**
 * `interceptQuery`, `onWrite` and `scopeRows` over a whole statement. A raw
 * statement (`sql\`...\`` run on the executor, or a savepoint command) is
 * left as it is, but builders embedded in it are statements of their own.
 */
export function transformStatement(node: RootOperationNode, queryId: QueryId, f: Family): RootOperationNode {
  if (node.kind === "RawNode") return embeddedStatements(node as RawNode, queryId, f);
  const operation = operationOf(node);
  if (operation === undefined) {
    // DDL: one that embeds a query (`create table ... as select`, `create
    // view ... as`) reads rows no scope reaches (and a view's rows are read
    // later, in every context): raw SQL to a plugin.
    if (f.rawPolicies.length > 0 && containsQuery(node)) f.checkRaw("DDL with a query");
    return node;
  }
  if (f.interceptors.length > 0) node = intercept(node, operation, queryId, f);
  // Nodes the write hooks add (their raw SQL is the plugins', not the caller's).
  const writes = f.writers.length > 0 &&
    (operation === "insert" || operation === "replace" || operation === "update" ||
      ((node as { with?: unknown }).with !== undefined && cteWrites(node).length > 0));
  const trusted = writes ? new WeakSet<OperationNode>() : undefined;
  if (trusted !== undefined) {
    node = writesInWith(node, f, trusted);
    if (operation === "insert" || operation === "replace" || operation === "update") {
      node = applyWriteHooks(node, f.writers, f.dialect, trusted) as RootOperationNode;
    }
  }
  if (f.scopers.length > 0) {
    const scoped = applyRowScopes(node, f.scopers, operation, trusted);
    if (scoped.raw !== undefined) f.checkRaw(scoped.raw);
    // The walk saw every node: the compiled text needs a last look only if it met a piece that could open a comment.
    f.textCheck = scoped.textCheck;
    node = scoped.node as RootOperationNode;
  }
  return node;
}

const QUERY_KINDS: ReadonlySet<string> = new Set([
  "SelectQueryNode",
  "InsertQueryNode",
  "UpdateQueryNode",
  "DeleteQueryNode",
  "MergeQueryNode",
  "RawNode",
]);

/** Whether a (DDL) node holds a query or raw SQL anywhere. */
function containsQuery(node: OperationNode): boolean {
  for (const key in node) {
    const value = (node as unknown as Record<string, unknown>)[key];
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) {
      if (typeof item !== "object" || item === null || typeof (item as OperationNode).kind !== "string") continue;
      if (QUERY_KINDS.has((item as OperationNode).kind) || containsQuery(item as OperationNode)) return true;
    }
  }
  return false;
}

/**
 * `onWrite` on the INSERTs and UPDATEs of a data-modifying WITH clause
 * (PostgreSQL: `with x as (insert ... returning *) select ...`), which are
 * writes of the statement like its own. (Their rows are scoped by the
 * row-scope walk, which enters every CTE.)
 */
function writesInWith(node: RootOperationNode, f: Family, trusted: WeakSet<OperationNode>): RootOperationNode {
  const writes = cteWrites(node);
  if (writes.length === 0) return node;
  const withNode = (node as unknown as { with: WithNode }).with;
  let changed = false;
  const expressions = withNode.expressions.map((cte) => {
    if (
      !writes.includes(cte) || (cte.expression.kind !== "InsertQueryNode" && cte.expression.kind !== "UpdateQueryNode")
    ) {
      return cte;
    }
    const body = applyWriteHooks(cte.expression, f.writers, f.dialect, trusted);
    if (body === cte.expression) return cte;
    changed = true;
    return Object.freeze({ ...cte, expression: body }) as CommonTableExpressionNode;
  });
  if (!changed) return node;
  return Object.freeze({ ...node, with: Object.freeze({ ...withNode, expressions: Object.freeze(expressions) }) });
}

/** A raw node whose embedded statements (`sql\`... ${db.selectFrom("t")} ...\``) went through {@linkcode transformStatement}. */
function embeddedStatements(node: RawNode, queryId: QueryId, f: Family): RawNode {
  let parameters: OperationNode[] | undefined;
  node.parameters.forEach((parameter, i) => {
    const next = parameter.kind === "RawNode" || operationOf(parameter) !== undefined
      ? transformStatement(parameter as RootOperationNode, queryId, f)
      : parameter;
    if (next !== parameter) (parameters ??= [...node.parameters])[i] = next;
  });
  return parameters === undefined ? node : RawNode.create(node.sqlFragments, parameters);
}

function intercept(node: RootOperationNode, operation: QueryOperation, queryId: QueryId, f: Family): RootOperationNode {
  const target = targetOf(node);
  const context: InterceptContext = {
    operation,
    table: target?.table,
    alias: target?.alias,
    schema: target?.schema,
    metadata: {},
    queryId,
  };
  let qb = builderOf(node, queryId);
  for (const plugin of f.interceptors) {
    try {
      qb = plugin.interceptQuery!(qb, context);
    } catch (error) {
      throw wrapPluginError(error, {
        plugin: plugin.name,
        hook: "interceptQuery",
        operation,
        ...(target === undefined ? {} : { table: target.table }),
      });
    }
  }
  const out = qb.toOperationNode() as RootOperationNode;
  if (out.kind !== node.kind) {
    throw new PluginError({
      plugin: f.interceptors.map((p) => p.name).join(", "),
      hook: "interceptQuery",
      operation,
      ...(target === undefined ? {} : { table: target.table }),
      cause: new TypeError(`interceptQuery must return a builder of the same statement: got a ${out.kind}`),
    });
  }
  return out;
}
