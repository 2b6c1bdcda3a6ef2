import type { Expression, SqlBool } from "kysely";
import type { AnyExpressionBuilder } from "../../executor/mod.ts";
import type { RLSAuth } from "./context.ts";
import type { RLSOperation } from "./errors.ts";

/** An operation a policy applies to; `"all"` is every operation. */
export type PolicyOperation = RLSOperation | "all";

/** What a policy function is told. */
export interface PolicyEvaluationContext {
  /** The identity of the current RLS context. */
  readonly auth: RLSAuth;
  /** The context's `meta`. */
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  /** The table the policy belongs to. */
  readonly table: string;
  /** The operation being checked. */
  readonly operation: RLSOperation;
  /**
   * The values written (`validate`, and `canAccess` for create/update): one
   * row of an INSERT, or an UPDATE's SET. Values that are SQL expressions
   * appear as `WriteExpression` objects.
   */
  readonly data?: Readonly<Record<string, unknown>> | undefined;
  /** The existing row (`canAccess` only). */
  readonly row?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * What an expression filter is told: the context, plus this reference's columns.
 *
 * @typeParam Row The table's row type (its columns name `column`'s argument).
 */
export interface FilterExpressionContext<Row = Record<string, unknown>> extends PolicyEvaluationContext {
  /**
   * A column of the filtered table reference, qualified by its alias. Use it
   * rather than a bare column name, which a join could make ambiguous.
   */
  column(name: keyof Row & string): Expression<unknown>;
}

/** A context-only condition of `allow`/`deny`. */
export type PolicyCondition = (ctx: PolicyEvaluationContext) => boolean;

/**
 * A filter's column map: a value means `=`, an array `IN`, `null` `IS NULL`,
 * `undefined` matches no row (fail closed). Keys are the table's columns:
 * inside `defineRLSSchema<DB>` a map naming a column the table lacks does
 * not compile.
 *
 * @typeParam Row The table's row type.
 */
export type FilterMap<Row = Record<string, unknown>> = { readonly [C in keyof Row & string]?: unknown };

/**
 * The column-map form of a filter.
 *
 * @typeParam Row The table's row type.
 */
export type FilterMapFunction<Row = Record<string, unknown>> = (ctx: PolicyEvaluationContext) => FilterMap<Row>;

/**
 * The expression form of a filter (a function of two parameters).
 *
 * @typeParam Row The table's row type.
 */
export type FilterExpressionFunction<Row = Record<string, unknown>> = (
  eb: AnyExpressionBuilder,
  ctx: FilterExpressionContext<Row>,
) => Expression<SqlBool>;

/** The operations a `filter` applies to. */
export type FilterOperation = "read" | "all";

/** The operations a `validate` applies to. */
export type ValidateOperation = "create" | "update" | "all";

/** An `allow` or `deny` policy (the same for every table). */
export interface AccessPolicy {
  /** `"allow"` or `"deny"`. */
  readonly type: "allow" | "deny";
  /** The operations it applies to. */
  readonly operations: readonly PolicyOperation[];
  /** When it applies. */
  readonly condition: PolicyCondition;
}

/**
 * A `filter` policy, typed by the table's row.
 *
 * @typeParam Row The table's row type.
 */
export interface FilterPolicy<Row = Record<string, unknown>> {
  /** `"filter"`. */
  readonly type: "filter";
  /** The operations it applies to. */
  readonly operations: readonly FilterOperation[];
  /** The column-map form. */
  readonly map?: FilterMapFunction<Row>;
  /** The expression form. */
  readonly expression?: FilterExpressionFunction<Row>;
}

/** A `validate` policy (the same for every table). */
export interface ValidatePolicy {
  /** `"validate"`. */
  readonly type: "validate";
  /** The operations it applies to. */
  readonly operations: readonly ValidateOperation[];
  /** The check of written values. */
  readonly check: PolicyCondition;
}

/**
 * One policy, as the builders make it.
 *
 * @typeParam Row The table's row type (only filters depend on it).
 */
export type Policy<Row = Record<string, unknown>> = AccessPolicy | FilterPolicy<Row> | ValidatePolicy;

/**
 * A table's policies.
 *
 * @typeParam Row The table's row type.
 */
export interface TablePolicies<Row = Record<string, unknown>> {
  /** The policies. */
  readonly policies: readonly Policy<Row>[];
  /** Deny every operation that no `allow` permits. @default {false} */
  readonly defaultDeny?: boolean;
}

/**
 * A whole schema's policies, table name to policies; each table's filters
 * are typed by its columns.
 *
 * @typeParam DB The database type.
 */
export type RLSSchema<DB = Record<string, unknown>> = {
  readonly [T in keyof DB & string]?: TablePolicies<DB[T]>;
};

const OPS: ReadonlySet<string> = new Set(["read", "create", "update", "delete", "all"]);

function operations<O extends string>(op: O | readonly O[], allowed: readonly string[], builder: string): O[] {
  const list = (Array.isArray(op) ? [...op] : [op]) as O[];
  if (list.length === 0) throw new TypeError(`Cannot create a ${builder} policy: no operation given`);
  for (const o of list) {
    if (!OPS.has(o) || !allowed.includes(o)) {
      throw new TypeError(
        `Cannot create a ${builder} policy: the operation must be one of ${allowed.join(", ")}: current value is ${o}`,
      );
    }
  }
  return list;
}

/**
 * Permits an operation when `condition` (of the context) holds. Once a table
 * has an `allow` for an operation, or `defaultDeny`, the operation needs a
 * matching `allow`. A refused write throws `RLSPolicyViolation`; a refused
 * read sees no rows.
 *
 * @param op The operation(s).
 * @param condition A function of the context.
 * @returns The policy.
 * @throws {TypeError} For an unknown operation.
 *
 * @example Only editors may update
 * ```ts
 * import assert from "node:assert/strict";
 * import { allow } from "@kysera/kysera/rls";
 *
 * const policy = allow("update", (ctx) => ctx.auth.roles.includes("editor"));
 * assert.equal(policy.type, "allow");
 * assert.deepEqual(policy.operations, ["update"]);
 * ```
 */
export function allow(op: PolicyOperation | readonly PolicyOperation[], condition: PolicyCondition): AccessPolicy {
  return Object.freeze({
    type: "allow",
    operations: Object.freeze(operations(op, [...OPS], "allow")),
    condition,
  });
}

/**
 * Refuses an operation when `condition` holds (always, without one). A
 * `deny` wins over every `allow`.
 *
 * @param op The operation(s).
 * @param condition A function of the context. @default {always}
 * @returns The policy.
 * @throws {TypeError} For an unknown operation.
 *
 * @example Nobody deletes audit rows
 * ```ts
 * import assert from "node:assert/strict";
 * import { deny } from "@kysera/kysera/rls";
 *
 * assert.equal(deny("delete").type, "deny");
 * ```
 */
export function deny(op: PolicyOperation | readonly PolicyOperation[], condition?: PolicyCondition): AccessPolicy {
  return Object.freeze({
    type: "deny",
    operations: Object.freeze(operations(op, [...OPS], "deny")),
    condition: condition ?? (() => true),
  });
}

/**
 * Restricts rows: ANDed onto every reference to the table (FROM, joins,
 * subqueries, CTEs, set operations, UPDATE/DELETE targets). `'read'` and
 * `'all'` both filter every reference (an UPDATE or DELETE reads the rows
 * it changes); `'all'` also checks written values: INSERT and UPDATE values
 * must match the column map, a column the INSERT leaves out is filled from it.
 *
 * Two forms: a column map `ctx => ({ tenant_id: ctx.auth.tenantId })` (a
 * value is `=`, an array `IN`, `null` `IS NULL`, `undefined` matches no row)
 * and an expression `(eb, ctx) => eb(ctx.column("owner_id"), "=", ctx.auth.userId)`
 * for anything a map cannot say. The form is told by the function's
 * parameter count. Expression filters cannot check written values (use
 * `validate`) and have no native PostgreSQL equivalent.
 *
 * Written inside `defineRLSSchema<DB>({ posts: { policies: [...] } })`, the
 * map's keys (and `ctx.column`'s argument) are checked against the table's
 * columns: `{ tenantId: ... }` on a table with `tenant_id` does not compile.
 * A filter declared on its own takes the row type: `filter<DB["posts"]>(...)`.
 *
 * @typeParam Row The table's row type (inferred inside `defineRLSSchema`).
 * @param op `'read'` or `'all'`, or a list of them (as `allow`/`deny`/`validate` take).
 * @param fn The column map or expression function.
 * @returns The policy.
 * @throws {TypeError} For another operation.
 *
 * @example A tenant filter
 * ```ts
 * import assert from "node:assert/strict";
 * import { filter } from "@kysera/kysera/rls";
 *
 * const tenant = filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }));
 * assert.equal(tenant.type, "filter");
 * assert.deepEqual(tenant.operations, ["all"]);
 * ```
 */
export function filter<Row = Record<string, unknown>>(
  op: FilterOperation | readonly FilterOperation[],
  fn: FilterMapFunction<NoInfer<Row>>,
): FilterPolicy<Row>;
/**
 * The expression form of {@linkcode filter}. TypeScript cannot infer the
 * parameter types of a two-parameter function against the overloads:
 * annotate them (`AnyExpressionBuilder` from the executor,
 * `FilterExpressionContext`).
 *
 * @param op `'read'` or `'all'`, or a list of them (as `allow`/`deny`/`validate` take).
 * @param fn `(eb, ctx) => predicate`.
 * @returns The policy.
 *
 * @example Own rows or public ones
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AnyExpressionBuilder } from "@kysera/kysera/executor";
 * import { filter, type FilterExpressionContext } from "@kysera/kysera/rls";
 *
 * const own = filter("read", (eb: AnyExpressionBuilder, ctx: FilterExpressionContext) =>
 *   eb.or([eb(ctx.column("owner_id"), "=", ctx.auth.userId), eb(ctx.column("public"), "=", true)]));
 * assert.equal(own.type, "filter");
 * ```
 */
export function filter<Row = Record<string, unknown>>(
  op: FilterOperation | readonly FilterOperation[],
  fn: FilterExpressionFunction<NoInfer<Row>>,
): FilterPolicy<Row>;
export function filter(
  op: FilterOperation | readonly FilterOperation[],
  fn: FilterMapFunction | FilterExpressionFunction,
): FilterPolicy {
  const ops = Object.freeze(operations(op, ["read", "all"], "filter"));
  if (typeof fn !== "function") throw new TypeError("Cannot create a filter policy: the filter must be a function");
  return Object.freeze(
    fn.length >= 2
      ? { type: "filter", operations: ops, expression: fn as FilterExpressionFunction }
      : { type: "filter", operations: ops, map: fn as FilterMapFunction },
  );
}

/**
 * Checks written values: `check(ctx)` sees each inserted row, or an UPDATE's
 * SET, as `ctx.data`; `false` refuses the write with `RLSPolicyViolation`
 * before anything is sent.
 *
 * @param op `'create'`, `'update'` or `'all'`, or a list of them (as `allow`/`deny`/`filter` take).
 * @param check A function of the context and `ctx.data`.
 * @returns The policy.
 * @throws {TypeError} For another operation.
 *
 * @example Titles must not be empty
 * ```ts
 * import assert from "node:assert/strict";
 * import { validate } from "@kysera/kysera/rls";
 *
 * const titled = validate("all", (ctx) => ctx.data?.["title"] !== "");
 * assert.equal(titled.type, "validate");
 * ```
 */
export function validate(op: ValidateOperation | readonly ValidateOperation[], check: PolicyCondition): ValidatePolicy {
  return Object.freeze({
    type: "validate",
    operations: Object.freeze(operations(op, ["create", "update", "all"], "validate")),
    check,
  });
}

/**
 * Declares the policies of a schema's tables, typed by the database's
 * table names. Tables not named are not under RLS.
 *
 * @typeParam DB The database type.
 * @param schema Table name to `{ policies, defaultDeny? }`.
 * @returns The frozen schema.
 * @throws {TypeError} When a table's `policies` is not an array.
 *
 * @example A multi-tenant schema
 * ```ts
 * import assert from "node:assert/strict";
 * import { allow, defineRLSSchema, filter } from "@kysera/kysera/rls";
 *
 * interface DB { posts: { id: number; tenant_id: number; title: string } }
 * const schema = defineRLSSchema<DB>({
 *   posts: {
 *     policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId })), allow("all", () => true)],
 *     defaultDeny: true,
 *   },
 * });
 * assert.deepEqual(Object.keys(schema), ["posts"]);
 * ```
 */
export function defineRLSSchema<DB>(schema: RLSSchema<DB>): RLSSchema<DB> {
  const out: Record<string, TablePolicies> = {};
  for (const [table, policies] of Object.entries(schema as Record<string, TablePolicies | undefined>)) {
    if (policies === undefined) continue;
    if (!Array.isArray(policies.policies)) {
      throw new TypeError(`Cannot define the RLS schema: 'policies' of table '${table}' must be an array`);
    }
    out[table] = Object.freeze({ ...policies, policies: Object.freeze([...policies.policies]) });
  }
  return Object.freeze(out) as RLSSchema<DB>;
}
