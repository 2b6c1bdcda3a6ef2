import { KyseraError } from "../../core/mod.ts";

/** The operations a row-level security policy speaks about. */
export type RLSOperation = "read" | "create" | "update" | "delete";

/**
 * A query or write was refused by a row-level security policy: a `deny`
 * matched, no `allow` permitted it (with `defaultDeny`, or when the table has
 * `allow` policies for the operation), a written value broke a filter's
 * column map (a forged tenant id, a row moved to another tenant), or a
 * `validate` policy returned `false`. Thrown before any SQL is sent.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { RLSPolicyViolation } from "@kysera/kysera/rls";
 *
 * const error = new RLSPolicyViolation("create", "posts", "'tenant_id' must be 1");
 * assert.equal(error.message, "Cannot create rows in 'posts': 'tenant_id' must be 1");
 * ```
 */
export class RLSPolicyViolation extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "RLSPolicyViolation";
  /** The refused operation. */
  readonly operation: RLSOperation;
  /** The table. */
  readonly table: string;
  /** Why, in words (never the row's data). */
  readonly reason: string;

  /**
   * Creates a {@linkcode RLSPolicyViolation}.
   *
   * @param operation The refused operation.
   * @param table The table.
   * @param reason Why, in words.
   */
  constructor(operation: RLSOperation, table: string, reason: string) {
    super(`Cannot ${operation} rows in '${table}': ${reason}`, "RLS_POLICY_VIOLATION");
    this.operation = operation;
    this.table = table;
    this.reason = reason;
  }
}

/**
 * A query touched a table under row-level security with no RLS context (no
 * enclosing `rlsContext.runAsync(...)`) while the plugin requires one. No
 * SQL was sent.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { RLSContextError } from "@kysera/kysera/rls";
 *
 * assert.equal(
 *   new RLSContextError("posts").message,
 *   "Cannot query 'posts': no RLS context; run the call inside rlsContext.runAsync()",
 * );
 * ```
 */
export class RLSContextError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "RLSContextError";
  /** The table the query touched, if known. */
  readonly table: string | undefined;

  /**
   * Creates a {@linkcode RLSContextError}.
   *
   * @param table The table the query touched, if known.
   */
  constructor(table?: string) {
    super(
      `Cannot query ${table === undefined ? "tables under RLS" : `'${table}'`}: no RLS context; ` +
        "run the call inside rlsContext.runAsync()",
      "RLS_CONTEXT_MISSING",
    );
    this.table = table;
  }
}

/**
 * Tells whether a value is an {@linkcode RLSPolicyViolation}.
 *
 * @param value Anything caught.
 * @returns `true` for a policy violation.
 *
 * @example Recognising a RLSPolicyViolation
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRLSPolicyViolation } from "@kysera/kysera/rls";
 *
 * assert.equal(isRLSPolicyViolation(new Error("x")), false);
 * ```
 */
export function isRLSPolicyViolation(value: unknown): value is RLSPolicyViolation {
  return value instanceof RLSPolicyViolation;
}

/**
 * Tells whether a value is an {@linkcode RLSContextError}.
 *
 * @param value Anything caught.
 * @returns `true` for a missing RLS context.
 *
 * @example Recognising a RLSContextError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRLSContextError, RLSContextError } from "@kysera/kysera/rls";
 *
 * assert.ok(isRLSContextError(new RLSContextError()));
 * ```
 */
export function isRLSContextError(value: unknown): value is RLSContextError {
  return value instanceof RLSContextError;
}

/**
 * The startup check of native row-level security found that native
 * policies would not bind the application's connection (see
 * `checkNativeRLS`): the role owns a table, is a superuser or has
 * BYPASSRLS, or a table does not have row-level security enabled and forced.
 *
 * @example Inspecting the error
 * ```ts
 * import assert from "node:assert/strict";
 * import { NativeRLSError } from "@kysera/kysera/rls";
 *
 * assert.equal(
 *   new NativeRLSError("app", ["Role 'app' has BYPASSRLS: native policies do not apply to it"]).message,
 *   "Native row-level security does not bind role 'app': Role 'app' has BYPASSRLS: native policies do not apply to it",
 * );
 * ```
 */
export class NativeRLSError extends KyseraError {
  /** The name of this class in the recorded class chain. */
  static override readonly kind: string = "NativeRLSError";
  /** The connected role. */
  readonly role: string;
  /** What is wrong, one sentence each. */
  readonly problems: readonly string[];

  /**
   * Creates a {@linkcode NativeRLSError}.
   *
   * @param role The connected role.
   * @param problems What is wrong.
   */
  constructor(role: string, problems: readonly string[]) {
    super(`Native row-level security does not bind role '${role}': ${problems.join("; ")}`, "RLS_NATIVE_UNSAFE");
    this.role = role;
    this.problems = problems;
  }
}

/**
 * Tells whether a value is a {@linkcode NativeRLSError}.
 *
 * @param value Anything caught.
 * @returns `true` for a failed native startup check.
 *
 * @example Recognising a NativeRLSError
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNativeRLSError } from "@kysera/kysera/rls";
 *
 * assert.equal(isNativeRLSError(new Error("x")), false);
 * ```
 */
export function isNativeRLSError(value: unknown): value is NativeRLSError {
  return value instanceof NativeRLSError;
}
