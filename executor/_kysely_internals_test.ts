/**
 * Pins every reliance on Kysely's internals (`_kysely_internals.ts`, and
 * pagination's prebuilt ORDER BY items in `core/`) against the installed
 * Kysely: a Kysely release that changes one fails here, by name.
 */
import assert from "node:assert/strict";
import {
  DummyDriver,
  expressionBuilder,
  ExpressionWrapper,
  Kysely,
  OrderByItemNode,
  RawNode,
  type SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";
import { builderOf, kyselyWithExecutor, transactionStatements } from "./_kysely_internals.ts";

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;

function dummy(): AnyDb {
  return new Kysely({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
}

Deno.test("Kysely internals: kyselyWithExecutor() installs a query executor on a Kysely and a Transaction", () => {
  const db = dummy();
  const executor = db.getExecutor().withoutPlugins();
  const made = kyselyWithExecutor(db, executor);
  assert.equal(made.getExecutor(), executor);
  assert.ok(made instanceof Kysely);
});

Deno.test("Kysely internals: builderOf() rebuilds each statement kind from its node", () => {
  const db = dummy();
  for (
    const query of [
      db.selectFrom("t").select("a").where("a", "=", 1),
      db.insertInto("t").values({ a: 1 }),
      db.updateTable("t").set({ a: 1 }).where("a", "=", 2),
      db.deleteFrom("t").where("a", "=", 1),
      db.mergeInto("t").using("u", "u.a", "t.a").whenMatched().thenDelete(),
    ]
  ) {
    const node = query.toOperationNode();
    const rebuilt = builderOf(node as never, { queryId: "q" });
    assert.deepEqual(rebuilt.toOperationNode(), node);
  }
});

Deno.test("Kysely internals: orderBy() keeps a prebuilt OrderByItemNode as it is (pagination)", () => {
  const item = OrderByItemNode.create(
    expressionBuilder<{ t: { a: number } }, "t">().ref("a").toOperationNode(),
    RawNode.createWithSql("desc"),
  );
  const node = dummy().selectFrom("t").selectAll().orderBy(new ExpressionWrapper(item))
    .toOperationNode() as SelectQueryNode;
  assert.equal(node.orderBy?.items[0], item);
});

Deno.test("Kysely internals: the SQL Kysely's drivers send to begin and end a transaction", async () => {
  // Read from the installed Kysely's driver sources, so a release that sends
  // something else fails here rather than leaving transactions unseen.
  const dir = new URL("../node_modules/kysely/dist/esm/dialect/", import.meta.url);
  const sent: Record<string, string[]> = {};
  for (const dialect of ["postgres", "mysql", "sqlite"]) {
    const source = await Deno.readTextFile(new URL(`${dialect}/${dialect}-driver.js`, dir));
    for (const method of ["beginTransaction", "commitTransaction", "rollbackTransaction"]) {
      const body = source.slice(
        source.indexOf(`async ${method}(`),
        source.indexOf("\n    }\n", source.indexOf(`async ${method}(`)),
      );
      const raws = [...body.matchAll(/CompiledQuery\.raw\('([^']*)'\)/g)].map((m) => m[1] as string);
      // PostgreSQL builds `start transaction isolation level ...` in a variable.
      if (/let sql = 'start transaction'/.test(body)) raws.push("start transaction isolation level serializable");
      (sent[method] ??= []).push(...raws);
    }
  }
  assert.ok((sent.beginTransaction ?? []).length >= 3, JSON.stringify(sent));
  for (const sql of sent.beginTransaction ?? []) assert.ok(transactionStatements.begin.test(sql), sql);
  for (const sql of [...(sent.commitTransaction ?? []), ...(sent.rollbackTransaction ?? [])]) {
    assert.ok(transactionStatements.end.test(sql), sql);
  }
  // MySQL's `set transaction ...` (before `begin`) and savepoint commands are neither.
  for (const sql of ["set transaction isolation level serializable", "savepoint s", "rollback to savepoint s"]) {
    assert.ok(!transactionStatements.begin.test(sql) && !transactionStatements.end.test(sql), sql);
  }
});

Deno.test("Kysely internals: the savepoint and set-transaction SQL Kysely's drivers send", async () => {
  const dir = new URL("../node_modules/kysely/dist/esm/dialect/", import.meta.url);
  const patterns = {
    savepoint: transactionStatements.savepoint,
    rollbackToSavepoint: transactionStatements.rollbackTo,
    releaseSavepoint: transactionStatements.release,
  };
  const quotes: Record<string, string> = { postgres: '"', mysql: "`", sqlite: '"' };
  let seen = 0;
  for (const dialect of ["postgres", "mysql", "sqlite"]) {
    const source = await Deno.readTextFile(new URL(`${dialect}/${dialect}-driver.js`, dir));
    for (const [method, pattern] of Object.entries(patterns)) {
      const start = source.indexOf(`async ${method}(`);
      const body = source.slice(start, source.indexOf("\n    }\n", start));
      const command = /parseSavepointCommand\('([^']*)'/.exec(body)?.[1];
      assert.ok(command !== undefined, `${dialect} ${method}`);
      // parseSavepointCommand(command, name) is `${command} ` and the quoted name.
      const q = quotes[dialect]!;
      const sql = `${command} ${q}sp_1${q}`;
      assert.equal(pattern.exec(sql)?.[1], `${q}sp_1${q}`, sql);
      assert.ok(!transactionStatements.begin.test(sql) && !transactionStatements.end.test(sql), sql);
      seen++;
    }
    if (dialect === "mysql") {
      // `set transaction ${parts.join(', ')}`, parts: `isolation level ${level}`, the access mode.
      const start = source.indexOf("async beginTransaction(");
      const body = source.slice(start, source.indexOf("\n    }\n", start));
      assert.match(body, /`set transaction \$\{parts\.join\(', '\)\}`/);
      assert.match(body, /`isolation level \$\{settings\.isolationLevel\}`/);
      const sql = "set transaction isolation level repeatable read, read only";
      assert.ok(transactionStatements.setTransaction.test(sql));
      assert.equal(transactionStatements.isolation.exec(sql)?.[1], "repeatable read");
    }
  }
  assert.equal(seen, 9);
  const pgBegin = "start transaction isolation level read committed read write";
  assert.equal(transactionStatements.isolation.exec(pgBegin)?.[1], "read committed");
  // What hand-written SQL sends (the DAL, the audit plugin).
  assert.equal(transactionStatements.savepoint.exec('savepoint "kysera_sp_1"')?.[1], '"kysera_sp_1"');
  assert.equal(transactionStatements.release.exec("release savepoint kysera_audit")?.[1], "kysera_audit");
  assert.equal(transactionStatements.rollbackTo.exec("rollback to savepoint `x`")?.[1], "`x`");
  assert.ok(!transactionStatements.savepoint.test("select 1"));
});
