import { type Expression, type ExpressionBuilder, sql, type SqlBool } from "kysely";
import type { DialectName } from "../core/mod.ts";
import { InvalidWhereError } from "./errors.ts";

// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;

/** What compiling a where-DSL object needs to know. */
export interface WhereContext {
  readonly table: string;
  readonly dialect: DialectName;
  /** The known columns; `undefined`: any identifier-like name is accepted. */
  readonly columns: ReadonlySet<string> | undefined;
}

const OPERATORS: ReadonlySet<string> = new Set([
  "$eq",
  "$ne",
  "$gt",
  "$gte",
  "$lt",
  "$lte",
  "$in",
  "$nin",
  "$like",
  "$ilike",
  "$contains",
  "$startsWith",
  "$endsWith",
  "$isNull",
  "$isNotNull",
  "$between",
]);

const COMPARISONS: Readonly<Record<string, "=" | "<>" | ">" | ">=" | "<" | "<=">> = {
  $eq: "=",
  $ne: "<>",
  $gt: ">",
  $gte: ">=",
  $lt: "<",
  $lte: "<=",
};

/**
 * `<ref> LIKE <pattern>` where `\` escapes, case-insensitive when asked
 * (ILIKE on PostgreSQL, `lower()` on both sides elsewhere). PostgreSQL's and
 * MySQL's LIKE escape with `\` by default, so they need no ESCAPE clause (which
 * would only cost); SQLite has no default escape, so it gets `ESCAPE '\'`
 * when the pattern holds a backslash; MSSQL always gets one.
 */
function likeOf(
  dialect: DialectName,
  ref: Expression<unknown>,
  pattern: string,
  ignoreCase = false,
): Expression<SqlBool> {
  const escape = dialect === "mssql" || (dialect === "sqlite" && pattern.includes("\\")) ? sql` escape '\\'` : sql``;
  if (!ignoreCase) return sql<SqlBool>`${ref} like ${pattern}${escape}`;
  return dialect === "postgres"
    ? sql<SqlBool>`${ref} ilike ${pattern}`
    : sql<SqlBool>`lower(${ref}) like lower(${pattern})${escape}`;
}

/** Escapes LIKE metacharacters so `text` matches itself. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const TRUE = (eb: AnyEB): Expression<SqlBool> => eb(eb.lit<number>(1), "=", eb.lit<number>(1));
const FALSE = (eb: AnyEB): Expression<SqlBool> => eb(eb.lit<number>(1), "=", eb.lit<number>(0));

/**
 * Compiles a where-DSL object to a Kysely expression; `undefined` when it
 * sets no condition (`{}`, only `undefined` values, an `$or` with an empty
 * branch), which a bulk write refuses.
 */
export function compileWhere(eb: AnyEB, where: unknown, ctx: WhereContext): Expression<SqlBool> | undefined {
  if (!isPlainObject(where)) {
    throw new InvalidWhereError(ctx.table, `a where clause must be a plain object: current value is ${typeof where}`);
  }
  const parts: Expression<SqlBool>[] = [];
  for (const key of Object.keys(where)) {
    const value = where[key];
    if (value === undefined) continue;
    switch (key) {
      case "$and":
      case "$or": {
        if (!Array.isArray(value)) {
          throw new InvalidWhereError(ctx.table, `'${key}' must be an array of where clauses`);
        }
        // An empty clause is "no condition": dropped from $and; in an $or it
        // holds for every row, so the $or adds nothing (and a write whose
        // where is left with no condition is refused, as `{}` is).
        const inner = value.map((w) => compileWhere(eb, w, ctx));
        if (key === "$and") {
          const given = inner.filter((e) => e !== undefined);
          if (given.length > 0) parts.push(given.length === 1 ? given[0]! : eb.and(given));
        } else {
          if (inner.length === 0) parts.push(FALSE(eb));
          else if (inner.every((e) => e !== undefined)) parts.push(inner.length === 1 ? inner[0]! : eb.or(inner));
          // else: a branch holds for every row, so the $or filters nothing.
        }
        break;
      }
      case "$not": {
        const inner = compileWhere(eb, value, ctx);
        parts.push(inner === undefined ? FALSE(eb) : eb.not(inner));
        break;
      }
      default:
        if (key.startsWith("$")) throw new InvalidWhereError(ctx.table, `unknown operator '${key}'`);
        checkColumn(key, ctx);
        compileColumn(eb, key, value, ctx, parts);
    }
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0]! : eb.and(parts);
}

/** Lists longer than this are sent in a form whose parameter count does not grow with them. */
export const LONG_LIST = 1_000;

/**
 * `ref IN (...)` / `ref NOT IN (...)`, under every dialect's parameter limit
 * (PostgreSQL 65,535, SQLite 32,766) however long the list: PostgreSQL takes
 * a long list as one array parameter (`= any($1)`, `<> all($1)`, typed by the
 * column), SQLite a long list of safe integers as literals (no parameters;
 * integers cannot carry SQL). MySQL/MariaDB get parameters (the driver
 * interpolates them, so no limit applies).
 */
function inList(
  eb: AnyEB,
  ref: Expression<unknown>,
  positive: boolean,
  values: readonly unknown[],
  dialect: DialectName,
): Expression<SqlBool> {
  if (values.length > LONG_LIST) {
    if (dialect === "postgres") {
      return positive ? eb(ref, "=", eb.fn("any", [eb.val(values)])) : eb(ref, "<>", eb.fn("all", [eb.val(values)]));
    }
    if (dialect === "sqlite" && values.every((v) => Number.isSafeInteger(v))) {
      return eb(ref, positive ? "in" : "not in", values.map((v) => eb.lit(v as number)));
    }
  }
  return eb(ref, positive ? "in" : "not in", values);
}

/** Throws {@linkcode InvalidWhereError} for a column the repository does not know. */
export function checkColumn(column: string, ctx: WhereContext): void {
  if (ctx.columns !== undefined ? !ctx.columns.has(column) : !/^[A-Za-z_][A-Za-z0-9_$]*$/.test(column)) {
    throw new InvalidWhereError(ctx.table, `unknown column '${column}'`);
  }
}

function compileColumn(eb: AnyEB, column: string, value: unknown, ctx: WhereContext, parts: Expression<SqlBool>[]) {
  const ref = eb.ref(column);
  if (value === null) {
    parts.push(eb(ref, "is", null));
    return;
  }
  if (!isPlainObject(value)) {
    parts.push(eb(ref, "=", value));
    return;
  }
  const like = (pattern: unknown, op: string) => {
    if (typeof pattern !== "string") {
      throw new InvalidWhereError(
        ctx.table,
        `'${op}' on '${column}' needs a string: current value is ${typeof pattern}`,
      );
    }
    return pattern;
  };
  for (const op of Object.keys(value)) {
    const operand = value[op];
    if (!OPERATORS.has(op)) throw new InvalidWhereError(ctx.table, `unknown operator '${op}' on column '${column}'`);
    if (operand === undefined) continue;
    switch (op) {
      case "$eq":
      case "$ne":
        if (operand === null) parts.push(eb(ref, op === "$eq" ? "is" : "is not", null));
        else parts.push(eb(ref, COMPARISONS[op]!, operand));
        break;
      case "$gt":
      case "$gte":
      case "$lt":
      case "$lte":
        parts.push(eb(ref, COMPARISONS[op]!, operand));
        break;
      case "$in":
      case "$nin": {
        if (!Array.isArray(operand)) throw new InvalidWhereError(ctx.table, `'${op}' on '${column}' needs an array`);
        if (operand.length === 0) parts.push(op === "$in" ? FALSE(eb) : TRUE(eb));
        else parts.push(inList(eb, ref, op === "$in", operand, ctx.dialect));
        break;
      }
      case "$isNull":
      case "$isNotNull":
        parts.push(eb(ref, (operand === true) === (op === "$isNull") ? "is" : "is not", null));
        break;
      case "$between": {
        if (!Array.isArray(operand) || operand.length !== 2) {
          throw new InvalidWhereError(ctx.table, `'$between' on '${column}' needs two values`);
        }
        parts.push(eb.between(ref, operand[0], operand[1]));
        break;
      }
      case "$like":
        parts.push(likeOf(ctx.dialect, ref, like(operand, op)));
        break;
      case "$ilike":
        parts.push(likeOf(ctx.dialect, ref, like(operand, op), true));
        break;
      case "$contains":
        parts.push(likeOf(ctx.dialect, ref, `%${escapeLike(like(operand, op))}%`));
        break;
      case "$startsWith":
        parts.push(likeOf(ctx.dialect, ref, `${escapeLike(like(operand, op))}%`));
        break;
      case "$endsWith":
        parts.push(likeOf(ctx.dialect, ref, `%${escapeLike(like(operand, op))}`));
        break;
    }
  }
}
