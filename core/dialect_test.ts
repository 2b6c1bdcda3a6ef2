import assert from "node:assert/strict";
import { type DialectAdapter, MssqlAdapter, MysqlAdapter, PostgresAdapter, SqliteAdapter } from "kysely";
import { dialectOfAdapter } from "./mod.ts";

Deno.test("dialectOfAdapter() names Kysely's four adapters and their subclasses", () => {
  class PgliteAdapter extends PostgresAdapter {}
  assert.deepEqual(
    [new PostgresAdapter(), new MysqlAdapter(), new SqliteAdapter(), new MssqlAdapter(), new PgliteAdapter()]
      .map(dialectOfAdapter),
    ["postgres", "mysql", "sqlite", "mssql", "postgres"],
  );
});

Deno.test("dialectOfAdapter() recognises an adapter from another copy of Kysely by its class name", () => {
  // Stands for the MysqlAdapter class of a second kysely copy (JSR and npm in one process).
  const copies = { MysqlAdapter: class {} };
  assert.equal(dialectOfAdapter(new copies.MysqlAdapter() as unknown as DialectAdapter), "mysql");
});

Deno.test("dialectOfAdapter() rejects an unknown adapter with a TypeError", () => {
  class OracleAdapter {}
  assert.throws(
    () => dialectOfAdapter(new OracleAdapter() as unknown as DialectAdapter),
    new TypeError(
      "Cannot determine the dialect: the adapter is not one of Kysely's built-in adapters: current adapter is OracleAdapter",
    ),
  );
});
