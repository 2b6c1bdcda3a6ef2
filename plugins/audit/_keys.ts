/**
 * Primary keys of audited tables and the one canonical `entity_id` a key is
 * stored under (private: shared by the plugin and the reader).
 */
import { toJson } from "./_json.ts";

type Row = Record<string, unknown>;

/** The `primaryKey` option of the plugin and the reader. */
export type PrimaryKeyOption = string | readonly string[] | Readonly<Record<string, string | readonly string[]>>;

/** Resolves the primary key columns of a table from the option (`"id"` when it names none). */
export function primaryKeyOf(option: PrimaryKeyOption | undefined, table: string): readonly string[] {
  if (option === undefined) return ["id"];
  if (typeof option === "string") return [option];
  if (Array.isArray(option)) return option as readonly string[];
  const own = (option as Readonly<Record<string, string | readonly string[]>>)[table];
  if (own === undefined) return ["id"];
  return typeof own === "string" ? [own] : own;
}

/**
 * One key part in its canonical text: a date as its ISO string, anything
 * else as `String(value)`, so `1`, `1n` and `"1"` (a bigint column read by
 * `pg`) are the same key.
 */
export function keyPart(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}

/**
 * The `entity_id` stored for a key: the canonical text of the value for one
 * column, JSON of the columns' canonical texts for a composite key
 * (`{"a":"1","b":"2"}`), so history is found whatever numeric type the key
 * parts are given in.
 */
export function entityIdOf(pk: readonly string[], row: Readonly<Row>): string {
  if (pk.length === 1) return keyPart(row[pk[0]!]);
  const key: Record<string, string> = {};
  for (const column of pk) key[column] = keyPart(row[column]);
  return toJson(key)!;
}

/** A map key for a row's primary key. */
export function keyString(pk: readonly string[], row: Readonly<Row>): string {
  return pk.map((c) => keyPart(row[c])).join("\u0000");
}
