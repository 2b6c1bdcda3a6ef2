import assert from "node:assert/strict";
import { createCursorCodec, type CursorColumn, InvalidCursorError, isInvalidCursorError } from "./mod.ts";

const SECRET = "0123456789abcdef0123456789abcdef-test";
const COLUMNS: CursorColumn[] = [
  { name: "created_at", type: "date", nullable: true },
  { name: "title", type: "string", nullable: false },
  { name: "id", type: "number", nullable: false },
];
const VALUES = [new Date("2024-05-06T07:08:09.123Z"), 'héllo "world"', 42];

function rejects(fn: () => unknown, reason?: string): void {
  try {
    fn();
  } catch (error) {
    assert.ok(isInvalidCursorError(error), `expected InvalidCursorError, got ${error}`);
    if (reason !== undefined) assert.equal((error as InvalidCursorError).reason, reason);
    return;
  }
  assert.fail("the token was accepted");
}

async function rejectsAsync(promise: Promise<unknown>, reason?: string): Promise<void> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(isInvalidCursorError(error), `expected InvalidCursorError, got ${error}`);
  if (reason !== undefined) assert.equal((error as InvalidCursorError).reason, reason);
}

function b64urlToBytes(token: string): Uint8Array {
  const b64 = token.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - b64.length % 4) % 4)), (c) => c.charCodeAt(0));
}

function bytesToB64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

Deno.test("createCursorCodec() round-trips every value type, unsigned and signed", async () => {
  const columns: CursorColumn[] = [
    { name: "s", type: "string", nullable: false },
    { name: "n", type: "number", nullable: false },
    { name: "b", type: "bigint", nullable: false },
    { name: "t", type: "boolean", nullable: false },
    { name: "d", type: "date", nullable: true },
    { name: "x", nullable: true },
  ];
  const values = ["a\u0000ü😀", -1.5, 2n ** 70n, true, new Date(0), null];
  for (const secret of [undefined, SECRET]) {
    const codec = createCursorCodec({ columns, secret });
    const token = await codec.encode(values);
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(await codec.decode(token), values);
  }
  const unsigned = createCursorCodec({ columns });
  assert.deepEqual(unsigned.decodeSync(unsigned.encodeSync(values)), values);
});

Deno.test("createCursorCodec() rejects every bit flip, truncation and substitution of a token", async () => {
  for (const secret of [undefined, SECRET]) {
    const codec = createCursorCodec({ columns: COLUMNS, secret });
    const token = await codec.encode(VALUES);
    const bytes = b64urlToBytes(token);
    let accepted = 0;
    let tried = 0;
    const attempt = async (forged: string) => {
      if (forged === token) return;
      tried++;
      const result = await codec.decode(forged).then(() => "accepted", (e) => e);
      if (result === "accepted") accepted++;
      else assert.ok(isInvalidCursorError(result), `not an InvalidCursorError: ${result}`);
    };
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = bytes.slice();
        copy[i]! ^= 1 << bit;
        await attempt(bytesToB64url(copy));
      }
    }
    for (let length = 0; length < token.length; length++) await attempt(token.slice(0, length));
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.";
    for (let i = 0; i < token.length; i++) {
      for (const c of alphabet) await attempt(token.slice(0, i) + c + token.slice(i + 1));
    }
    if (secret === undefined) {
      // Unsigned tokens are forgeable by design; the flips that still parse must
      // still be well-typed values (checked by decode), never a raw error.
      assert.ok(tried > 5000);
    } else {
      assert.equal(accepted, 0, `${accepted} of ${tried} forged signed tokens were accepted`);
      assert.ok(tried > 5000);
    }
  }
});

Deno.test("createCursorCodec() rejects non-canonical base64url: padding, +/ and stray bits", async () => {
  const codec = createCursorCodec({ columns: [{ name: "id", type: "number", nullable: false }] });
  const token = codec.encodeSync([7]);
  const bytes = b64urlToBytes(token);
  const standard = btoa(String.fromCharCode(...bytes));
  rejects(() => codec.decodeSync(standard.includes("=") ? standard : standard + "="), "malformed");
  rejects(() => codec.decodeSync(token + "="), "malformed");
  rejects(() => codec.decodeSync(token + "A"), "malformed");
  rejects(() => codec.decodeSync(token.replace(/-/g, "+").replace(/_/g, "/") + "/"), "malformed");
  rejects(() => codec.decodeSync(" " + token), "malformed");
  rejects(() => codec.decodeSync(""), "malformed");
  rejects(() => codec.decodeSync(undefined), "malformed");
  rejects(() => codec.decodeSync(["x"]), "malformed");
  // A last character whose unused low bits are set decodes to the same bytes: refused.
  const last = token.at(-1)!;
  const sextet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(last);
  if (token.length % 4 !== 0) {
    const bumped = token.slice(0, -1) + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[sextet | 1];
    if (bumped !== token) rejects(() => codec.decodeSync(bumped), "malformed");
  }
  await Promise.resolve();
});

Deno.test("createCursorCodec() rejects oversized tokens before decoding", () => {
  const codec = createCursorCodec({ columns: [{ name: "id", type: "number", nullable: false }] });
  for (const size of [2049, 4096, 1 << 20, 10 << 20]) {
    rejects(() => codec.decodeSync("A".repeat(size)), "too-large");
  }
  const nested = bytesToB64url(new TextEncoder().encode("\u0001" + "[".repeat(10_000) + "]".repeat(10_000)));
  rejects(() => codec.decodeSync(nested), "too-large");
  const small = createCursorCodec({ columns: [{ name: "id", type: "number", nullable: false }], maxLength: 5000 });
  rejects(() => small.decodeSync(bytesToB64url(new TextEncoder().encode("\u0001" + "[".repeat(3000)))), "malformed");
});

Deno.test("createCursorCodec() rejects non-JSON, wrong shapes, wrong types and SQL in values", () => {
  const columns: CursorColumn[] = [{ name: "n", type: "number", nullable: false }, {
    name: "s",
    type: "string",
    nullable: false,
  }];
  const codec = createCursorCodec({ columns });
  const fingerprint = JSON.parse(new TextDecoder().decode(b64urlToBytes(codec.encodeSync([1, "x"])).subarray(1)))[0];
  const forge = (payload: string, version = 1) =>
    bytesToB64url(new Uint8Array([version, ...new TextEncoder().encode(payload)]));
  const cases: [string, string][] = [
    [forge("not json"), "malformed"],
    [forge("{}"), "malformed"],
    [forge("[]"), "malformed"],
    [forge(JSON.stringify([fingerprint, 1])), "malformed"],
    [forge(JSON.stringify([fingerprint, 1, "x", 3])), "malformed"],
    [forge(JSON.stringify(["other", 1, "x"])), "context"],
    [forge(JSON.stringify([fingerprint, "1 OR 1=1", "x"])), "value"],
    [forge(JSON.stringify([fingerprint, 1, 2])), "value"],
    [forge(JSON.stringify([fingerprint, null, "x"])), "value"],
    [forge(JSON.stringify([fingerprint, [1], "x"])), "value"],
    [forge(JSON.stringify([fingerprint, { $gt: 0 }, "x"])), "value"],
    [forge(JSON.stringify([fingerprint, 1, { d: "2024-01-01T00:00:00.000Z" }])), "value"],
    [forge(JSON.stringify([fingerprint, { n: "1e3" }, "x"])), "value"],
    [forge(JSON.stringify([fingerprint, { n: "1", d: "x" }, "x"])), "value"],
    [forge(JSON.stringify([fingerprint, 1, "x"]), 9), "version"],
    [forge(JSON.stringify([fingerprint, 1, "x"]), 2), "signature"],
    [bytesToB64url(new Uint8Array([1, 0xff, 0xfe])), "malformed"],
  ];
  for (const [token, reason] of cases) rejects(() => codec.decodeSync(token), reason);
  // SQL text in a string column is just a string: it decodes, and is bound as a parameter.
  assert.deepEqual(codec.decodeSync(codec.encodeSync([1, "'; drop table t --"])), [1, "'; drop table t --"]);
});

Deno.test("createCursorCodec() rejects tokens of another order or context", async () => {
  const a = createCursorCodec({ columns: [{ name: "id", type: "number", nullable: false }], context: "posts" });
  const b = createCursorCodec({ columns: [{ name: "id", type: "number", nullable: false }], context: "users" });
  const c = createCursorCodec({ columns: [{ name: "user_id", type: "number", nullable: false }], context: "posts" });
  rejects(() => b.decodeSync(a.encodeSync([1])), "context");
  rejects(() => c.decodeSync(a.encodeSync([1])), "context");
  const sa = createCursorCodec({ columns: [{ name: "id", nullable: false }], context: "posts", secret: SECRET });
  const sb = createCursorCodec({ columns: [{ name: "id", nullable: false }], context: "users", secret: SECRET });
  await rejectsAsync(sb.decode(await sa.encode([1])), "signature");
});

Deno.test("createCursorCodec() refuses unsigned tokens when signing, and signed ones when not", async () => {
  const columns: CursorColumn[] = [{ name: "id", type: "number", nullable: false }];
  const signed = createCursorCodec({ columns, secret: SECRET });
  const unsigned = createCursorCodec({ columns });
  await rejectsAsync(signed.decode(unsigned.encodeSync([1])), "signature");
  await rejectsAsync(unsigned.decode(await signed.encode([1])), "signature");
  // A signed token with its tag stripped.
  const bytes = b64urlToBytes(await signed.encode([1]));
  await rejectsAsync(signed.decode(bytesToB64url(bytes.subarray(0, bytes.length - 32))), "signature");
  // Re-signed with another key.
  const other = createCursorCodec({ columns, secret: SECRET + "-other" });
  await rejectsAsync(signed.decode(await other.encode([1])), "signature");
  assert.throws(() => signed.decodeSync("x"), TypeError);
  assert.throws(() => signed.encodeSync([1]), TypeError);
});

Deno.test("createCursorCodec() accepts a rotated-out key while it is listed", async () => {
  const columns: CursorColumn[] = [{ name: "id", type: "number", nullable: false }];
  const oldKey = createCursorCodec({ columns, secret: SECRET });
  const token = await oldKey.encode([5]);
  const rotating = createCursorCodec({ columns, secret: [SECRET + "-new", SECRET] });
  assert.deepEqual(await rotating.decode(token), [5]);
  const rotated = createCursorCodec({ columns, secret: SECRET + "-new" });
  await rejectsAsync(rotated.decode(token), "signature");
  assert.deepEqual(await rotated.decode(await rotating.encode([6])), [6]);
});

Deno.test("createCursorCodec() validates its options and the values it encodes", () => {
  assert.throws(() => createCursorCodec({ columns: [] }), TypeError);
  assert.throws(
    () => createCursorCodec({ columns: COLUMNS, secret: "short" }),
    new RangeError("Cannot create the cursor codec: 'secret' must be at least 32 bytes: current length is 5"),
  );
  assert.throws(() => createCursorCodec({ columns: COLUMNS, secret: [] }), RangeError);
  assert.throws(() => createCursorCodec({ columns: COLUMNS, maxLength: 0 }), RangeError);
  const codec = createCursorCodec({ columns: COLUMNS });
  assert.throws(() => codec.encodeSync([null, "x", 1, 2]), TypeError);
  assert.throws(() => codec.encodeSync([null, null, 1]), TypeError);
  assert.throws(() => codec.encodeSync([null, "x", "1"]), TypeError);
  assert.throws(() => codec.encodeSync([null, "x", Number.NaN]), TypeError);
  assert.throws(() => codec.encodeSync([new Date(Number.NaN), "x", 1]), TypeError);
  assert.throws(() => codec.encodeSync([null, "x", undefined as never]), TypeError);
});

Deno.test("InvalidCursorError is a KyseraError with code INVALID_CURSOR", () => {
  const error = new InvalidCursorError("value", "Cannot decode the cursor");
  assert.ok(error instanceof InvalidCursorError && error instanceof Error);
  assert.equal(error.code, "INVALID_CURSOR");
  assert.equal(error.name, "InvalidCursorError");
  assert.ok(!isInvalidCursorError(new Error("x")));
});
