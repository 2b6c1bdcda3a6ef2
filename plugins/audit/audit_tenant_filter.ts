/** What {@linkcode auditTenantFilter} reads of an RLS policy's context. */
export interface AuditTenantContext {
  /** The identity; `tenantId` is the default tenant. */
  readonly auth: { readonly tenantId?: string | number | undefined };
  /** The context's `meta`, for a tenant kept there. */
  readonly meta?: Readonly<Record<string, unknown>> | undefined;
}

/** The column map {@linkcode auditTenantFilter} returns. */
export type AuditTenantMap = (ctx: AuditTenantContext) => { readonly tenant_id: unknown };

/**
 * The row filter that keeps each tenant to its own audit rows, for the RLS
 * schema's entry of the audit table: `filter("read", auditTenantFilter())`.
 * The audit plugin stores the tenant as text in `tenant_id` (its `tenant`
 * option), so the filter compares text with text: a numeric tenant id is
 * turned into its string, which a plain `{ tenant_id: ctx.auth.tenantId }`
 * does not do (SQLite binds a JavaScript number as a real, `1.0`, which
 * never equals the stored `'1'`). A context without a tenant matches no
 * audit row. The map form also generates native PostgreSQL policies
 * (`generateNativePolicies`) like any other column map.
 *
 * @param tenantOf Where the tenant is in the context. @default (ctx) => ctx.auth.tenantId
 * @returns A column-map function for the RLS plugin's `filter("read", ...)`.
 *
 * @example The audit table under row-level security
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRLSSchema, deny, filter } from "@kysera/kysera/rls";
 * import { auditTenantFilter } from "@kysera/kysera/audit";
 *
 * const schema = defineRLSSchema({
 *   posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
 *   // Read filtered by tenant; written only by the audit plugin (append-only for the application).
 *   audit_logs: { policies: [filter("read", auditTenantFilter()), deny(["create", "update", "delete"])] },
 * });
 * assert.deepEqual(auditTenantFilter()({ auth: { tenantId: 7 } }), { tenant_id: "7" });
 * assert.deepEqual(Object.keys(schema), ["posts", "audit_logs"]);
 * ```
 */
export function auditTenantFilter(
  tenantOf: (ctx: AuditTenantContext) => unknown = (ctx) => ctx.auth.tenantId,
): AuditTenantMap {
  return (ctx) => {
    const tenant = tenantOf(ctx);
    return { tenant_id: typeof tenant === "number" || typeof tenant === "bigint" ? String(tenant) : tenant };
  };
}
