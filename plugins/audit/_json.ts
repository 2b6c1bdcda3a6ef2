/** JSON for audit values: dates as ISO strings, bigints as strings, bytes as base64. */
export function toJson(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v) {
    const raw = this[key];
    if (raw instanceof Date) return raw.toISOString();
    if (typeof v === "bigint") return v.toString();
    if (raw instanceof Uint8Array) return btoa(String.fromCharCode(...raw));
    return v;
  });
}

/** Parses a stored JSON column (PostgreSQL's driver has already parsed jsonb). */
export function fromJson<T>(value: unknown): T | null {
  if (value === null || value === undefined) return null;
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}
