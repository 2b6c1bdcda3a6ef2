/**
 * What `wrapSyncSqlite` costs over the bare `node:sqlite` driver, for the
 * statement shape Kysely sends: prepare, then `all` with a parameter array.
 * Run: `deno task bench`.
 */
import { DatabaseSync } from "node:sqlite";
import { wrapSyncSqlite } from "../dialects/mod.ts";

const handle = new DatabaseSync(":memory:");
handle.exec("CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER)");
const insert = handle.prepare("INSERT INTO person (name, age) VALUES (?, ?)");
for (let i = 0; i < 1000; i++) insert.run(`person ${i}`, i % 90);
const wrapped = wrapSyncSqlite(handle);
const query = "SELECT id, name FROM person WHERE age > ? ORDER BY id LIMIT ?";
const parameters = [30, 20] as const;

Deno.bench("node:sqlite, bare driver", { group: "select 20 rows", baseline: true }, () => {
  handle.prepare(query).all(...parameters);
});

Deno.bench("node:sqlite, through wrapSyncSqlite", { group: "select 20 rows" }, () => {
  wrapped.prepare(query).all(parameters);
});
