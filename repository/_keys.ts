import type { DialectName } from "../core/mod.ts";

type Values = Record<string, unknown>;

/** Parameters per statement, under each dialect's limit. */
export const MAX_PARAMETERS: Record<DialectName, number> = {
  postgres: 65_535,
  sqlite: 32_766,
  mysql: 65_535,
  mssql: 2_100,
};

/** The key object of `id` for a table's key columns (see `RepositoryHandle.keyOf`). */
export function keyObject(table: string, pk: readonly string[], single: boolean, id: unknown): Values {
  if (single) {
    if (id === undefined || id === null || typeof id === "object" && !(id instanceof Date)) {
      throw new TypeError(`Cannot look up a row in '${table}': the key must be a value: current value is ${id}`);
    }
    return { [pk[0]!]: id };
  }
  if (typeof id !== "object" || id === null) {
    throw new TypeError(`Cannot look up a row in '${table}': the key must be an object of ${pk.join(", ")}`);
  }
  const key: Values = {};
  for (const c of pk) {
    const v = (id as Values)[c];
    if (v === undefined) throw new TypeError(`Cannot look up a row in '${table}': the key lacks column '${c}'`);
    key[c] = v;
  }
  return key;
}

/** A row without its `undefined` values (a partial schema's absent fields). */
export function defined(row: Values): Values {
  let out: Values | undefined;
  for (const key of Object.keys(row)) {
    if (row[key] === undefined) {
      out ??= { ...row };
      delete out[key];
    }
  }
  return out ?? row;
}

/** `rows` in slices of at most `size`. */
export function slices<T>(rows: readonly T[], size: number): T[][] {
  const n = Math.max(1, Math.floor(size));
  if (rows.length <= n) return [[...rows]];
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += n) out.push(rows.slice(i, i + n));
  return out;
}

/**
 * Rows grouped by the set of columns they give, in first-seen order, with
 * each row's input position.
 */
export function byColumns(rows: readonly Values[]): { columns: string[]; rows: Values[]; at: number[] }[] {
  const groups = new Map<string, { columns: string[]; rows: Values[]; at: number[] }>();
  rows.forEach((row, i) => {
    const columns = Object.keys(row).sort();
    const id = columns.join("\u0000");
    let group = groups.get(id);
    if (group === undefined) groups.set(id, group = { columns, rows: [], at: [] });
    group.rows.push(row);
    group.at.push(i);
  });
  return [...groups.values()];
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)$/;

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** A number's canonical text: `1`, `1.5` for `1.50`, `-0` as `0`. */
function numberText(text: string): string {
  let t = text.trim().replace(/^\+/, "");
  const negative = t.startsWith("-");
  if (negative) t = t.slice(1);
  let [whole = "", fraction = ""] = t.split(".");
  whole = whole.replace(/^0+(?=\d)/, "") || "0";
  fraction = fraction.replace(/0+$/, "");
  const body = fraction === "" ? whole : `${whole}.${fraction}`;
  return negative && body !== "0" ? `-${body}` : body;
}

/** The exact form of a value: its type and text. */
function exact(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof Date) return `t:${value.getTime()}`;
  if (value instanceof Uint8Array) return `b:${hex(value)}`;
  switch (typeof value) {
    case "number":
    case "bigint":
      return `n:${numberText(String(value))}`;
    case "boolean":
      return `n:${value ? 1 : 0}`;
    case "string":
      return `s:${value}`;
    default:
      return `o:${JSON.stringify(value)}`;
  }
}

/**
 * The form a value takes once the database has read it: a date or date-time
 * text is the instant the drivers return (`pg` and `mysql2` read a `date` as
 * local midnight, a zone-less date-time as local time), numeric text is a
 * number, and (MySQL/MariaDB, whose default `_ci` collations compare so)
 * other text is compared without case and trailing spaces.
 */
function loose(value: unknown, dialect: DialectName): string {
  if (typeof value === "string") {
    const day = DATE_ONLY.exec(value);
    if (day !== null) return `t:${new Date(Number(day[1]), Number(day[2]) - 1, Number(day[3])).getTime()}`;
    if (DATE_TIME.test(value)) {
      const time = new Date(value.replace(" ", "T")).getTime();
      if (!Number.isNaN(time)) return `t:${time}`;
    }
    if (NUMERIC.test(value)) return `n:${numberText(value)}`;
    return dialect === "mysql" || dialect === "mssql" ? `s:${value.toLowerCase().trimEnd()}` : `s:${value}`;
  }
  return exact(value);
}

/**
 * Finds, for each key given by the caller, the row the database returned for
 * it: first by exact value, then by the value as the database reads it (see
 * {@linkcode loose}). Never by `String(value)` alone, which misses a `date`
 * key given as text and returned as a `Date`.
 */
export class KeyIndex {
  readonly #columns: readonly string[];
  readonly #dialect: DialectName;
  readonly #exact = new Map<string, Values>();
  readonly #loose = new Map<string, Values>();

  constructor(rows: readonly Values[], columns: readonly string[], dialect: DialectName) {
    this.#columns = columns;
    this.#dialect = dialect;
    for (const row of rows) {
      const e = this.#key(row, exact);
      if (!this.#exact.has(e)) this.#exact.set(e, row);
      const l = this.#key(row, (v) => loose(v, dialect));
      if (!this.#loose.has(l)) this.#loose.set(l, row);
    }
  }

  #key(row: Values, form: (value: unknown) => string): string {
    return this.#columns.map((c) => form(row[c])).join("\u0000");
  }

  /** The row for `key`, or `undefined`. */
  find(key: Values): Values | undefined {
    return this.#exact.get(this.#key(key, exact)) ?? this.#loose.get(this.#key(key, (v) => loose(v, this.#dialect)));
  }
}
