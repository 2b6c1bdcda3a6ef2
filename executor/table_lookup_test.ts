import assert from "node:assert/strict";
import { tableCoverage, tableLookup } from "./mod.ts";

Deno.test("tableLookup() finds a listed table under any spelling, exact first", () => {
  const listed = tableLookup(["posts", "Users", "TAGS", "tags"]);
  assert.deepEqual(["POSTS", "users", "Tags", "TAGS", "x"].map(listed), ["posts", "Users", "tags", "TAGS", undefined]);
});

Deno.test("tableCoverage() folds excluded names like listed ones, except exactly on PostgreSQL", () => {
  const all = tableCoverage({ excludeTables: ["tags"] });
  assert.equal(all("posts"), "posts");
  assert.equal(all("tags"), undefined);
  for (const dialect of [undefined, "sqlite", "mysql", "mssql"] as const) assert.equal(all("TAGS", dialect), undefined);
  assert.equal(all("TAGS", "postgres"), "TAGS"); // another table on PostgreSQL: still covered
  assert.equal(all("tags", "postgres"), undefined);

  const some = tableCoverage({ tables: ["Posts", "tags"], excludeTables: ["TAGS"] });
  assert.equal(some("posts"), "Posts");
  assert.equal(some("POSTS", "postgres"), "Posts"); // listed: covered under any spelling, cautiously
  assert.equal(some("tags", "sqlite"), undefined);
  assert.equal(some("tags", "postgres"), "tags");
  assert.equal(some("users"), undefined);
  assert.equal(tableCoverage({})("anything"), "anything");
});
