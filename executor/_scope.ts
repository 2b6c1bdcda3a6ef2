/**
 * Which transaction callbacks run in the current asynchronous call tree, so
 * that a query sent around the transaction can be caught: see
 * `inTransactionScope` and `OutsideTransactionError`.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Family } from "./_family.ts";
import { OutsideTransactionError } from "./plugin_error.ts";

/** A running transaction callback: the family whose transaction it is. */
interface Scope {
  readonly family: Family;
  readonly parent: Scope | undefined;
  /** Cleared when the callback settles: work it left running is no longer inside it. */
  open: boolean;
}

const SCOPES = new AsyncLocalStorage<Scope | undefined>();

/** Runs `fn` marked as a transaction callback of `family`. */
export function enterScope<R>(family: Family, fn: () => Promise<R>): Promise<R> {
  const scope: Scope = { family, parent: SCOPES.getStore(), open: true };
  family.openScopes++;
  const close = (): void => {
    scope.open = false;
    family.openScopes--;
  };
  let result: Promise<R>;
  try {
    result = SCOPES.run(scope, fn);
  } catch (error) {
    close();
    throw error;
  }
  return Promise.resolve(result).finally(close);
}

/**
 * The check of a query sent through an executor that is not bound to a
 * connection, while a scope of its family may be open. Called only when
 * `family.openScopes > 0`.
 */
export function checkOutside(family: Family): void {
  for (let scope = SCOPES.getStore(); scope !== undefined; scope = scope.parent) {
    if (scope.family === family && scope.open) {
      const error = new OutsideTransactionError();
      if (family.outsideTransaction === "throw") throw error;
      console.warn(error.message);
      return;
    }
  }
}

/** Runs `fn` outside every transaction callback. */
export function exitScopes<R>(fn: () => R): R {
  return SCOPES.run(undefined, fn);
}
