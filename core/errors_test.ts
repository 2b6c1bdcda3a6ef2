import assert from "node:assert/strict";
import {
  ConnectionError,
  DatabaseError,
  DeadlockError,
  isDatabaseError,
  isDeadlockError,
  isKyseraError,
  isNotFoundError,
  isUniqueConstraintError,
  KyseraError,
  LockTimeoutError,
  NotFoundError,
  QueryTimeoutError,
  SerializationError,
  UniqueConstraintError,
} from "./mod.ts";

type ErrorsModule = typeof import("./errors.ts");

/** A second, independent copy of the errors module, as when JSR and npm copies load together. */
async function secondCopy(): Promise<ErrorsModule> {
  const copy = await import(new URL("./errors.ts?second-copy", import.meta.url).href) as ErrorsModule;
  assert.notEqual(copy.UniqueConstraintError, UniqueConstraintError, "the copy has its own classes");
  return copy;
}

Deno.test("KyseraError sets name, code and cause", () => {
  const cause = new Error("driver");
  const error = new UniqueConstraintError("duplicate", { dialect: "postgres", cause, columns: ["email"] });
  assert.equal(error.name, "UniqueConstraintError");
  assert.equal(error.code, "UNIQUE_VIOLATION");
  assert.equal(error.cause, cause);
  assert.equal(error.message, "duplicate");
  assert.ok(Object.isFrozen(error.columns));
  assert.ok(error instanceof Error && error instanceof KyseraError && error instanceof DatabaseError);
  assert.equal(error instanceof DeadlockError, false);
});

Deno.test("guards and instanceof recognise errors from a second copy of Kysera", async () => {
  const copy = await secondCopy();
  const foreign = new copy.UniqueConstraintError("duplicate", { dialect: "mysql" });
  assert.ok(isKyseraError(foreign));
  assert.ok(isDatabaseError(foreign));
  assert.ok(isUniqueConstraintError(foreign));
  assert.equal(isDeadlockError(foreign), false);
  assert.ok(foreign instanceof UniqueConstraintError);
  assert.ok(foreign instanceof KyseraError);
  assert.equal(foreign instanceof NotFoundError, false);
  // and the other way round
  const local = new NotFoundError("users", { id: 1 });
  assert.ok(copy.isNotFoundError(local));
  assert.ok(local instanceof copy.KyseraError);
  assert.equal(copy.isDatabaseError(local), false);
});

Deno.test("guards reject look-alikes that are not Kysera errors", () => {
  assert.equal(isKyseraError({ code: "UNIQUE_VIOLATION", name: "UniqueConstraintError" }), false);
  assert.equal(isUniqueConstraintError(Object.assign(new Error("x"), { code: "UNIQUE_VIOLATION" })), false);
  assert.equal(isKyseraError(null), false);
  assert.equal(isKyseraError("UniqueConstraintError"), false);
});

Deno.test("a user subclass without its own kind keeps ordinary instanceof", () => {
  class TenantMismatchError extends KyseraError<"TENANT_MISMATCH"> {
    constructor() {
      super("Tenant does not match", "TENANT_MISMATCH");
    }
  }
  const error = new TenantMismatchError();
  assert.equal(error.name, "TenantMismatchError");
  assert.ok(error instanceof TenantMismatchError && isKyseraError(error));
  assert.equal(new NotFoundError("x") instanceof TenantMismatchError, false);
});

Deno.test("transient is true only for errors a transaction retry can cure", () => {
  const details = { dialect: "postgres" } as const;
  assert.deepEqual(
    [
      new SerializationError("", details),
      new DeadlockError("", details),
      new LockTimeoutError("", details),
      new QueryTimeoutError("", details),
      new ConnectionError("", details),
      new UniqueConstraintError("", details),
      new DatabaseError("", details),
    ].map((e) => e.transient),
    [true, true, true, false, false, false, false],
  );
});

Deno.test("NotFoundError states the table and key", () => {
  const error = new NotFoundError("users", { id: 10n, tenant: "a" });
  assert.equal(error.message, `Cannot find users row with id 10, tenant "a"`);
  assert.equal(error.code, "NOT_FOUND");
  assert.deepEqual(error.key, { id: 10n, tenant: "a" });
  assert.ok(isNotFoundError(error));
  assert.equal(new NotFoundError("users").message, "Cannot find a users row");
  assert.equal(new NotFoundError("posts", { id: 1 }).message, "Cannot find posts row with id 1");
});
