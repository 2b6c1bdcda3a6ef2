/**
 * The audit plugin: every INSERT, UPDATE and DELETE through a Kysera
 * executor (repository, DAL, plain builders, multi-row, upsert,
 * `insert ... select`) writes one audit row per affected row — table, key,
 * operation, old and new values, changed columns, actor, tenant, time and
 * metadata — on the write's own connection and transaction, so a rollback
 * leaves no audit row and a failed audit insert fails the write. Old rows are
 * read with row locks (`FOR UPDATE`) where the database has them. Readers
 * give a row's history, a table's or an actor's changes, the row as of a
 * time, and restore from an entry (itself audited).
 *
 * Secret columns (`redact`) never reach the audit table. Every audit row
 * carries its tenant (`tenant`), and under row-level security the audit
 * table is filtered like any other (`filter("read", auditTenantFilter())`),
 * so a tenant reads only its own audit rows through every reader. Writes
 * that cannot be recorded exactly (`REPLACE`, `MERGE`, a raw-SQL target,
 * a multi-table UPDATE or DELETE, a table without its key columns, and on
 * MariaDB an UPDATE setting a primary key to an expression) throw
 * `UnauditableWriteError` instead of passing unaudited; raw SQL statements
 * through the executor are refused unless the call runs in `allowRawSql()`.
 * UPDATE and DELETE change exactly the rows read and locked before them;
 * upserts lock their keys, so concurrent upserts keep each row's old → new
 * chain.
 *
 * @example Auditing and reading back
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * // Deno. Node 20: better-sqlite3's `new Database(":memory:")`, as is; Bun: `wrapSyncSqlite(new Database(":memory:"))` from "bun:sqlite"
 * import { Kysely, SqliteDialect } from "kysely";
 * import { wrapSyncSqlite } from "@kysera/kysera/dialects"; // npm: "kysera/dialects"
 * import { createExecutorSync } from "@kysera/kysera/executor"; // npm: "kysera/executor"
 * import { auditPlugin, auditReader, createAuditTable } from "@kysera/kysera/audit"; // npm: "kysera/audit"
 *
 * // deno-lint-ignore no-explicit-any
 * const db = new Kysely<any>({
 *   dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
 * });
 * await createAuditTable(db);
 * await db.schema.createTable("posts").addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("title", "text").execute();
 * const executor = createExecutorSync(db, [auditPlugin({ actor: () => "ada" })]);
 * await executor.insertInto("posts").values([{ id: 1, title: "a" }, { id: 2, title: "b" }]).execute();
 * await executor.deleteFrom("posts").execute();
 * const logs = await auditReader(db).getUserChanges("ada");
 * assert.deepEqual(logs.map((e) => `${e.operation} ${e.entityId}`), ["insert 1", "insert 2", "delete 1", "delete 2"]);
 * await db.destroy();
 * ```
 *
 * @module
 */
export * from "./audit_plugin.ts";
export * from "./audit_reader.ts";
export * from "./audit_table.ts";
export * from "./audit_tenant_filter.ts";
export * from "./errors.ts";
