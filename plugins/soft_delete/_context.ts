/** The soft-delete plugins' shared per-call context (private). */
import { PluginContext } from "../../executor/mod.ts";
import type { SoftDeleteScope } from "./with_deleted.ts";

/** The value stored in the context. */
export interface InternalScope {
  readonly mode?: SoftDeleteScope["mode"] | undefined;
  readonly tables?: SoftDeleteScope["tables"] | undefined;
}

/** The context every soft-delete plugin reads its opt-in from. */
export const SOFT_DELETE_CONTEXT: PluginContext<SoftDeleteScope> = new PluginContext<SoftDeleteScope>("softDelete");

/** Runs `fn` with `value` added to the current context value. */
export function runScoped<R>(value: InternalScope, fn: () => R): R {
  const current = SOFT_DELETE_CONTEXT.get() as InternalScope | undefined;
  return SOFT_DELETE_CONTEXT.run({ ...current, ...value } as SoftDeleteScope, fn);
}
