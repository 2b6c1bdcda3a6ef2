import { InvalidCursorError } from "./errors.ts";

/**
 * A value a cursor can carry: what the database drivers return for an
 * orderable column. `Date`s keep milliseconds only; select microsecond
 * timestamps as text when two rows may differ below a millisecond.
 */
export type CursorValue = string | number | bigint | boolean | Date | null;

/** The JavaScript type of a cursor value, as the driver returns the column. */
export type CursorValueType = "string" | "number" | "bigint" | "boolean" | "date";

/** One column a cursor carries a value for, in order. */
export interface CursorColumn {
  /** The column's name (bound into the token). */
  readonly name: string;
  /**
   * The JavaScript type the driver returns for the column. When set, a token
   * whose value has another type is rejected on decode. Leave it out only
   * when tokens are signed or the column is text.
   */
  readonly type?: CursorValueType | undefined;
  /** Whether the value may be `null`. */
  readonly nullable: boolean;
}

/** Options of {@linkcode createCursorCodec}. */
export interface CursorCodecOptions {
  /** The columns a token carries values for, in order. */
  readonly columns: readonly CursorColumn[];
  /**
   * Extra context bound into every token (a query fingerprint, a tenant):
   * a token written under another context is rejected.
   *
   * @default {""}
   */
  readonly context?: string | undefined;
  /**
   * The HMAC-SHA-256 key(s), at least 32 bytes each. The first signs; every
   * one verifies, so a rotated-out key keeps working while it is listed.
   * Without a secret, tokens are unsigned: opaque, validated, but forgeable.
   */
  readonly secret?: string | Uint8Array | readonly (string | Uint8Array)[] | undefined;
  /**
   * The longest token accepted, in characters; longer ones are rejected
   * before any decoding.
   *
   * @default {2048}
   */
  readonly maxLength?: number | undefined;
}

/**
 * Encodes cursor values into opaque base64url tokens and decodes them back,
 * validating everything a client could have changed. Made by
 * {@linkcode createCursorCodec}.
 */
export interface CursorCodec {
  /** Whether tokens are HMAC-signed. */
  readonly signed: boolean;
  /**
   * Encodes values (signed when the codec has a secret).
   *
   * @throws {TypeError} When the values do not fit the columns.
   */
  encode(values: readonly CursorValue[]): Promise<string>;
  /**
   * Decodes and validates a token (verifying its signature when the codec has
   * a secret).
   *
   * @throws {InvalidCursorError} When the token is rejected.
   */
  decode(token: unknown): Promise<CursorValue[]>;
  /**
   * Encodes values into an unsigned token, synchronously.
   *
   * @throws {TypeError} When the codec signs, or the values do not fit the columns.
   */
  encodeSync(values: readonly CursorValue[]): string;
  /**
   * Decodes and validates an unsigned token, synchronously.
   *
   * @throws {TypeError} When the codec signs (use {@linkcode CursorCodec.decode}).
   * @throws {InvalidCursorError} When the token is rejected.
   */
  decodeSync(token: unknown): CursorValue[];
}

/** Token version byte of an unsigned token. */
const UNSIGNED = 1;
/** The version byte of an unsigned token, as a binary-string character. */
const UNSIGNED_PREFIX = String.fromCharCode(UNSIGNED);
/** Token version byte of an HMAC-SHA-256-signed token. */
const SIGNED = 2;
const TAG_BYTES = 32;
const MIN_SECRET_BYTES = 32;
const DEFAULT_MAX_LENGTH = 2048;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DECODE_TABLE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Creates a codec for cursor tokens of one order (one list of columns) and
 * one context.
 *
 * A token is base64url (no padding) of a version byte, then a JSON array of
 * the context's fingerprint and the values, then, when signed, the
 * HMAC-SHA-256 of the context and everything before the tag. Decoding checks,
 * in order: the length cap (before decoding anything), canonical base64url,
 * the version byte (a signed token is refused by an unsigned codec and the
 * reverse), the signature (constant-time, through Web Crypto), the JSON
 * shape, the context fingerprint and column count, and each value's type and
 * nullability. Every rejection is an {@linkcode InvalidCursorError}; a
 * well-formed token decodes without any exception thrown internally.
 *
 * Signing is asynchronous, because Web Crypto's HMAC is; unsigned tokens
 * also have synchronous `encodeSync`/`decodeSync`.
 *
 * @param options The columns, the context, the secret and the size cap.
 * @returns The codec.
 * @throws {RangeError} When a secret is shorter than 32 bytes, or `maxLength` is not a positive integer.
 * @throws {TypeError} When `columns` is empty.
 *
 * @example Round-tripping a signed token
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCursorCodec, isInvalidCursorError } from "@kysera/kysera/core";
 *
 * const codec = createCursorCodec({
 *   columns: [{ name: "created_at", type: "date", nullable: false }, { name: "id", type: "number", nullable: false }],
 *   secret: "a secret of at least thirty-two bytes!",
 * });
 * const token = await codec.encode([new Date("2024-01-02T03:04:05.678Z"), 42]);
 * assert.deepEqual(await codec.decode(token), [new Date("2024-01-02T03:04:05.678Z"), 42]);
 *
 * const other = createCursorCodec({ columns: [{ name: "id", type: "number", nullable: false }] });
 * const forged = other.encodeSync([1]);
 * await assert.rejects(codec.decode(forged), isInvalidCursorError);
 * ```
 */
export function createCursorCodec(options: CursorCodecOptions): CursorCodec {
  const columns = options.columns.map((c) => Object.freeze({ name: c.name, type: c.type, nullable: c.nullable }));
  if (columns.length === 0) {
    throw new TypeError("Cannot create the cursor codec: 'columns' must not be empty: current length is 0");
  }
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  if (!Number.isSafeInteger(maxLength) || maxLength < 1) {
    throw new RangeError(
      `Cannot create the cursor codec: 'maxLength' must be a positive integer: current value is ${maxLength}`,
    );
  }
  const contextText = "kysera-cursor\u0000" +
    JSON.stringify(columns.map((c) => [c.name, c.type ?? "", c.nullable])) + "\u0000" + (options.context ?? "");
  const fingerprint = fnv1a(contextText);
  const secrets = options.secret === undefined
    ? []
    : (typeof options.secret === "string" || options.secret instanceof Uint8Array)
    ? [options.secret]
    : [...options.secret];
  if (options.secret !== undefined && secrets.length === 0) {
    throw new RangeError("Cannot create the cursor codec: 'secret' must list at least one key: current length is 0");
  }
  const keyBytes = secrets.map((s) => {
    const bytes = typeof s === "string" ? encoder.encode(s) : s;
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new RangeError(
        `Cannot create the cursor codec: 'secret' must be at least ${MIN_SECRET_BYTES} bytes: current length is ${bytes.length}`,
      );
    }
    return bytes;
  });
  const signed = keyBytes.length > 0;
  const contextBytes = encoder.encode(contextText);
  let keys: Promise<CryptoKey[]> | undefined;
  const getKeys = () => keys ??= Promise.all(keyBytes.map(importKey));

  const jsonOf = (values: readonly CursorValue[]): string => {
    if (!Array.isArray(values) || values.length !== columns.length) {
      throw new TypeError(
        `Cannot encode the cursor: expected ${columns.length} values: current length is ${
          Array.isArray(values) ? values.length : typeof values
        }`,
      );
    }
    const out: unknown[] = [fingerprint];
    for (let i = 0; i < columns.length; i++) out.push(toJson(values[i], columns[i]!));
    return JSON.stringify(out);
  };

  const payloadOf = (values: readonly CursorValue[]): Uint8Array => {
    const json = encoder.encode(jsonOf(values));
    const bytes = new Uint8Array(json.length + 1 + (signed ? TAG_BYTES : 0));
    bytes[0] = signed ? SIGNED : UNSIGNED;
    bytes.set(json, 1);
    return bytes;
  };

  /** An unsigned token; ASCII payloads (the usual case) go through the native `btoa`. */
  const encodeUnsigned = (values: readonly CursorValue[]): string => {
    const json = jsonOf(values);
    if (NON_ASCII.test(json)) return toBase64Url(payloadOf(values));
    return base64ToUrl(btoa(UNSIGNED_PREFIX + json));
  };

  const checkLength = (token: unknown): string => {
    if (typeof token !== "string") {
      throw new InvalidCursorError(
        "malformed",
        `Cannot decode the cursor: it must be a string: current type is ${typeof token}`,
      );
    }
    if (token.length > maxLength) {
      throw new InvalidCursorError(
        "too-large",
        `Cannot decode the cursor: it must be at most ${maxLength} characters: current length is ${token.length}`,
      );
    }
    return token;
  };

  const checkVersion = (actual: number | undefined, version: number): void => {
    if (actual === version) return;
    if (actual === SIGNED || actual === UNSIGNED) {
      throw new InvalidCursorError(
        "signature",
        signed
          ? "Cannot decode the cursor: it is not signed"
          : "Cannot decode the cursor: it is signed, but no secret is set",
      );
    }
    throw new InvalidCursorError("version", `Cannot decode the cursor: unknown version: current version is ${actual}`);
  };

  /** Decodes an unsigned token to its JSON payload, on the native `atob`. */
  const openUnsigned = (token: unknown): CursorValue[] => {
    const binary = fromBase64UrlBinary(checkLength(token));
    if (binary === undefined || binary.length < 2) {
      throw new InvalidCursorError("malformed", "Cannot decode the cursor: it is not a canonical base64url token");
    }
    checkVersion(binary.charCodeAt(0), UNSIGNED);
    const json = binary.slice(1);
    return NON_ASCII.test(json) ? read(Uint8Array.from(json, (c) => c.charCodeAt(0))) : parse(json);
  };

  /** Decodes the base64url and checks the version; returns the bytes, or throws. */
  const open = (token: unknown, version: number): Uint8Array => {
    const bytes = fromBase64Url(checkLength(token));
    if (bytes === undefined || bytes.length < 2) {
      throw new InvalidCursorError("malformed", "Cannot decode the cursor: it is not a canonical base64url token");
    }
    checkVersion(bytes[0], version);
    return bytes;
  };

  const read = (json: Uint8Array): CursorValue[] => {
    let text: string;
    try {
      text = ascii(json) ?? decoder.decode(json);
    } catch (error) {
      throw new InvalidCursorError("malformed", "Cannot decode the cursor: its payload is not JSON", { cause: error });
    }
    return parse(text);
  };

  const parse = (text: string): CursorValue[] => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new InvalidCursorError("malformed", "Cannot decode the cursor: its payload is not JSON", { cause: error });
    }
    if (!Array.isArray(parsed) || parsed.length === 0) {
      throw new InvalidCursorError("malformed", "Cannot decode the cursor: its payload is not a list of values");
    }
    if (parsed[0] !== fingerprint) {
      throw new InvalidCursorError("context", "Cannot decode the cursor: it belongs to another query or order");
    }
    if (parsed.length !== columns.length + 1) {
      throw new InvalidCursorError(
        "malformed",
        `Cannot decode the cursor: expected ${columns.length} values: current count is ${parsed.length - 1}`,
      );
    }
    const values: CursorValue[] = new Array(columns.length);
    for (let i = 0; i < columns.length; i++) values[i] = fromJson(parsed[i + 1], columns[i]!);
    return values;
  };

  const unsignedOnly = (method: string) => {
    if (signed) throw new TypeError(`Cannot ${method} synchronously: the codec signs tokens; use the async method`);
  };

  return Object.freeze({
    signed,
    encodeSync(values: readonly CursorValue[]): string {
      unsignedOnly("encode");
      return encodeUnsigned(values);
    },
    decodeSync(token: unknown): CursorValue[] {
      unsignedOnly("decode");
      return openUnsigned(token);
    },
    async encode(values: readonly CursorValue[]): Promise<string> {
      if (!signed) return encodeUnsigned(values);
      const bytes = payloadOf(values);
      const [key] = await getKeys();
      const body = bytes.subarray(0, bytes.length - TAG_BYTES);
      const tag = await crypto.subtle.sign("HMAC", key!, concat(contextBytes, body));
      bytes.set(new Uint8Array(tag), body.length);
      return toBase64Url(bytes);
    },
    async decode(token: unknown): Promise<CursorValue[]> {
      if (!signed) return openUnsigned(token);
      const bytes = open(token, SIGNED);
      if (bytes.length < 2 + TAG_BYTES) {
        throw new InvalidCursorError("signature", "Cannot decode the cursor: its signature is missing");
      }
      const body = bytes.subarray(0, bytes.length - TAG_BYTES);
      const tag = bytes.slice(body.length);
      const data = concat(contextBytes, body);
      let valid = false;
      for (const key of await getKeys()) {
        // crypto.subtle.verify compares in constant time.
        if (await crypto.subtle.verify("HMAC", key, tag, data)) {
          valid = true;
          break;
        }
      }
      if (!valid) {
        throw new InvalidCursorError(
          "signature",
          "Cannot decode the cursor: its signature does not match (forged, altered, or of another query or order)",
        );
      }
      return read(body.subarray(1));
    },
  });
}

/**
 * Imported HMAC keys by their bytes (hex), so that a codec made per request
 * does not import the same key again. Bounded: cleared when full.
 */
const KEYS = new Map<string, Promise<CryptoKey>>();
const MAX_CACHED_KEYS = 64;

function importKey(bytes: Uint8Array): Promise<CryptoKey> {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  let key = KEYS.get(hex);
  if (key === undefined) {
    if (KEYS.size >= MAX_CACHED_KEYS) KEYS.clear();
    key = crypto.subtle.importKey("raw", bytes as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    KEYS.set(hex, key);
    key.catch(() => KEYS.delete(hex));
  }
  return key;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** 32-bit FNV-1a of a string's UTF-16 code units, base36. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

function typeOf(value: unknown): CursorValueType | "null" | undefined {
  switch (typeof value) {
    case "string":
      return "string";
    case "number":
      return Number.isFinite(value) ? "number" : undefined;
    case "bigint":
      return "bigint";
    case "boolean":
      return "boolean";
    case "object":
      if (value === null) return "null";
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : "date";
      return undefined;
    default:
      return undefined;
  }
}

function toJson(value: CursorValue | undefined, column: CursorColumn): unknown {
  const type = typeOf(value);
  if (
    type === undefined || (type === "null" && !column.nullable) || (type !== "null" && column.type !== undefined &&
      type !== column.type)
  ) {
    throw new TypeError(
      `Cannot encode the cursor: column '${column.name}' must hold ${column.type ?? "a scalar"}${
        column.nullable ? " or null" : ""
      }: current value is ${describe(value)}`,
    );
  }
  if (type === "date") return { d: (value as Date).toISOString() };
  if (type === "bigint") return { n: (value as bigint).toString() };
  return value;
}

const BIGINT = /^-?(0|[1-9][0-9]{0,77})$/;
const ISO_DATE = /^[+-]?\d{4,6}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function fromJson(raw: unknown, column: CursorColumn): CursorValue {
  let value: CursorValue | undefined;
  let type: CursorValueType | "null" | undefined;
  switch (typeof raw) {
    case "string":
    case "number":
    case "boolean":
      value = raw;
      type = typeof raw as CursorValueType;
      break;
    case "object":
      if (raw === null) {
        value = null;
        type = "null";
      } else if (!Array.isArray(raw)) {
        const keys = Object.keys(raw);
        const tagged = raw as Record<string, unknown>;
        if (keys.length === 1 && typeof tagged.d === "string" && ISO_DATE.test(tagged.d)) {
          const date = new Date(tagged.d);
          if (!Number.isNaN(date.getTime()) && date.toISOString() === tagged.d) {
            value = date;
            type = "date";
          }
        } else if (keys.length === 1 && typeof tagged.n === "string" && BIGINT.test(tagged.n)) {
          value = BigInt(tagged.n);
          type = "bigint";
        }
      }
  }
  if (type === undefined) {
    throw new InvalidCursorError(
      "value",
      `Cannot decode the cursor: column '${column.name}' holds an unsupported value`,
    );
  }
  if (type === "null" ? !column.nullable : column.type !== undefined && type !== column.type) {
    throw new InvalidCursorError(
      "value",
      `Cannot decode the cursor: column '${column.name}' must hold ${column.type ?? "a value"}${
        column.nullable ? " or null" : ""
      }: current type is ${type}`,
    );
  }
  return value as CursorValue;
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Date) return `Date(${value.getTime()})`;
  if (typeof value === "object" && value !== null) return Array.isArray(value) ? "an array" : "an object";
  return JSON.stringify(value) ?? String(value);
}

/** Base64url without padding. */
function toBase64Url(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Decodes canonical base64url without padding; `undefined` for any other
 * character, a length no encoding produces, or non-zero trailing bits (so
 * each byte string has exactly one accepted token).
 */
function fromBase64Url(text: string): Uint8Array | undefined {
  const length = text.length;
  const rest = length & 3;
  if (rest === 1) return undefined;
  const bytes = new Uint8Array(((length >> 2) * 3) + (rest === 0 ? 0 : rest - 1));
  let j = 0;
  let i = 0;
  for (; i + 3 < length; i += 4) {
    const a = sextet(text, i), b = sextet(text, i + 1), c = sextet(text, i + 2), d = sextet(text, i + 3);
    if ((a | b | c | d) < 0) return undefined;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    bytes[j++] = n >> 16;
    bytes[j++] = (n >> 8) & 255;
    bytes[j++] = n & 255;
  }
  if (rest === 2) {
    const a = sextet(text, i), b = sextet(text, i + 1);
    if ((a | b) < 0 || (b & 15) !== 0) return undefined;
    bytes[j] = (a << 2) | (b >> 4);
  } else if (rest === 3) {
    const a = sextet(text, i), b = sextet(text, i + 1), c = sextet(text, i + 2);
    if ((a | b | c) < 0 || (c & 3) !== 0) return undefined;
    bytes[j++] = (a << 2) | (b >> 4);
    bytes[j] = ((b & 15) << 4) | (c >> 2);
  }
  return bytes;
}

const NON_ASCII = /[\u0080-\uffff]/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes canonical base64url without padding into a binary string (one
 * character a byte) with the native `atob`; `undefined` for any other
 * character, a length no encoding produces, or non-zero trailing bits, the
 * same rules as {@linkcode fromBase64Url}.
 */
function fromBase64UrlBinary(text: string): string | undefined {
  const rest = text.length & 3;
  if (rest === 1 || !BASE64URL.test(text)) return undefined;
  if (rest !== 0 && (DECODE_TABLE[text.charCodeAt(text.length - 1)]! & (rest === 2 ? 15 : 3)) !== 0) return undefined;
  // Most tokens lack one of the two characters: skip the replace then.
  let base64 = text;
  if (base64.includes("-")) base64 = base64.replace(DASHES, "+");
  if (base64.includes("_")) base64 = base64.replace(UNDERSCORES, "/");
  return atob(base64);
}

const DASHES = /-/g;
const UNDERSCORES = /_/g;
const PLUSES = /\+/g;
const SLASHES = /\//g;

/** Standard (padded) base64 to base64url without padding. */
function base64ToUrl(base64: string): string {
  let end = base64.length;
  while (end > 0 && base64.charCodeAt(end - 1) === 61 /* = */) end--;
  let out = end === base64.length ? base64 : base64.slice(0, end);
  if (out.includes("+")) out = out.replace(PLUSES, "-");
  if (out.includes("/")) out = out.replace(SLASHES, "_");
  return out;
}

/** The bytes as a string when they are all ASCII (no TextDecoder call on the hot path). */
function ascii(bytes: Uint8Array): string | undefined {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte > 127) return undefined;
    out += String.fromCharCode(byte);
  }
  return out;
}

function sextet(text: string, i: number): number {
  const code = text.charCodeAt(i);
  return code < 128 ? DECODE_TABLE[code]! : -1;
}
