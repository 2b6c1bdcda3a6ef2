import { RLS_CONTEXT } from "./_context.ts";
import { RLSContextError } from "./errors.ts";

/** Who is asking: the verified identity a request runs as. */
export interface RLSAuth {
  /** The user's id. */
  readonly userId: string | number;
  /** The user's tenant; `undefined` means none (filters that use it match no rows). */
  readonly tenantId?: string | number | undefined;
  /** The user's roles (a role in the plugin's `bypassRoles` lifts every policy). */
  readonly roles: readonly string[];
  /** Permissions, for `allow`/`deny` conditions. */
  readonly permissions?: readonly string[] | undefined;
  /** A system context lifts every policy. Set it with {@linkcode RLSContextApi.asSystemAsync}. */
  readonly isSystem?: boolean | undefined;
}

/** The value an RLS context holds. */
export interface RLSContext {
  /** The identity. */
  readonly auth: RLSAuth;
  /** Anything else policies read (an organisation, a request id). */
  readonly meta?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * The operations of {@linkcode rlsContext}. A context is frozen on entry
 * (copied unless it is frozen all the way down already), so a policy can
 * rely on it not changing during the call.
 */
export interface RLSContextApi {
  /** Runs `fn` as `context` (frozen), for everything `fn` starts. */
  runAsync<R>(context: RLSContext, fn: () => Promise<R>): Promise<R>;
  /** Runs a synchronous `fn` as `context`. */
  run<R>(context: RLSContext, fn: () => R): R;
  /**
   * Runs `fn` in a system context: every RLS policy is lifted. Keeps the
   * current identity (if any) and adds `isSystem: true`.
   */
  asSystemAsync<R>(fn: () => Promise<R>): Promise<R>;
  /** The current context. @throws {RLSContextError} Outside any context. */
  getContext(): RLSContext;
  /** The current context, or `undefined`. */
  getContextOrNull(): RLSContext | undefined;
  /** Whether a context is set. */
  hasContext(): boolean;
  /** The current user id. @throws {RLSContextError} Outside any context. */
  getUserId(): string | number;
  /** The current tenant id (`undefined` when the context has none). @throws {RLSContextError} Outside any context. */
  getTenantId(): string | number | undefined;
  /**
   * The current user id, or `undefined` outside any context: for code that
   * also runs where RLS is not set up (an audit `actor`, a log line).
   */
  userId(): string | number | undefined;
  /** The current tenant id, or `undefined` outside any context (or when the context has none). */
  tenantId(): string | number | undefined;
  /** Whether the current user has `role` (`false` outside any context). */
  hasRole(role: string): boolean;
  /** Whether the current user has `permission` (`false` outside any context). */
  hasPermission(permission: string): boolean;
  /** Whether the call runs in a system context. */
  isSystem(): boolean;
}

function freeze(context: RLSContext): RLSContext {
  if (typeof context !== "object" || context === null || typeof context.auth !== "object" || context.auth === null) {
    throw new TypeError("Cannot run with an RLS context: 'auth' must be an object");
  }
  if (!Array.isArray(context.auth.roles)) {
    throw new TypeError("Cannot run with an RLS context: 'auth.roles' must be an array");
  }
  // A context frozen all the way down (one this module froze, say) is used as is.
  if (
    Object.isFrozen(context) && Object.isFrozen(context.auth) && Object.isFrozen(context.auth.roles) &&
    (context.auth.permissions === undefined || Object.isFrozen(context.auth.permissions))
  ) {
    return context;
  }
  return Object.freeze({
    ...context,
    auth: Object.freeze({
      ...context.auth,
      roles: Object.freeze([...context.auth.roles]),
      ...(context.auth.permissions === undefined ? {} : { permissions: Object.freeze([...context.auth.permissions]) }),
    }),
  });
}

/**
 * The RLS context: who the current call runs as. Backed by
 * `AsyncLocalStorage`, so concurrent requests each see their own.
 *
 * @example Running a request as a tenant's user
 * ```ts
 * import assert from "node:assert/strict";
 * import { rlsContext } from "@kysera/kysera/rls";
 *
 * const tenant = await rlsContext.runAsync(
 *   { auth: { userId: 1, tenantId: 7, roles: ["user"] } },
 *   async () => rlsContext.getTenantId(),
 * );
 * assert.equal(tenant, 7);
 * assert.equal(rlsContext.hasContext(), false);
 * assert.ok(await rlsContext.asSystemAsync(async () => rlsContext.isSystem()));
 * ```
 */
export const rlsContext: RLSContextApi = Object.freeze({
  runAsync<R>(context: RLSContext, fn: () => Promise<R>): Promise<R> {
    return RLS_CONTEXT.run(freeze(context), fn);
  },
  run<R>(context: RLSContext, fn: () => R): R {
    return RLS_CONTEXT.run(freeze(context), fn);
  },
  asSystemAsync<R>(fn: () => Promise<R>): Promise<R> {
    const current = RLS_CONTEXT.get();
    const auth: RLSAuth = current === undefined
      ? { userId: "system", roles: [], isSystem: true }
      : { ...current.auth, isSystem: true };
    return RLS_CONTEXT.run(freeze({ ...current, auth }), fn);
  },
  getContext(): RLSContext {
    const context = RLS_CONTEXT.get();
    if (context === undefined) throw new RLSContextError();
    return context;
  },
  getContextOrNull(): RLSContext | undefined {
    return RLS_CONTEXT.get();
  },
  hasContext(): boolean {
    return RLS_CONTEXT.get() !== undefined;
  },
  getUserId(): string | number {
    return rlsContext.getContext().auth.userId;
  },
  getTenantId(): string | number | undefined {
    return rlsContext.getContext().auth.tenantId;
  },
  userId(): string | number | undefined {
    return RLS_CONTEXT.get()?.auth.userId;
  },
  tenantId(): string | number | undefined {
    return RLS_CONTEXT.get()?.auth.tenantId;
  },
  hasRole(role: string): boolean {
    return RLS_CONTEXT.get()?.auth.roles.includes(role) ?? false;
  },
  hasPermission(permission: string): boolean {
    return RLS_CONTEXT.get()?.auth.permissions?.includes(permission) ?? false;
  },
  isSystem(): boolean {
    return RLS_CONTEXT.get()?.auth.isSystem === true;
  },
});
