/**
 * Kysera's starter example: a small blog on an in-memory SQLite database
 * (node:sqlite, no server needed). It shows
 *
 * - an executor whose plugins apply to every query: a row scope hiding draft
 *   posts, soft delete, and created_at/updated_at timestamps,
 * - typed repositories with input validation (zod, any Standard Schema),
 * - DAL query functions and a transaction (with a nested savepoint),
 * - driver errors turned into typed errors, and keyset pagination,
 * - a multi-tenant part: row-level security and an audit trail.
 *
 * Run it with `npm run example` (or `deno task example`).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type Generated, Kysely, SqliteDialect } from "kysely";
import { z } from "zod";
import {
  createExecutor,
  createORM,
  createQuery,
  type DbContext,
  destroyExecutor,
  isUniqueConstraintError,
  isValidationError,
  type KyseraPlugin,
  transaction,
} from "@kysera/kysera";
import { wrapSyncSqlite } from "@kysera/kysera/dialects";
import { softDeletePlugin, withDeleted } from "@kysera/kysera/soft-delete";
import { timestampsPlugin } from "@kysera/kysera/timestamps";
import { defineRLSSchema, filter, isRLSPolicyViolation, rlsContext, rlsPlugin } from "@kysera/kysera/rls";
import { auditPlugin, auditReader, createAuditTable } from "@kysera/kysera/audit";

interface Blog {
  users: { id: Generated<number>; email: string; name: string };
  posts: { id: Generated<number>; user_id: number; title: string; published: number };
  comments: {
    id: Generated<number>;
    post_id: number;
    user_id: number;
    body: string;
    created_at: Generated<string>;
    updated_at: Generated<string>;
    deleted_at: string | null;
  };
}

const db = new Kysely<Blog>({
  dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
});
await db.schema.createTable("users")
  .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
  .addColumn("email", "text", (c) => c.notNull().unique())
  .addColumn("name", "text", (c) => c.notNull())
  .execute();
await db.schema.createTable("posts")
  .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
  .addColumn("user_id", "integer", (c) => c.notNull().references("users.id"))
  .addColumn("title", "text", (c) => c.notNull())
  .addColumn("published", "integer", (c) => c.notNull().defaultTo(0))
  .execute();
await db.schema.createTable("comments")
  .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
  .addColumn("post_id", "integer", (c) => c.notNull().references("posts.id"))
  .addColumn("user_id", "integer", (c) => c.notNull().references("users.id"))
  .addColumn("body", "text", (c) => c.notNull())
  .addColumn("created_at", "text")
  .addColumn("updated_at", "text")
  .addColumn("deleted_at", "text")
  .execute();

// A plugin: wherever `posts` appears (FROM, joins, subqueries), drafts are hidden.
const hideDrafts: KyseraPlugin = {
  name: "hide-drafts",
  scopeRows: (ref, eb) => ref.table === "posts" ? eb(ref.column("published"), "=", 1) : undefined,
};
// Comments are soft-deleted and timestamped; the clock is the app's.
const softDelete = softDeletePlugin({ tables: ["comments"] });
const timestamps = timestampsPlugin({ tables: ["comments"] });
const executor = await createExecutor(db, [hideDrafts, softDelete, timestamps]);
const orm = createORM(executor, [hideDrafts, softDelete, timestamps]);

const users = orm.createRepository({
  tableName: "users",
  schemas: { create: z.object({ email: z.email(), name: z.string().min(1) }) },
});
const posts = orm.createRepository({ tableName: "posts" });
const comments = orm.createRepository({ tableName: "comments" });

const ada = await users.create({ email: "ada@example.com", name: "Ada Lovelace" });
const grace = await users.create({ email: "grace@example.com", name: "Grace Hopper" });
assert.deepEqual((await users.findAll()).map((u) => u.name), ["Ada Lovelace", "Grace Hopper"]);

// Input validation: the schema rejects the input before any SQL is sent.
await assert.rejects(users.create({ email: "not-an-email", name: "" }), (error) => {
  assert.ok(isValidationError(error));
  assert.deepEqual(error.issues.map((i) => i.path?.join(".")), ["email", "name"]);
  return true;
});

// A driver error comes out typed, naming the column.
await assert.rejects(users.create({ email: "ada@example.com", name: "Ada again" }), (error) => {
  assert.ok(isUniqueConstraintError(error));
  assert.deepEqual([error.code, error.table, error.columns], ["UNIQUE_VIOLATION", "users", ["email"]]);
  return true;
});

// Writing goes through a transaction; the nested savepoint fails alone.
await transaction(executor, async (ctx) => {
  const txPosts = posts.bind(ctx.db);
  const txComments = comments.bind(ctx.db);
  const post = await txPosts.create({ user_id: ada.id, title: "Notes on the Analytical Engine", published: 1 });
  await txPosts.create({ user_id: grace.id, title: "A draft nobody sees", published: 0 });
  await txPosts.create({ user_id: grace.id, title: "Compilers for everyone", published: 1 });
  await txComments.create({ post_id: post.id, user_id: grace.id, body: "Brilliant." });
  await transaction(ctx, async (inner) => {
    await comments.bind(inner.db).create({ post_id: post.id, user_id: ada.id, body: "Thanks!" });
    throw new Error("changed my mind");
  }).then(
    () => assert.fail("the savepoint must fail"),
    (error: Error) => assert.equal(error.message, "changed my mind"),
  );
});

// A DAL query function: posts with their comment counts. The draft stays
// hidden here too, although the query never mentions `published`.
const postsWithCounts = createQuery((ctx: DbContext<Blog>) =>
  ctx.db.selectFrom("posts as p")
    .leftJoin("comments as c", "c.post_id", "p.id")
    .select((eb) => ["p.title", eb.fn.count<number>("c.id").as("comments")])
    .groupBy(["p.id", "p.title"])
    .orderBy("p.id")
    .execute()
);
const counts = (rows: { title: string; comments: number }[]) => rows.map((r) => [r.title, Number(r.comments)]);
assert.deepEqual(counts(await postsWithCounts(executor)), [
  ["Notes on the Analytical Engine", 1],
  ["Compilers for everyone", 0],
]);

// Soft delete: the comment disappears from every query, joins included, and
// comes back on request; timestamps were set on every write.
const [comment] = await comments.findAll();
assert.ok(comment!.created_at !== null && comment!.created_at !== undefined, "created_at is set");
await comments.delete(comment!.id);
assert.deepEqual(counts(await postsWithCounts(executor)), [
  ["Notes on the Analytical Engine", 0],
  ["Compilers for everyone", 0],
]);
const kept = await withDeleted(() => comments.findAll());
assert.equal(kept.length, 1);
assert.ok(kept[0]!.deleted_at !== null, "the comment is only marked deleted");

// Keyset pagination, one post a page, newest first.
let after: string | undefined;
const titles: string[] = [];
do {
  const page = await posts.paginateCursor({ orderBy: [{ column: "id", direction: "desc" }], limit: 1, after });
  titles.push(...page.data.map((p) => p.title));
  after = page.nextCursor ?? undefined;
} while (after !== undefined);
assert.deepEqual(titles, ["Compilers for everyone", "Notes on the Analytical Engine"]);

// Multi-tenant: every query on `notes` sees only the caller's tenant, writes
// cannot forge or move a tenant, and every change is audited in the same
// transaction, with the actor taken from the RLS context.
interface Tenancy {
  notes: { id: Generated<number>; tenant_id: number; body: string };
}
const tenancyDb = db as unknown as Kysely<Tenancy>;
await tenancyDb.schema.createTable("notes")
  .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
  .addColumn("tenant_id", "integer", (c) => c.notNull())
  .addColumn("body", "text", (c) => c.notNull())
  .execute();
await createAuditTable(tenancyDb);
const rls = rlsPlugin({
  schema: defineRLSSchema<Tenancy>({
    notes: { policies: [filter("all", (ctx) => ({ tenant_id: ctx.auth.tenantId }))] },
  }),
});
const audit = auditPlugin({ tables: ["notes"], actor: () => String(rlsContext.getUserId()) });
const tenantPlugins = [rls, audit];
const notes = createORM(await createExecutor(tenancyDb, tenantPlugins), tenantPlugins)
  .createRepository({ tableName: "notes" });
const as = (userId: string, tenantId: number) => ({ auth: { userId, tenantId, roles: [] } });

await rlsContext.runAsync(as("ada", 1), () => notes.create({ tenant_id: 1, body: "tenant 1's plan" }));
await rlsContext.runAsync(as("grace", 2), () => notes.create({ tenant_id: 2, body: "tenant 2's secret" }));
await rlsContext.runAsync(as("ada", 1), async () => {
  assert.deepEqual((await notes.findAll()).map((n) => n.body), ["tenant 1's plan"]);
  await assert.rejects(notes.create({ tenant_id: 2, body: "forged" }), (error) => isRLSPolicyViolation(error));
});
const trail = await auditReader(tenancyDb).getTableAuditLogs("notes");
assert.deepEqual(trail.map((e) => [e.actor, e.operation, e.entityId]), [["ada", "insert", "1"], [
  "grace",
  "insert",
  "2",
]]);

await destroyExecutor(executor);
console.log("example: every check passed");
