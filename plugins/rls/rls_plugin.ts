import {
  AndNode,
  BinaryOperationNode,
  type Expression,
  type Kysely,
  type OperationNode,
  OperatorNode,
  ParensNode,
  PrimitiveValueListNode,
  type SqlBool,
  ValueNode,
} from "kysely";
import {
  type AnyExpressionBuilder,
  type AnyKysely,
  columnRow,
  foldsColumnNames,
  type KyseraPlugin,
  type PluginContext,
  type RawSqlInfo,
  tableCoverage,
  type TableReference,
  type WriteChange,
  WriteExpression,
  type WriteInfo,
} from "../../executor/mod.ts";
import type { RepositoryHandle } from "../../repository/mod.ts";
import { RLS_CONTEXT } from "./_context.ts";
import { verifyTables } from "../_schema_check.ts";
import type { RLSContext } from "./context.ts";
import { RLSContextError, type RLSOperation, RLSPolicyViolation } from "./errors.ts";
import type { FilterMap, Policy, PolicyEvaluationContext, RLSSchema, TablePolicies } from "./schema.ts";

/** Options of {@linkcode rlsPlugin}. */
export interface RLSPluginOptions<DB = Record<string, unknown>> {
  /** The policies, from `defineRLSSchema`. */
  readonly schema: RLSSchema<DB>;
  /** Tables left out of RLS even if the schema names them. @default {[]} */
  readonly excludeTables?: readonly (keyof DB & string)[];
  /** Roles that lift every policy (explicitly, like a system context). @default {[]} */
  readonly bypassRoles?: readonly string[];
  /**
   * Whether a query on a covered table outside any RLS context throws
   * `RLSContextError`. With `false` it fails closed quietly instead: reads
   * see no rows, DELETE deletes none, INSERT and UPDATE throw
   * `RLSPolicyViolation`.
   * @default {true}
   */
  readonly requireContext?: boolean;
  /**
   * Whether raw SQL (which no policy can rewrite) may run outside a system
   * context. `allowRawSql(fn)` from the executor opts in one call.
   * @default {false}
   */
  readonly allowRawSql?: boolean;
}

/** The methods {@linkcode rlsPlugin} adds to every repository. */
export interface RLSRepositoryMethods {
  /** Runs `fn` with every RLS policy lifted (a system context keeping the identity). */
  withoutRLS<R>(fn: () => Promise<R>): Promise<R>;
  /**
   * Whether the current context may do `operation` on `row` of the
   * repository's table, by the table's policies evaluated in memory
   * (allow/deny, column-map filters, `validate` with `row` as the data).
   * A row checked against an expression filter is looked up through the
   * executor by its primary key. `false` outside any context.
   */
  canAccess(operation: RLSOperation, row: Readonly<Record<string, unknown>>): Promise<boolean>;
}

/** The plugin {@linkcode rlsPlugin} returns. */
export interface RLSPlugin extends KyseraPlugin<RLSContext> {
  /** `"rls"`. */
  readonly name: string;
  /** The RLS context (shared with `rlsContext`). */
  readonly context: PluginContext<RLSContext>;
  /** Whether the plugin covers `table`. */
  covers(table: string): boolean;
  /** Whether `context` lifts every policy (system or a bypass role). */
  bypasses(context: RLSContext): boolean;
  /** The filters of one table reference. */
  scopeRows(ref: TableReference<RLSContext>, eb: AnyExpressionBuilder): Expression<SqlBool> | undefined;
  /** The write checks. */
  onWrite(write: WriteInfo<RLSContext>): WriteChange | undefined;
  /** Raw SQL only in a system/bypass context, unless `allowRawSql`. */
  rawSql(info: RawSqlInfo<RLSContext>): boolean;
  /**
   * Checks, at `createExecutor`, that every table the schema names exists
   * (a misspelt table would otherwise be silently unprotected); throws
   * `PluginSchemaError`. `createExecutorSync` cannot look.
   */
  verifySchema(executor: AnyKysely): Promise<void>;
  /** Adds {@linkcode RLSRepositoryMethods}. */
  extendRepository(repository: object): RLSRepositoryMethods;
}

const PRIMITIVES: ReadonlySet<string> = new Set(["number", "string", "bigint"]);

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof WriteExpression || b instanceof WriteExpression) return false;
  if (PRIMITIVES.has(typeof a) && PRIMITIVES.has(typeof b)) return String(a) === String(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  return false;
}

/** Whether a written value satisfies a column map's entry. */
function matches(value: unknown, expected: unknown): boolean {
  if (value instanceof WriteExpression || expected === undefined) return false;
  if (expected === null) return value === null;
  if (Array.isArray(expected)) return expected.some((e) => e !== undefined && same(value, e));
  return same(value, expected);
}

/** A predicate built as an operation node, handed back as an expression. */
class NodeExpression implements Expression<SqlBool> {
  readonly #node: OperationNode;
  constructor(node: OperationNode) {
    this.#node = node;
  }
  get expressionType(): SqlBool | undefined {
    return undefined;
  }
  toOperationNode(): OperationNode {
    return this.#node;
  }
}

const EQ = OperatorNode.create("=");
const IN = OperatorNode.create("in");
const IS = OperatorNode.create("is");
/** `1 = 0`, as `eb(eb.lit(1), "=", eb.lit(0))` builds it. */
const NEVER = new NodeExpression(
  BinaryOperationNode.create(ValueNode.createImmediate(1), EQ, ValueNode.createImmediate(0)),
);

function never(_eb: AnyExpressionBuilder): Expression<SqlBool> {
  return NEVER;
}

function isPrimitive(value: unknown): value is string | number | bigint | boolean {
  const type = typeof value;
  return type === "string" || type === "number" || type === "bigint" || type === "boolean";
}

/**
 * One column-map entry as a predicate node, the same nodes `eb(column, "=",
 * value)`, `eb(column, "in", values)` and `eb(column, "is", null)` build,
 * without going through the builder. Anything else (an expression as the
 * value, say) goes through the builder.
 */
function entryNode(
  column: Expression<unknown>,
  value: unknown,
  eb: AnyExpressionBuilder,
): OperationNode {
  if (value === null) return BinaryOperationNode.create(column.toOperationNode(), IS, ValueNode.createImmediate(null));
  if (isPrimitive(value)) return BinaryOperationNode.create(column.toOperationNode(), EQ, ValueNode.create(value));
  if (Array.isArray(value) && value.every(isPrimitive)) {
    return BinaryOperationNode.create(column.toOperationNode(), IN, PrimitiveValueListNode.create(value));
  }
  return (Array.isArray(value) ? eb(column, "in", value) : eb(column, "=", value)).toOperationNode();
}

function applies(policy: Policy, op: RLSOperation): boolean {
  return (policy.operations as readonly string[]).some((o) => o === op || o === "all");
}

/** Row-level access control for a table, as decided by its policies. */
function permitted(policies: TablePolicies, op: RLSOperation, ctx: PolicyEvaluationContext): boolean {
  let allows = 0;
  let allowed = false;
  for (const policy of policies.policies) {
    if (!applies(policy, op)) continue;
    if (policy.type === "deny" && policy.condition(ctx)) return false;
    if (policy.type === "allow") {
      allows++;
      if (!allowed && policy.condition(ctx)) allowed = true;
    }
  }
  return allows === 0 && policies.defaultDeny !== true ? true : allowed;
}

function evaluation(
  context: RLSContext,
  table: string,
  operation: RLSOperation,
  extra?: { data?: Readonly<Record<string, unknown>>; row?: Readonly<Record<string, unknown>> },
): PolicyEvaluationContext {
  return extra === undefined
    ? { auth: context.auth, meta: context.meta, table, operation }
    : { auth: context.auth, meta: context.meta, table, operation, ...extra };
}

/** The merged column maps of a table's filters (for `op`: every filter when reading). */
function columnMaps(policies: TablePolicies, ctx: PolicyEvaluationContext, writes: boolean): FilterMap[] {
  const maps: FilterMap[] = [];
  for (const policy of policies.policies) {
    if (policy.type !== "filter" || policy.map === undefined) continue;
    if (writes && !policy.operations.includes("all")) continue;
    maps.push(policy.map(ctx));
  }
  return maps;
}

type FilterPolicy = Extract<Policy, { type: "filter" }>;

/** What a covered table's policies come to, computed once per plugin. */
interface TablePlan {
  /** The table's name in the schema. */
  readonly table: string;
  readonly policies: TablePolicies;
  /** The operations allow/deny/defaultDeny decide; `undefined` when none. */
  readonly gated: ReadonlySet<RLSOperation> | undefined;
  readonly filters: readonly FilterPolicy[];
}

/**
 * Creates the row-level security plugin. For every table the schema names
 * (and `excludeTables` does not), in every query through the executor, its
 * transactions, controlled transactions, connections and `withoutPlugins()`:
 *
 * - every reference (any alias, schema, joins, subqueries, CTEs, set
 *   operations, UPDATE/DELETE targets, the update path of upserts, MERGE)
 *   gets the table's filters ANDed on, in the same statement; a table named
 *   in another case (`"POSTS"`, which SQLite reads as `posts`) is covered
 *   too;
 * - INSERT and UPDATE values must match the `'all'` filters' column maps
 *   (a forged tenant, or a row moved into another tenant, throws
 *   `RLSPolicyViolation` before anything is sent; a mapped column an INSERT
 *   leaves out is filled from the context) and pass `validate` policies;
 *   `REPLACE` (which deletes the conflicting row first) and `MERGE` into a
 *   covered table (whose values no hook sees) are refused; a covered table
 *   as a MERGE's source is filtered;
 * - `allow`/`deny` decide whether an operation is permitted: a refused
 *   write throws `RLSPolicyViolation`, a refused read sees no rows;
 * - fail closed: no context throws `RLSContextError` (see
 *   `requireContext`); a filter value `undefined` matches no row (reads see
 *   none, DELETE deletes none) and INSERT/UPDATE throw `RLSPolicyViolation`;
 * - raw SQL is refused outside a system/bypass context unless `allowRawSql`
 *   (even `` sql`select 1` ``: a health probe uses `healthProbe(executor)`,
 *   a builder query with no table, or wraps its raw SQL in `allowRawSql(fn)`):
 *   a raw statement, a compiled query run later than it was compiled (its
 *   filters are those of the context it was compiled in), a raw FROM item
 *   or SET target, a `sql` fragment inside a builder query that is not inert
 *   (anything beyond operators, values, column names and value functions
 *   such as `count`, `coalesce`, `lower`, `now`: it could read a table, end
 *   the statement, or comment out the filter), functions that run SQL from
 *   a string (`query_to_xml`, `table_to_xml`, `dblink`, ...) and DDL that
 *   embeds a query (`create table ... as`, `create view`);
 * - a filter is always its own parenthesised conjunct, whatever the
 *   caller's condition holds (a raw `or`, MySQL's `||`, an upsert's conflict
 *   WHERE, a MERGE condition); a write target is the real table even under
 *   a CTE of its name; MySQL's `delete p from posts as p` filters `posts`;
 *   column names are compared as the database does (`TENANT_ID` is
 *   `tenant_id` on MySQL and SQLite), and a column written twice in two
 *   spellings is refused; an INSERT whose source is raw SQL, and SQLite's
 *   `INSERT OR REPLACE`, are refused.
 *
 * Limit (what the database does on its own): views are names like tables
 * (list a view in the schema, with its tenant column, and it is filtered;
 * an unlisted view is not); a user-defined function may read any table;
 * `ON DELETE CASCADE` follows a cross-tenant reference (use composite
 * foreign keys, `(tenant_id, parent_id) references parents (tenant_id,
 * id)`, so none can exist); MySQL/MariaDB compare strings under the
 * column's collation, and the default one reads tenant `'acme'` as
 * `'ACME '` (keep string tenant ids in `varbinary` or `collate
 * utf8mb4_nopad_bin`). Native PostgreSQL policies (`nativeRLSPlugin`) are
 * the defence in depth for what an application-level filter cannot see.
 *
 * `rlsContext.asSystemAsync(fn)`, `withoutRLS(fn)` and `bypassRoles` lift
 * every policy, and nothing else does.
 *
 * Limit (evaluation order): the filters are ANDed onto the query, and the
 * database decides in which order it evaluates a WHERE clause's conditions.
 * Rows returned, and expressions in the select list, only ever see the
 * caller's rows; but a function in the caller's own WHERE may be evaluated
 * on other tenants' rows before the filter removes them, and if it raises,
 * its error can carry their values (PostgreSQL orders conditions by cost,
 * so a function declared as cheap as a comparison runs first; SQLite keeps
 * the written order). Where untrusted callers choose such functions, use
 * native PostgreSQL policies (`generateNativePolicies`): PostgreSQL
 * evaluates them before any function not marked LEAKPROOF.
 *
 * Limit (unique keys): a unique index spans every tenant, so inserting a
 * value another tenant's row holds fails, and the failure tells the caller
 * that the value exists (the error itself carries only the caller's own
 * values). Where that matters, make unique keys per tenant
 * (`unique (tenant_id, code)`).
 *
 * @typeParam DB The database type.
 * @param options The schema and behaviour.
 * @returns The plugin, for `createExecutor` / `createORM`.
 * @throws {TypeError} When `schema` is missing.
 *
 * @example Tenant isolation on every reference
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { type Generated, Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createExecutorSync } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { defineRLSSchema, filter, rlsContext, rlsPlugin } from "@kysera/kysera/rls"; // npm: "kysera/rls"
 *
 * interface DB { posts: { id: number; tenant_id: Generated<number>; title: string } }
 * const handle = new DatabaseSync(":memory:");
 * handle.exec("create table posts (id integer primary key, tenant_id integer not null, title text)");
 * handle.exec("insert into posts values (1, 1, 'mine'), (2, 2, 'theirs')");
 * const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
 * const schema = defineRLSSchema<DB>({
 *   posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
 * });
 * const executor = createExecutorSync(db, [rlsPlugin({ schema })]);
 *
 * await rlsContext.runAsync({ auth: { userId: 1, tenantId: 1, roles: [] } }, async () => {
 *   const query = executor.selectFrom("posts as p").select("p.title");
 *   assert.equal(query.compile().sql, 'select "p"."title" from "posts" as "p" where "p"."tenant_id" = ?');
 *   assert.deepEqual((await query.execute()).map((p) => p.title), ["mine"]);
 *   await executor.insertInto("posts").values({ id: 3, title: "new" }).execute(); // no tenant_id given
 * });
 * assert.equal(handle.prepare("select tenant_id from posts where id = 3").get()?.tenant_id, 1);
 * await db.destroy();
 * ```
 */
export function rlsPlugin<DB>(options: RLSPluginOptions<DB>): RLSPlugin {
  if (typeof options?.schema !== "object" || options.schema === null) {
    throw new TypeError("Cannot create the RLS plugin: 'schema' is required");
  }
  const schema = options.schema as Readonly<Record<string, TablePolicies | undefined>>;
  const excluded = new Set<string>(options.excludeTables ?? []);
  const bypassRoles = new Set(options.bypassRoles ?? []);
  const requireContext = options.requireContext ?? true;
  const rawAllowed = options.allowRawSql ?? false;

  // Per table, computed once: its policies, its filters, and which
  // operations allow/deny/defaultDeny gate (none, usually).
  const plans = new Map<string, TablePlan>();
  for (const [table, policies] of Object.entries(schema)) {
    if (policies === undefined || excluded.has(table)) continue;
    const ops = new Set<RLSOperation>();
    for (const op of ["read", "create", "update", "delete"] as const) {
      if (policies.defaultDeny === true) ops.add(op);
      for (const p of policies.policies) if ((p.type === "allow" || p.type === "deny") && applies(p, op)) ops.add(op);
    }
    const plan: TablePlan = {
      table,
      policies,
      gated: ops.size === 0 ? undefined : ops,
      filters: policies.policies.filter((p) => p.type === "filter"),
    };
    plans.set(table, plan);
  }
  const coverage = tableCoverage({ tables: plans.keys(), excludeTables: excluded });
  /**
   * The plan of a table as a query names it. SQLite (always) and MySQL
   * (with `lower_case_table_names`) read `POSTS` as `posts`: a name that
   * matches a covered table in another case is covered too, never let
   * through unfiltered.
   */
  const planOf = (table: string): TablePlan | undefined => {
    const name = coverage(table);
    return name === undefined ? undefined : plans.get(name);
  };
  const policiesOf = (table: string): TablePolicies | undefined => planOf(table)?.policies;
  const allowed = (plan: TablePlan, op: RLSOperation, context: RLSContext): boolean =>
    plan.gated?.has(op) !== true || permitted(plan.policies, op, evaluation(context, plan.table, op));
  const covers = (table: string): boolean => planOf(table) !== undefined;
  const bypasses = (context: RLSContext): boolean =>
    context.auth.isSystem === true || (bypassRoles.size > 0 && context.auth.roles.some((r) => bypassRoles.has(r)));

  const refuseUnless = (ok: boolean, op: RLSOperation, table: string): void => {
    if (!ok) throw new RLSPolicyViolation(op, table, "no policy permits it in the current context");
  };

  /** Checks one row of written values against the maps; returns the columns to fill. */
  const checkRow = (
    op: RLSOperation,
    table: string,
    row: Readonly<Record<string, unknown>>,
    maps: readonly FilterMap[],
    fill: boolean,
  ): Record<string, unknown> | undefined => {
    let filled: Record<string, unknown> | undefined;
    for (const map of maps) {
      for (const [column, expected] of Object.entries(map)) {
        if (expected === undefined) {
          throw new RLSPolicyViolation(op, table, `the RLS context has no value for '${column}'`);
        }
        if (Object.hasOwn(row, column)) {
          if (!matches(row[column], expected)) {
            throw new RLSPolicyViolation(op, table, `'${column}' is outside what the policy permits`);
          }
        } else if (fill) {
          if (Array.isArray(expected) && expected.length !== 1) {
            throw new RLSPolicyViolation(op, table, `'${column}' must be given: the policy permits several values`);
          }
          (filled ??= {})[column] = Array.isArray(expected) ? expected[0] : expected;
        }
      }
    }
    return filled;
  };

  const validateRow = (
    policies: TablePolicies,
    op: RLSOperation,
    context: RLSContext,
    table: string,
    data: Readonly<Record<string, unknown>>,
  ): boolean => {
    const ctx = evaluation(context, table, op, { data });
    return policies.policies.every((p) => p.type !== "validate" || !applies(p, op) || p.check(ctx));
  };

  const plugin = {
    name: "rls",
    context: RLS_CONTEXT,
    covers,
    bypasses,
    verifySchema: (executor: AnyKysely): Promise<void> =>
      verifyTables(executor, {
        plugin: "rls",
        tables: [...plans.keys()],
        covers,
        columns: [],
      }),
    rawSql(info: RawSqlInfo<RLSContext>): boolean {
      return rawAllowed || (info.context !== undefined && bypasses(info.context));
    },
    scopeRows(ref: TableReference<RLSContext>, eb: AnyExpressionBuilder): Expression<SqlBool> | undefined {
      const plan = planOf(ref.table);
      if (plan === undefined) return undefined;
      const context = ref.context;
      if (context === undefined) {
        if (requireContext) throw new RLSContextError(ref.table);
        return never(eb);
      }
      if (bypasses(context)) return undefined;
      const position = ref.position;
      if (position === "target" || position === "conflict-update") {
        if (ref.statement === "merge" && position === "target") {
          // A MERGE's SET and INSERT values never reach onWrite: nothing could
          // stop it from moving a row into another tenant.
          throw new RLSPolicyViolation(
            "update",
            ref.table,
            "MERGE into a table under RLS cannot be checked; use INSERT and UPDATE",
          );
        }
      }
      // The rows an UPDATE or DELETE changes need that operation permitted;
      // every other reference reads.
      const op: RLSOperation | undefined = position === "conflict-update"
        ? "update"
        : position !== "target"
        ? undefined
        : ref.statement === "update"
        ? "update"
        : ref.statement === "delete"
        ? "delete"
        : undefined;
      if (plan.gated !== undefined) {
        if (op !== undefined) refuseUnless(allowed(plan, op, context), op, ref.table);
        else if (!allowed(plan, "read", context)) return never(eb);
      }
      const filters = plan.filters;
      if (filters.length === 0) return undefined;
      const ctx = evaluation(context, plan.table, "read");
      let predicate: OperationNode | undefined;
      let predicates: OperationNode[] | undefined;
      for (let i = 0; i < filters.length; i++) {
        const policy = filters[i] as FilterPolicy;
        if (policy.expression !== undefined) {
          const node = policy.expression(eb, { ...ctx, column: (name) => ref.column(name) }).toOperationNode();
          if (predicate === undefined) predicate = node;
          else (predicates ??= [predicate]).push(node);
          continue;
        }
        const map = policy.map!(ctx);
        for (const column of Object.keys(map)) {
          const value = map[column];
          if (value === undefined || (Array.isArray(value) && (value.length === 0 || value.includes(undefined)))) {
            return never(eb);
          }
          const node = entryNode(ref.column(column), value, eb);
          if (predicate === undefined) predicate = node;
          else (predicates ??= [predicate]).push(node);
        }
      }
      if (predicate === undefined) return undefined;
      if (predicates === undefined) return new NodeExpression(predicate);
      // As `eb.and(predicates)` builds it: a left-deep AND in parentheses.
      let and = predicates[0] as OperationNode;
      for (let i = 1; i < predicates.length; i++) and = AndNode.create(and, predicates[i] as OperationNode);
      return new NodeExpression(ParensNode.create(and));
    },
    onWrite(write: WriteInfo<RLSContext>): WriteChange | undefined {
      const plan = planOf(write.table);
      if (plan === undefined) return undefined;
      const policies = plan.policies;
      const op: RLSOperation = write.operation === "update" || write.kind === "upsert-set" ? "update" : "create";
      const context = write.context;
      if (context === undefined) {
        if (requireContext) throw new RLSContextError(write.table);
        throw new RLSPolicyViolation(op, write.table, "there is no RLS context");
      }
      if (bypasses(context)) return undefined;
      if (write.operation === "replace") {
        throw new RLSPolicyViolation(
          "create",
          write.table,
          "REPLACE deletes rows the policy cannot see; use an upsert",
        );
      }
      refuseUnless(allowed(plan, op, context), op, write.table);
      const maps = columnMaps(policies, evaluation(context, write.table, op), true);
      const refuse = () => {
        throw new RLSPolicyViolation(op, write.table, "a validate policy refused the values");
      };
      if (write.kind === "raw") {
        // Values no hook can read: none could be checked, and none filled.
        throw new RLSPolicyViolation(
          op,
          write.table,
          "an INSERT whose source is raw SQL cannot be checked; use values() or a select",
        );
      }
      if (write.kind === "select") {
        const set: Record<string, unknown> = {};
        const fold = foldsColumnNames(write.dialect);
        const written = new Set(write.columns.map((c) => fold ? c.toLowerCase() : c));
        for (const map of maps) {
          for (const [column, expected] of Object.entries(map)) {
            if (written.has(fold ? column.toLowerCase() : column)) {
              throw new RLSPolicyViolation(
                op,
                write.table,
                `'${column}' cannot be checked in INSERT ... SELECT; leave it out to have it filled`,
              );
            }
            if (expected === undefined || (Array.isArray(expected) && expected.length !== 1)) {
              throw new RLSPolicyViolation(op, write.table, `the RLS context has no single value for '${column}'`);
            }
            set[column] = Array.isArray(expected) ? expected[0] : expected;
          }
        }
        if (policies.policies.some((p) => p.type === "validate" && applies(p, op))) {
          throw new RLSPolicyViolation(op, write.table, "INSERT ... SELECT values cannot be validated");
        }
        return Object.keys(set).length === 0 ? undefined : { set };
      }
      if (write.kind === "values") {
        const fills = write.rows.map((row) => {
          const filled = checkRow(op, write.table, row, maps, true);
          const data = filled === undefined ? row : columnRow({ ...row, ...filled }, write.dialect);
          if (!validateRow(policies, op, context, write.table, data)) refuse();
          return filled;
        });
        return fills.some((f) => f !== undefined) ? { rows: fills } : undefined;
      }
      for (const row of write.rows) {
        checkRow(op, write.table, row, maps, false);
        if (!validateRow(policies, op, context, write.table, row)) refuse();
      }
      return undefined;
    },
    extendRepository(repository: object): RLSRepositoryMethods {
      const repo = repository as Partial<Pick<RepositoryHandle, "primaryKeyColumns">> & {
        tableName?: unknown;
        primaryKey?: unknown;
        executor?: unknown;
      };
      // The key columns: a config-form repository's (RepositoryHandle), or a
      // factory-form one's `primaryKey`, or `id`.
      const pk: readonly string[] = Array.isArray(repo.primaryKeyColumns)
        ? repo.primaryKeyColumns
        : typeof repo.primaryKey === "string"
        ? [repo.primaryKey]
        : Array.isArray(repo.primaryKey)
        ? repo.primaryKey as string[]
        : ["id"];
      const table = typeof repo.tableName === "string" ? repo.tableName : undefined;
      // deno-lint-ignore no-explicit-any
      const db = repo.executor as Kysely<any> | undefined;
      return {
        withoutRLS<R>(fn: () => Promise<R>): Promise<R> {
          const current = RLS_CONTEXT.get();
          return RLS_CONTEXT.run(
            { ...current, auth: { ...(current?.auth ?? { userId: "system", roles: [] }), isSystem: true } },
            fn,
          );
        },
        async canAccess(operation: RLSOperation, row: Readonly<Record<string, unknown>>): Promise<boolean> {
          const context = RLS_CONTEXT.get();
          if (table === undefined || context === undefined) return false;
          const policies = policiesOf(table);
          if (policies === undefined || bypasses(context)) return true;
          const ctx = evaluation(context, table, operation, { row, data: row });
          if (!permitted(policies, operation, ctx)) return false;
          if (operation === "read" || operation === "update" || operation === "delete") {
            for (const map of columnMaps(policies, evaluation(context, table, "read"), false)) {
              for (const [column, expected] of Object.entries(map)) {
                if (!matches(row[column], expected)) return false;
              }
            }
          }
          if (operation === "create" || operation === "update") {
            try {
              checkRow(operation, table, row, columnMaps(policies, ctx, true), false);
            } catch {
              return false;
            }
            if (!validateRow(policies, operation, context, table, row)) return false;
          }
          const expressions = policies.policies.some((p) => p.type === "filter" && p.expression !== undefined);
          if (!expressions || operation === "create") return true;
          if (db === undefined || pk.some((c) => row[c] === undefined)) return false;
          let query = db.selectFrom(table).select(pk as string[]);
          for (const c of pk) query = query.where(c, "=", row[c]);
          return (await query.executeTakeFirst()) !== undefined;
        },
      };
    },
  } satisfies RLSPlugin;
  return Object.freeze(plugin);
}
