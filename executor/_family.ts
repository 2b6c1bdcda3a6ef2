/**
 * What every executor derived from one `createExecutor` call shares: the
 * plugins sorted by the hooks they have, the dialect, and the raw-SQL
 * policy, including which compiled queries this family compiled and in
 * which plugin contexts.
 */
import type { CompiledQuery, Kysely } from "kysely";
import type { KyseraPlugin } from "./kysera_plugin.ts";
import { isRawSqlAllowed } from "./plugin_context.ts";
import { RawSqlRefusedError } from "./plugin_error.ts";
import { type DialectName, dialectOfAdapter } from "../core/mod.ts";

/** What every executor derived from one `createExecutor` call shares. */
export class Family {
  readonly plugins: readonly KyseraPlugin[];
  readonly transformers: readonly KyseraPlugin[];
  readonly resultTransformers: readonly KyseraPlugin[];
  readonly interceptors: readonly KyseraPlugin[];
  readonly writers: readonly KyseraPlugin[];
  readonly scopers: readonly KyseraPlugin[];
  readonly around: readonly KyseraPlugin[];
  readonly aroundQuery: readonly KyseraPlugin[];
  /** Whether connections are tracked for their transaction state (a hook needs it). */
  readonly tracking: boolean;
  readonly rawPolicies: readonly KyseraPlugin[];
  /** The plugins with a context, whose values a compiled query is bound to. */
  readonly contextual: readonly KyseraPlugin[];
  /** Whether any hook works on the tree of a builder as Kysely turns it into nodes (`transformQuery`, raw SQL). */
  readonly buildHooks: boolean;
  /** Whether any hook rewrites the whole statement when it is compiled (`interceptQuery`, `onWrite`, `scopeRows`). */
  readonly compileHooks: boolean;
  /**
   * The queries this family compiled (so not "precompiled elsewhere"), each
   * with the plugin contexts it was compiled in: its scopes and write checks
   * are those contexts', so it may run only where they are in force.
   */
  readonly #compiled = new WeakMap<CompiledQuery, readonly unknown[]>();
  /** The Kysely the executor was made from. */
  // deno-lint-ignore no-explicit-any
  readonly raw: Kysely<any>;

  #dialect: DialectName | undefined | null = null;

  /** The dialect of the executor's adapter, `undefined` for a third-party adapter. */
  get dialect(): DialectName | undefined {
    if (this.#dialect === null) {
      try {
        this.#dialect = dialectOfAdapter(this.raw.getExecutor().adapter);
      } catch {
        this.#dialect = undefined;
      }
    }
    return this.#dialect;
  }

  // deno-lint-ignore no-explicit-any
  constructor(raw: Kysely<any>, plugins: readonly KyseraPlugin[]) {
    this.raw = raw;
    this.plugins = plugins;
    this.transformers = plugins.filter((p) => p.transformQuery !== undefined);
    this.resultTransformers = plugins.filter((p) => p.transformResult !== undefined);
    this.interceptors = plugins.filter((p) => p.interceptQuery !== undefined);
    this.writers = plugins.filter((p) => p.onWrite !== undefined);
    this.scopers = plugins.filter((p) => p.scopeRows !== undefined);
    this.around = plugins.filter((p) => p.aroundWrite !== undefined);
    this.aroundQuery = plugins.filter((p) => p.aroundQuery !== undefined);
    this.tracking = this.around.length + this.aroundQuery.length > 0;
    this.rawPolicies = plugins.filter((p) => p.rawSql !== undefined && p.rawSql !== "allow");
    this.contextual = plugins.filter((p) => p.context !== undefined);
    this.buildHooks = this.transformers.length + this.rawPolicies.length > 0;
    this.compileHooks = this.interceptors.length + this.writers.length + this.scopers.length > 0;
  }

  /** Records a query this family compiled, with the contexts in force (only when a raw-SQL policy needs it). */
  compiled(query: CompiledQuery): void {
    if (this.rawPolicies.length > 0) this.#compiled.set(query, this.#contexts());
  }

  #contexts(): readonly unknown[] {
    const contextual = this.contextual;
    if (contextual.length === 0) return NO_CONTEXTS;
    const out = new Array<unknown>(contextual.length);
    for (let i = 0; i < contextual.length; i++) out[i] = contextual[i]!.context!.get();
    return out;
  }

  /**
   * The raw-SQL policy for a compiled query about to run: one compiled
   * elsewhere (`executeQuery(db.selectFrom(...).compile())`) passed no hook;
   * one compiled here in other plugin contexts (another tenant's, the system
   * context) carries their scopes. Either is raw SQL to a plugin.
   */
  checkCompiled(query: CompiledQuery): void {
    if (this.rawPolicies.length === 0) return;
    const contexts = this.#compiled.get(query);
    if (contexts === undefined) return this.checkRaw("precompiled query");
    if (contexts === NO_CONTEXTS) return;
    const contextual = this.contextual;
    for (let i = 0; i < contextual.length; i++) {
      if (!sameValue(contextual[i]!.context!.get(), contexts[i])) {
        return this.checkRaw("query compiled in another context");
      }
    }
  }

  checkRaw(source: string): void {
    if (this.rawPolicies.length === 0 || isRawSqlAllowed()) return;
    for (const plugin of this.rawPolicies) {
      const policy = plugin.rawSql;
      const allowed = typeof policy === "function"
        ? policy({ source, context: plugin.context?.get() })
        : policy !== "refuse";
      if (!allowed) throw new RawSqlRefusedError(plugin.name, source);
    }
  }
}

const NO_CONTEXTS: readonly unknown[] = Object.freeze([]);

/**
 * Whether two context values are the same: one object, or equal data
 * (plain objects, arrays, dates and primitives, compared in depth), as a
 * context made anew for each request holds (`rlsContext.runAsync(T2, ...)`
 * twice). Anything else (functions, class instances) must be the same
 * object.
 */
function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || depth > 16) return false;
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every((item, i) => sameValue(item, b[i], depth + 1));
  }
  const pa = Object.getPrototypeOf(a);
  if ((pa !== Object.prototype && pa !== null) || Object.getPrototypeOf(b) !== pa) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) =>
    Object.hasOwn(b, k) &&
    sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1)
  );
}
