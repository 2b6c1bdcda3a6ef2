/**
 * What every executor derived from one `createExecutor` call shares: the
 * plugins sorted by the hooks they have, the dialect, and the raw-SQL
 * policy (including which compiled query may run as this family's own).
 */
import type { CompiledQuery, Kysely } from "kysely";
import type { KyseraPlugin } from "./kysera_plugin.ts";
import { isRawSqlAllowed } from "./plugin_context.ts";
import { RawSqlRefusedError } from "./plugin_error.ts";
import { unsafeSqlText } from "./_sql_text.ts";
import { type DialectName, dialectOfAdapter } from "../core/mod.ts";
import type { OutsideTransactionPolicy } from "./transaction_scope.ts";

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
  /** The plugins with an `onTransaction` hook. */
  readonly observers: readonly KyseraPlugin[];
  /** Whether connections are tracked for their transaction state (a hook needs it). */
  readonly tracking: boolean;
  readonly rawPolicies: readonly KyseraPlugin[];
  /** Whether any hook works on the tree of a builder as Kysely turns it into nodes (`transformQuery`, raw SQL). */
  readonly buildHooks: boolean;
  /** Whether any hook rewrites the whole statement when it is compiled (`interceptQuery`, `onWrite`, `scopeRows`). */
  readonly compileHooks: boolean;
  /**
   * The query this family compiled last, while a raw-SQL policy is on.
   * Kysely compiles a builder's query and hands it to `executeQuery` (or
   * `stream`) in one synchronous step, so the query about to run is that
   * one, compiled in the context it runs in. Any other compiled query, one
   * compiled elsewhere (`executeQuery(db.selectFrom(...).compile())`) or
   * earlier, maybe in another tenant's or the system context, carries scopes
   * and checks that may not hold now: raw SQL to a plugin. The plugin
   * contexts it was compiled in are kept with it, so that even the last
   * query runs only where they are still in force.
   */
  #last: CompiledQuery | undefined;
  /**
   * Whether the statement being compiled needs its text read (see
   * `_sql_text.ts`): set by the row-scope walk for the statement it just
   * walked (compiling follows it in the same synchronous step), and back to
   * `true` after every compile, so a statement no walk saw is always read.
   */
  textCheck = true;
  #lastContexts: unknown[] | undefined;
  /** The plugins with a context. */
  readonly #contextual: readonly KyseraPlugin[];
  /** What a query that bypasses a running transaction callback gets. */
  readonly outsideTransaction: OutsideTransactionPolicy;
  /** How many transaction callbacks of this family run now (the check is skipped at 0). */
  openScopes = 0;
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

  constructor(
    // deno-lint-ignore no-explicit-any
    raw: Kysely<any>,
    plugins: readonly KyseraPlugin[],
    outsideTransaction: OutsideTransactionPolicy = "throw",
  ) {
    this.raw = raw;
    this.outsideTransaction = outsideTransaction;
    this.plugins = plugins;
    this.transformers = plugins.filter((p) => p.transformQuery !== undefined);
    this.resultTransformers = plugins.filter((p) => p.transformResult !== undefined);
    this.interceptors = plugins.filter((p) => p.interceptQuery !== undefined);
    this.writers = plugins.filter((p) => p.onWrite !== undefined);
    this.scopers = plugins.filter((p) => p.scopeRows !== undefined);
    this.around = plugins.filter((p) => p.aroundWrite !== undefined);
    this.aroundQuery = plugins.filter((p) => p.aroundQuery !== undefined);
    this.observers = plugins.filter((p) => p.onTransaction !== undefined);
    this.tracking = this.around.length + this.aroundQuery.length + this.observers.length > 0;
    this.rawPolicies = plugins.filter((p) => p.rawSql !== undefined && p.rawSql !== "allow");
    this.#contextual = plugins.filter((p) => p.context !== undefined);
    this.buildHooks = this.transformers.length + this.rawPolicies.length > 0;
    this.compileHooks = this.interceptors.length + this.writers.length + this.scopers.length > 0;
  }

  /** Records the query this family just compiled (only when a raw-SQL policy needs it). */
  compiled(query: CompiledQuery): void {
    if (this.rawPolicies.length === 0) return;
    // The text as the database will read it: a comment or a second
    // statement there is SQL no hook saw (see `_sql_text.ts`). The row-scope
    // walk says when a statement cannot hold one.
    if (this.textCheck) {
      const unsafe = unsafeSqlText(query.sql, this.dialect);
      if (unsafe !== undefined) this.checkRaw(`SQL text with ${unsafe}`);
    }
    this.textCheck = true;
    this.#last = query;
    const contextual = this.#contextual;
    if (contextual.length === 0) return;
    const contexts = this.#lastContexts ??= new Array<unknown>(contextual.length);
    for (let i = 0; i < contextual.length; i++) contexts[i] = contextual[i]!.context!.get();
  }

  /** The raw-SQL policy for a compiled query about to run: see {@linkcode Family.#last}. */
  checkCompiled(query: CompiledQuery): void {
    if (this.rawPolicies.length === 0) return;
    if (query === this.#last) {
      this.#last = undefined;
      const contexts = this.#lastContexts;
      const contextual = this.#contextual;
      let same = true;
      for (let i = 0; i < contextual.length; i++) {
        if (contextual[i]!.context!.get() !== contexts![i]) same = false;
      }
      if (same) return;
    }
    this.checkRaw("precompiled query");
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
