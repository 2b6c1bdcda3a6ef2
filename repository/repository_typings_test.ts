/**
 * Type-level tests of core, executor, DAL and repository (checked by
 * `deno check`; each `@ts-expect-error` line must fail to compile, or the
 * check fails). The functions are never called: only their types matter.
 */
import assert from "node:assert/strict";
import type { Generated, Kysely } from "kysely";
import { z } from "zod";
import {
  type CursorPaginationOptions,
  KyseraError,
  type KyseraErrorCode,
  NotFoundError,
  paginateCursor,
  UniqueConstraintError,
} from "../core/mod.ts";
import { transaction, withTransaction } from "../dal/mod.ts";
import { createORM, initORM, type Repository } from "./mod.ts";
import type { KyseraPlugin } from "../executor/mod.ts";

interface DB {
  posts: { id: Generated<number>; title: string; score: number; created_at: string | null };
  memberships: { org_id: number; user_id: number; role: string };
}

function errorCodes(error: KyseraError): void {
  const code: KyseraErrorCode = error.code;
  // @ts-expect-error: a misspelt code
  if (code === "NOT_FUOND") return;
  const notFound: "NOT_FOUND" = new NotFoundError("posts", { id: 1 }).code;
  const unique: "UNIQUE_VIOLATION" = new UniqueConstraintError("dup", { dialect: "sqlite" }).code;
  // @ts-expect-error: a subclass has its own code
  const wrong: "NOT_FOUND" = new UniqueConstraintError("dup", { dialect: "sqlite" }).code;
  void [notFound, unique, wrong];
}

/** A third-party error names its own code. */
class TenantError extends KyseraError<"TENANT_MISMATCH"> {
  constructor() {
    super("Tenant does not match", "TENANT_MISMATCH");
  }
}

function customCodes(): void {
  const code: "TENANT_MISMATCH" = new TenantError().code;
  void code;
}

async function cursorOrders(db: Kysely<DB>): Promise<void> {
  const q = db.selectFrom("posts").select(["id", "score", "title"]);
  await paginateCursor(q, { orderBy: "score", limit: 1 });
  await paginateCursor(q, { orderBy: "posts.score", limit: 1 });
  await paginateCursor(q, { orderBy: { column: "score", direction: "desc", nulls: "last", type: "number" }, limit: 1 });
  await paginateCursor(q, { orderBy: ["score", { column: "id", direction: "desc" }], limit: 1 });
  await paginateCursor(q, { db, orderBy: [{ column: "score" }], limit: 1 });
  // A hoisted constant needs no `as const` (its strings are checked at run time).
  const hoisted = [{ column: "score", direction: "desc", type: "number" }];
  await paginateCursor(q, { orderBy: hoisted, limit: 1 });
  const one = { column: "score", direction: "desc" };
  await paginateCursor(q, { orderBy: one, limit: 1 });
  const typed: CursorPaginationOptions<DB, "posts"> = { orderBy: "score", limit: 1 };
  await paginateCursor(q, typed);
  // @ts-expect-error: a misspelt column
  await paginateCursor(q, { orderBy: "scor", limit: 1 });
  // @ts-expect-error: a misspelt column in an entry
  await paginateCursor(q, { orderBy: { column: "scor" }, limit: 1 });
  // @ts-expect-error: a misspelt column in an array
  await paginateCursor(q, { orderBy: ["id", "scor"], limit: 1 });
  // @ts-expect-error: not a direction
  await paginateCursor(q, { orderBy: [{ column: "score", direction: "down" }], limit: 1 });
  // @ts-expect-error: not a NULLs position
  await paginateCursor(q, { orderBy: [{ column: "score", nulls: "middle" }], limit: 1 });
  // @ts-expect-error: an unknown key
  await paginateCursor(q, { orderBy: [{ column: "score", dir: "desc" }], limit: 1 });
}

async function repositoryOrders(db: Kysely<DB>): Promise<void> {
  const posts = createORM(db).createRepository({ tableName: "posts" });
  const hoisted = [{ column: "score", direction: "desc" }];
  await posts.find({ orderBy: hoisted });
  await posts.findAll({ orderBy: "title" });
  await posts.findOne({ orderBy: { column: "id", direction: "desc" } });
  await posts.paginate({ page: 1, limit: 2, orderBy: hoisted });
  await posts.paginateCursor({ orderBy: hoisted, limit: 2 });
  await posts.paginateCursor({ orderBy: "score", limit: 2 });
  await posts.paginateCursor({ orderBy: { column: "score", direction: "desc" }, limit: 2 });
  // @ts-expect-error: a misspelt column
  await posts.find({ orderBy: "titel" });
  // @ts-expect-error: a misspelt column
  await posts.paginate({ page: 1, limit: 2, orderBy: [{ column: "scor" }] });
  // @ts-expect-error: a misspelt column
  await posts.paginateCursor({ orderBy: ["scor"], limit: 2 });
  // @ts-expect-error: `nulls` is a cursor option, not a find one
  await posts.find({ orderBy: { column: "title", nulls: "last" } });
}

function schemas(db: Kysely<DB>): void {
  const orm = createORM(db);
  orm.createRepository({
    tableName: "posts",
    schemas: { create: z.object({ title: z.string(), score: z.number() }), update: z.object({ title: z.string() }) },
  });
  // @ts-expect-error: the create schema has a misspelt column
  orm.createRepository({ tableName: "posts", schemas: { create: z.object({ titel: z.string() }) } });
  // @ts-expect-error: the update schema has a key that is no column
  orm.createRepository({ tableName: "posts", schemas: { update: z.object({ title: z.string(), rank: z.number() }) } });
}

async function findByIdOrThrow(db: Kysely<DB>): Promise<void> {
  const posts = createORM(db).createRepository({ tableName: "posts" });
  const row: { id: number; title: string } = await posts.findByIdOrThrow(1);
  // @ts-expect-error: never undefined
  const none: undefined = await posts.findByIdOrThrow(1);
  // @ts-expect-error: the key's type
  await posts.findByIdOrThrow("1");
  const memberships = createORM(db).createRepository({ tableName: "memberships", primaryKey: ["org_id", "user_id"] });
  await memberships.findByIdOrThrow({ org_id: 1, user_id: 2 });
  // @ts-expect-error: a composite key needs every column
  await memberships.findByIdOrThrow({ org_id: 1 });
  void [row, none];
}

async function verbs(db: Kysely<DB>): Promise<void> {
  const orm = createORM(db);
  const posts: Repository<DB, "posts", "id", unknown, unknown, unknown> = orm.createRepository({
    tableName: "posts",
  }) as never;
  // One verb per meaning: `transaction` runs one, `bind` binds to one.
  await transaction(db, (ctx) => {
    posts.bind(ctx.db);
    return Promise.resolve(orm.bind(ctx.db));
  });
  await orm.transaction((tx) => tx.createRepository({ tableName: "posts" }).findAll());
  await posts.transaction((tx) => tx.findAll());
  // The old names still compile (deprecated).
  await withTransaction(db, (ctx) => {
    posts.withTransaction(ctx.db);
    return Promise.resolve(orm.withTransaction(ctx.db));
  });
}

async function pluginsOnce(db: Kysely<DB>): Promise<void> {
  const hello = { name: "hello", extendRepository: () => ({ hello: (): string => "hi" }) } satisfies KyseraPlugin;
  const orm = await initORM(db, [hello]);
  const greeting: string = orm.createRepository({ tableName: "posts" }).hello();
  const plain = await initORM(db);
  // @ts-expect-error: no plugin adds `hello`
  plain.createRepository({ tableName: "posts" }).hello();
  void greeting;
}

Deno.test("type-level tests compile (see the functions above)", () => {
  assert.equal(typeof errorCodes, "function");
  assert.equal(typeof customCodes, "function");
  assert.equal(typeof cursorOrders, "function");
  assert.equal(typeof repositoryOrders, "function");
  assert.equal(typeof schemas, "function");
  assert.equal(typeof findByIdOrThrow, "function");
  assert.equal(typeof verbs, "function");
  assert.equal(typeof pluginsOnce, "function");
});
