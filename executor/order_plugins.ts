import type { KyseraPlugin } from "./kysera_plugin.ts";
import { PluginValidationError } from "./plugin_error.ts";

/**
 * Validates a list of plugins and returns it in execution order:
 * dependencies first, then higher `priority`, then name.
 *
 * @param plugins The plugins, in any order.
 * @returns A new frozen array in execution order.
 * @throws {PluginValidationError} With reason `duplicate-name`,
 *   `missing-dependency`, `conflict` or `dependency-cycle` (the message and
 *   `cycle` show the cycle's path).
 *
 * @example Ordering plugins
 * ```ts
 * import assert from "node:assert/strict";
 * import { orderPlugins } from "@kysera/kysera/executor";
 *
 * const order = orderPlugins([
 *   { name: "audit", dependencies: ["tenant"] },
 *   { name: "timestamps", priority: 10 },
 *   { name: "tenant" },
 * ]).map((p) => p.name);
 * assert.deepEqual(order, ["timestamps", "tenant", "audit"]);
 * ```
 */
export function orderPlugins<P extends KyseraPlugin>(plugins: readonly P[]): readonly P[] {
  const byName = new Map<string, P>();
  for (const plugin of plugins) {
    if (byName.has(plugin.name)) throw new PluginValidationError({ reason: "duplicate-name", plugin: plugin.name });
    byName.set(plugin.name, plugin);
  }
  for (const plugin of plugins) {
    for (const dependency of plugin.dependencies ?? []) {
      if (!byName.has(dependency)) {
        throw new PluginValidationError({ reason: "missing-dependency", plugin: plugin.name, other: dependency });
      }
    }
    for (const other of plugin.conflictsWith ?? []) {
      if (byName.has(other)) throw new PluginValidationError({ reason: "conflict", plugin: plugin.name, other });
    }
  }
  // Cycles first, by depth-first search, so the error can show the path.
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (name: string): void => {
    const seen = state.get(name);
    if (seen === "done") return;
    if (seen === "visiting") {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new PluginValidationError({ reason: "dependency-cycle", plugin: name, cycle });
    }
    state.set(name, "visiting");
    path.push(name);
    for (const dependency of byName.get(name)?.dependencies ?? []) visit(dependency);
    path.pop();
    state.set(name, "done");
  };
  for (const plugin of plugins) visit(plugin.name);

  // Kahn's algorithm; among the ready plugins, higher priority, then name.
  const before = (a: P, b: P): number =>
    (b.priority ?? 0) - (a.priority ?? 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const placed = new Set<string>();
  const ordered: P[] = [];
  let pending = [...plugins];
  while (pending.length > 0) {
    const ready = pending.filter((p) => (p.dependencies ?? []).every((d) => placed.has(d))).sort(before);
    const next = ready[0] as P; // never empty: there is no cycle
    ordered.push(next);
    placed.add(next.name);
    pending = pending.filter((p) => p !== next);
  }
  return Object.freeze(ordered);
}
