/**
 * Kysera's starter example: an in-memory SQLite database (node:sqlite, no
 * server needed), typed Kysely queries, and a unique violation turned into a
 * typed error. Run it with `npm run example` (or `deno task example`).
 */
import { DatabaseSync } from "node:sqlite";
import { type Generated, Kysely, SqliteDialect } from "kysely";
import { getDialect, isUniqueConstraintError, parseDatabaseError } from "@kysera/kysera";
import { wrapSyncSqlite } from "@kysera/kysera/dialects";

interface Database {
  users: { id: Generated<number>; email: string; name: string };
}

const db = new Kysely<Database>({
  dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
});

try {
  await db.schema.createTable("users")
    .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
    .addColumn("email", "text", (c) => c.notNull().unique())
    .addColumn("name", "text", (c) => c.notNull())
    .execute();

  await db.insertInto("users").values([
    { email: "ada@example.com", name: "Ada Lovelace" },
    { email: "grace@example.com", name: "Grace Hopper" },
  ]).execute();

  const users = await db.selectFrom("users").select(["id", "name"]).orderBy("name").execute();
  console.log(`dialect: ${getDialect(db)}`);
  console.log("users:", users.map((u) => `${u.id} ${u.name}`).join(", "));

  try {
    await db.insertInto("users").values({ email: "ada@example.com", name: "Ada again" }).execute();
  } catch (raw) {
    const error = parseDatabaseError(raw, getDialect(db));
    if (!isUniqueConstraintError(error)) throw error;
    console.log(
      `typed error: ${error.name} (${error.code}) on ${error.table}(${error.columns?.join(", ")}): ${error.message}`,
    );
  }
} finally {
  await db.destroy();
}
