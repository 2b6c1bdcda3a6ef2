import { type Kysely, sql, type Transaction } from "kysely";
import { allowRawSql, type AnyKysely, type KyseraPlugin } from "../../executor/mod.ts";
import { getDialect } from "../../core/mod.ts";
import { RLS_CONTEXT } from "./_context.ts";
import type { RLSContext } from "./context.ts";
import { NativeRLSError, RLSContextError } from "./errors.ts";
import type { FilterMap, PolicyEvaluationContext, RLSSchema, TablePolicies } from "./schema.ts";

/** Options of {@linkcode generateNativePolicies}. */
export interface NativePolicyOptions {
  /** The prefix of the settings the policies read (`current_setting('app.tenant_id')`). @default {"app"} */
  readonly settingPrefix?: string;
  /**
   * PostgreSQL types to cast settings to, per column name (e.g.
   * `{ tenant_id: "integer" }`), so the comparison can use an index. A column
   * not named is compared as text (`"tenant_id"::text = ...`).
   * @default {{}}
   */
  readonly columnTypes?: Readonly<Record<string, string>>;
  /** Tables to leave out. @default {[]} */
  readonly excludeTables?: readonly string[];
  /**
   * What to do with a table that has an expression filter, which has no SQL
   * form here: `"refuse"` throws, `"ignore"` generates the policies of its
   * column maps only (the application plugin still applies the expression).
   * @default {"refuse"}
   */
  readonly expressionFilters?: "refuse" | "ignore";
}

/** Options of {@linkcode applyNativeContext} and {@linkcode rlsTransaction}. */
export interface NativeContextOptions {
  /** The settings' prefix; the same as {@linkcode NativePolicyOptions.settingPrefix}. @default {"app"} */
  readonly settingPrefix?: string;
  /** Roles that set the bypass setting, like the plugin's `bypassRoles`. @default {[]} */
  readonly bypassRoles?: readonly string[];
}

class Setting {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

function checkPrefix(prefix: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) {
    throw new TypeError(
      `Cannot use the setting prefix: it must be a lower-case identifier: current value is ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

function settingName(prefix: string, key: string): string {
  const name = `${prefix}.${snake(key)}`;
  if (!/^[a-z_][a-z0-9_.]*$/.test(name)) {
    throw new TypeError(`Cannot use the context field as a setting: current value is ${JSON.stringify(key)}`);
  }
  return name;
}

/** Quotes an SQL identifier for PostgreSQL. */
function ident(name: string): string {
  if (name.includes("\0")) throw new TypeError("Cannot quote an identifier containing a NUL character");
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes a value as a PostgreSQL literal. */
function literal(value: unknown): string {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`Cannot write a policy literal: current value is ${value}`);
    return String(value);
  }
  if (typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") {
    if (value.includes("\0")) throw new TypeError("Cannot write a policy literal containing a NUL character");
    return `'${value.replaceAll("'", "''")}'`;
  }
  throw new TypeError(`Cannot write a policy literal: unsupported value of type ${typeof value}`);
}

function castOf(types: Readonly<Record<string, string>>, column: string): string | undefined {
  const type = types[column];
  if (type === undefined) return undefined;
  if (!/^[a-z][a-z0-9_ ]*(\(\d+(,\s*\d+)?\))?$/i.test(type)) {
    throw new TypeError(`Cannot cast to the column type of '${column}': current value is ${JSON.stringify(type)}`);
  }
  return type;
}

/** A context whose every field reads as a setting marker. */
function recordingContext(prefix: string, table: string): PolicyEvaluationContext {
  const fields = (group: string) =>
    new Proxy({}, {
      get: (_t, key) =>
        typeof key === "string" ? new Setting(settingName(prefix, group === "" ? key : `${group}_${key}`)) : undefined,
    });
  return {
    auth: fields("") as PolicyEvaluationContext["auth"],
    meta: fields("meta") as PolicyEvaluationContext["meta"],
    table,
    operation: "read",
  };
}

function condition(column: string, value: unknown, types: Readonly<Record<string, string>>): string {
  const col = ident(column);
  const cast = castOf(types, column);
  const setting = (s: Setting) => `nullif(current_setting(${literal(s.name)}, true), '')`;
  if (value === null) return `${col} is null`;
  if (value instanceof Setting) {
    return cast === undefined ? `${col}::text = ${setting(value)}` : `${col} = ${setting(value)}::${cast}`;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return "false";
    const items = value.map((v) =>
      v instanceof Setting
        ? (cast === undefined ? setting(v) : `${setting(v)}::${cast}`)
        : cast === undefined
        ? literal(String(v))
        : literal(v)
    );
    return `${cast === undefined ? `${col}::text` : col} in (${items.join(", ")})`;
  }
  return cast === undefined ? `${col}::text = ${literal(String(value))}` : `${col} = ${literal(value)}`;
}

function conditions(maps: readonly FilterMap[], types: Readonly<Record<string, string>>): string {
  const parts = maps.flatMap((map) => Object.entries(map).map(([c, v]) => condition(c, v, types)));
  return parts.length === 0 ? "true" : parts.join(" and ");
}

/**
 * Turns the column-map filters of an RLS schema into native PostgreSQL
 * row-level security: for each table, `ENABLE` and `FORCE ROW LEVEL
 * SECURITY` (so the owner is subject too) and one policy per command over
 * `current_setting('app.<field>', true)`: SELECT, UPDATE and DELETE rows
 * must match every filter (`USING`); INSERT and UPDATE values must match
 * the `'all'` filters (`WITH CHECK`). A context field `ctx.auth.tenantId`
 * reads setting `app.tenant_id`, `ctx.meta.orgId` reads `app.meta_org_id`.
 * An unset setting matches no row. Setting `app.bypass` to `on` (what
 * {@linkcode applyNativeContext} does in a system or bypass context) lifts
 * the policies. Identifiers and literals are quoted.
 *
 * `allow`/`deny`/`validate` policies have no native form: the plugin
 * enforces them. Apply the statements as the table owner, then connect the
 * application as a role that neither owns the tables nor has `BYPASSRLS`
 * (see {@linkcode checkNativeRLS}).
 *
 * @param schema The RLS schema.
 * @param options Setting prefix, column types, tables.
 * @returns The DDL statements, in order.
 * @throws {TypeError} For an expression filter (unless ignored), or a value that cannot be written.
 *
 * @example Native tenant policies
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineRLSSchema, filter, generateNativePolicies } from "@kysera/kysera/rls";
 *
 * const schema = defineRLSSchema<{ posts: { tenant_id: number } }>({
 *   posts: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
 * });
 * const ddl = generateNativePolicies(schema, { columnTypes: { tenant_id: "integer" } });
 * assert.equal(ddl[0], 'alter table "posts" enable row level security');
 * assert.equal(
 *   ddl[6],
 *   `create policy "kysera_rls_select" on "posts" for select using (("tenant_id" = nullif(current_setting('app.tenant_id', true), '')::integer) or coalesce(current_setting('app.bypass', true), '') = 'on')`,
 * );
 * ```
 */
export function generateNativePolicies<DB>(schema: RLSSchema<DB>, options: NativePolicyOptions = {}): string[] {
  const prefix = checkPrefix(options.settingPrefix ?? "app");
  const types = options.columnTypes ?? {};
  const excluded = new Set(options.excludeTables ?? []);
  const bypass = `coalesce(current_setting(${literal(`${prefix}.bypass`)}, true), '') = 'on'`;
  const out: string[] = [];
  for (const [table, policies] of Object.entries(schema as Record<string, TablePolicies | undefined>)) {
    if (policies === undefined || excluded.has(table)) continue;
    const ctx = recordingContext(prefix, table);
    const read: FilterMap[] = [];
    const write: FilterMap[] = [];
    for (const policy of policies.policies) {
      if (policy.type !== "filter") continue;
      if (policy.expression !== undefined) {
        if ((options.expressionFilters ?? "refuse") === "refuse") {
          throw new TypeError(
            `Cannot generate native policies for '${table}': an expression filter has no SQL form; ` +
              "pass expressionFilters: 'ignore' to generate its column maps only",
          );
        }
        continue;
      }
      const map = policy.map!(ctx);
      read.push(map);
      if (policy.operations.includes("all")) write.push(map);
    }
    const t = ident(table);
    const using = `((${conditions(read, types)}) or ${bypass})`;
    const check = `((${conditions(write, types)}) or ${bypass})`;
    out.push(`alter table ${t} enable row level security`, `alter table ${t} force row level security`);
    const commands: [string, string][] = [
      ["select", `for select using ${using}`],
      ["insert", `for insert with check ${check}`],
      ["update", `for update using ${using} with check ${check}`],
      ["delete", `for delete using ${using}`],
    ];
    for (const [command] of commands) out.push(`drop policy if exists ${ident(`kysera_rls_${command}`)} on ${t}`);
    for (const [command, body] of commands) {
      out.push(`create policy ${ident(`kysera_rls_${command}`)} on ${t} ${body}`);
    }
  }
  // Policies first in each table's group would be clearer to read, but ENABLE must come
  // before FORCE and both before traffic; the order above is per table: enable, force, drops, creates.
  return out;
}

/**
 * The settings {@linkcode applyNativeContext} writes for a context: every
 * `auth` field but `isSystem` (arrays comma-joined, `undefined` as empty,
 * which matches no row), every `meta` field as `meta_<name>`, and `bypass`
 * (`on` in a system or bypass context).
 *
 * @param context The RLS context.
 * @param options Prefix and bypass roles.
 * @returns Setting name to value.
 *
 * @example The session settings for a context
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeSettings } from "@kysera/kysera/rls";
 *
 * assert.deepEqual(nativeSettings({ auth: { userId: 5, tenantId: 1, roles: ["user"] } }), {
 *   "app.user_id": "5",
 *   "app.tenant_id": "1",
 *   "app.roles": "user",
 *   "app.bypass": "",
 * });
 * ```
 */
export function nativeSettings(context: RLSContext, options: NativeContextOptions = {}): Record<string, string> {
  const prefix = checkPrefix(options.settingPrefix ?? "app");
  const text = (v: unknown): string =>
    v === undefined || v === null ? "" : Array.isArray(v) ? v.map(String).join(",") : String(v);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(context.auth)) {
    if (key !== "isSystem") out[settingName(prefix, key)] = text(value);
  }
  for (const [key, value] of Object.entries(context.meta ?? {})) out[settingName(prefix, `meta_${key}`)] = text(value);
  const bypassRoles = new Set(options.bypassRoles ?? []);
  const bypass = context.auth.isSystem === true || context.auth.roles.some((r) => bypassRoles.has(r));
  out[settingName(prefix, "bypass")] = bypass ? "on" : "";
  return out;
}

/**
 * Sets the current RLS context as transaction-local PostgreSQL settings
 * (`set_config(name, value, true)`) on `trx`: they end with the
 * transaction, so a pooled connection never carries them to its next user.
 * Call it first in every transaction that relies on native policies (or
 * use {@linkcode rlsTransaction}, or let {@linkcode nativeRLSPlugin} do it
 * for every transaction of an executor). Outside a transaction the settings would
 * last one statement, and native policies see no context: no rows.
 *
 * @param trx A transaction (of an executor or a plain Kysely).
 * @param options Prefix and bypass roles.
 * @returns When the settings are applied.
 * @throws {RLSContextError} Outside any RLS context.
 *
 * @example Setting the session inside a transaction
 * ```ts ignore
 * await db.transaction().execute(async (trx) => {
 *   await applyNativeContext(trx);
 *   return await sql`select * from posts`.execute(trx);
 * });
 * ```
 */
export async function applyNativeContext(trx: AnyKysely, options: NativeContextOptions = {}): Promise<void> {
  const context = RLS_CONTEXT.get();
  if (context === undefined) throw new RLSContextError();
  await setLocal(trx, nativeSettings(context, options));
}

/** `set_config(name, value, true)` for each setting, in one statement. */
async function setLocal(db: AnyKysely, settings: Readonly<Record<string, string>>): Promise<void> {
  const entries = Object.entries(settings);
  if (entries.length === 0) return;
  await db.selectNoFrom((eb) =>
    entries.map(([name, value], i) => eb.fn("set_config", [eb.val(name), eb.val(value), eb.lit(true)]).as(`s${i}`))
  ).execute();
}

/**
 * Runs `fn` in a transaction of `db` whose first statement sets the RLS
 * context for native policies (see {@linkcode applyNativeContext}). This is
 * how native mode runs: every read and write that relies on native
 * policies goes through such a transaction.
 *
 * @param db The executor (or a Kysely).
 * @param fn The work.
 * @param options Prefix and bypass roles.
 * @returns What `fn` returns.
 * @throws {RLSContextError} Outside any RLS context.
 *
 * @example A transaction with the RLS context applied
 * ```ts ignore
 * const rows = await rlsContext.runAsync(ctx, () =>
 *   rlsTransaction(executor, (trx) => trx.selectFrom("posts").selectAll().execute()));
 * ```
 */
export function rlsTransaction<DB, R>(
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>) => Promise<R>,
  options: NativeContextOptions = {},
): Promise<R> {
  if (RLS_CONTEXT.get() === undefined) return Promise.reject(new RLSContextError());
  return db.transaction().execute(async (trx) => {
    await applyNativeContext(trx, options);
    return await fn(trx);
  });
}

/** What {@linkcode checkNativeRLS} found. */
export interface NativeRLSReport {
  /** `true` when native policies bind the connected role on every table. */
  readonly ok: boolean;
  /** The connected role. */
  readonly role: string;
  /** What is wrong, one sentence each. */
  readonly problems: readonly string[];
}

/**
 * The startup check of native mode: native row-level security does nothing
 * for a superuser, a `BYPASSRLS` role, or (without `FORCE`) the table
 * owner. Reports those, and tables without RLS enabled and forced.
 * Runs its catalog queries with raw SQL allowed.
 *
 * @param db A connection as the application's role.
 * @param tables The tables that rely on native policies.
 * @returns The report.
 *
 * @example Checking that native policies bind the role
 * ```ts ignore
 * const report = await checkNativeRLS(executor, ["posts"]);
 * if (!report.ok) throw new Error(report.problems.join("; "));
 * ```
 */
export async function checkNativeRLS(db: AnyKysely, tables: readonly string[]): Promise<NativeRLSReport> {
  const problems: string[] = [];
  const { role, rows } = await allowRawSql(async () => {
    const me = await sql<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }>`
      select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user`.execute(db);
    const found = await sql<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean; owned: boolean }>`
      select c.relname, c.relrowsecurity, c.relforcerowsecurity,
        pg_get_userbyid(c.relowner) = current_user as owned
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'p') and c.relname = any(${[...tables]})`
      .execute(db);
    const r = me.rows[0];
    if (r?.rolsuper) problems.push(`Role '${r.rolname}' is a superuser: native policies do not apply to it`);
    if (r?.rolbypassrls) problems.push(`Role '${r.rolname}' has BYPASSRLS: native policies do not apply to it`);
    return { role: r?.rolname ?? "", rows: found.rows };
  });
  for (const table of tables) {
    const row = rows.find((r) => r.relname === table);
    if (row === undefined) {
      problems.push(`Table '${table}' was not found in the current schema`);
      continue;
    }
    if (row.owned) problems.push(`Role '${role}' owns table '${table}': it can turn its policies off`);
    if (!row.relrowsecurity) problems.push(`Table '${table}' does not have row level security enabled`);
    if (!row.relforcerowsecurity) problems.push(`Table '${table}' does not force row level security on its owner`);
  }
  return Object.freeze({ ok: problems.length === 0, role, problems: Object.freeze(problems) });
}

/** Options of {@linkcode nativeRLSPlugin}. */
export interface NativeRLSPluginOptions extends NativeContextOptions {
  /**
   * Tables that rely on native policies, checked with
   * {@linkcode checkNativeRLS} when the executor is made with
   * `createExecutor` (which awaits it): a problem (the role owns a table, is
   * a superuser or has BYPASSRLS, a table without RLS forced) throws
   * {@linkcode NativeRLSError}. Leave it out to skip the check (then
   * `createExecutorSync` can take the plugin).
   */
  readonly checkTables?: readonly string[];
}

/** The settings applied in each open transaction (keyed by the executor's transaction identity). */
type Applied = WeakMap<object, Readonly<Record<string, string>>>;

function sameSettings(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}

/**
 * Native mode, automatic: a plugin that sets the RLS context as
 * transaction-local PostgreSQL settings (`set_config(name, value, true)`)
 * for every statement of the executor, so native policies from
 * {@linkcode generateNativePolicies} see the caller's tenant with no
 * `rlsTransaction` around the call:
 *
 * - inside a transaction (`transaction()`, `startTransaction()`, a `begin`
 *   sent through `connection()`), once per transaction before its first
 *   statement, and again when the context changes within it;
 * - for a statement outside any transaction, it opens one around the
 *   statement on the statement's connection: `begin`, the settings, the
 *   statement, `commit` (a lone statement costs three more round trips;
 *   batch work in a transaction);
 * - outside any RLS context it sets nothing (native policies then see no
 *   tenant and return no rows), and clears what an earlier context of the
 *   same transaction set.
 *
 * Settings never outlive their transaction, so a pooled connection never
 * carries one caller's tenant to the next. Raw SQL gets the context too:
 * this is the layer that holds when the application plugin cannot rewrite a
 * statement. Use it beside {@linkcode rlsPlugin} (defence in depth) or
 * alone. PostgreSQL only: on another dialect every statement is refused.
 *
 * @param options Prefix, bypass roles and the tables to check at startup.
 * @returns The plugin.
 * @throws {NativeRLSError} From `createExecutor` when `checkTables` finds a problem.
 *
 * @example Native policies with the plugin
 * ```ts ignore
 * import { createExecutor } from "@kysera/kysera/executor";
 * import { nativeRLSPlugin, rlsContext } from "@kysera/kysera/rls";
 *
 * const db = await createExecutor(appRoleKysely, [nativeRLSPlugin({ checkTables: ["posts"] })]);
 * const mine = await rlsContext.runAsync(ctx, () => sql`select * from posts`.execute(db));
 * // begin; select set_config('app.tenant_id', $1, true), ...; select * from posts; commit
 * ```
 */
export function nativeRLSPlugin(options: NativeRLSPluginOptions = {}): KyseraPlugin<RLSContext> {
  const { checkTables, ...contextOptions } = options;
  checkPrefix(contextOptions.settingPrefix ?? "app");
  const applied: Applied = new WeakMap();
  let postgres: boolean | undefined;
  const plugin: KyseraPlugin<RLSContext> = {
    name: "rls-native",
    context: RLS_CONTEXT,
    async aroundQuery(execution, next) {
      postgres ??= getDialect(execution.rawDb) === "postgres";
      if (!postgres) {
        throw new TypeError("Cannot use native row-level security: the executor's dialect is not PostgreSQL");
      }
      const context = execution.context;
      const settings = context === undefined ? undefined : nativeSettings(context, contextOptions);
      const transaction = execution.transaction;
      if (transaction !== undefined) {
        const before = applied.get(transaction);
        if (settings !== undefined && (before === undefined || !sameSettings(before, settings))) {
          await setLocal(execution.rawDb, settings);
          applied.set(transaction, settings);
        } else if (settings === undefined && before !== undefined) {
          await setLocal(execution.rawDb, Object.fromEntries(Object.keys(before).map((name) => [name, ""])));
          applied.delete(transaction);
        }
        return await next();
      }
      if (settings === undefined) return await next();
      const raw = execution.rawDb;
      await sql`begin`.execute(raw);
      let result;
      try {
        await setLocal(raw, settings);
        result = await next();
      } catch (error) {
        await sql`rollback`.execute(raw).catch(() => undefined);
        throw error;
      }
      await sql`commit`.execute(raw);
      return result;
    },
  };
  if (checkTables === undefined) return plugin;
  return {
    ...plugin,
    async onInit(executor) {
      const report = await checkNativeRLS(executor, checkTables);
      if (!report.ok) throw new NativeRLSError(report.role, report.problems);
    },
  };
}
