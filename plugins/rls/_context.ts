/** The RLS plugins' shared per-call context (private). */
import { PluginContext } from "../../executor/mod.ts";
import type { RLSContext } from "./context.ts";

/** The context every RLS plugin reads (one per process). */
export const RLS_CONTEXT: PluginContext<RLSContext> = new PluginContext<RLSContext>("rls");
