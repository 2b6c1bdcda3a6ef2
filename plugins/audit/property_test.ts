/**
 * AU-01 as a property: random sequences of writes through the executor
 * (multi-row inserts, updates and deletes by predicate, upserts, insert ...
 * select, failing inserts) write exactly one audit row per affected row, and
 * none for a write that failed. The expected count of each write is taken
 * from the table before it, not from the driver. Each run draws a new seed,
 * logged with the result; `KYSERA_FC_SEED` replays one.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Kysely, sql } from "kysely";
import { addIdColumn, dbSuite, type TestDatabase } from "../../_test/harness.ts";
import { createExecutorSync } from "../../executor/mod.ts";
import { auditPlugin, createAuditTable } from "./mod.ts";

// deno-lint-ignore no-explicit-any
type DB = any;

const suite = dbSuite<DB>(import.meta, {
  async tables(db: Kysely<DB>, database: TestDatabase) {
    await createAuditTable(db);
    await addIdColumn(db.schema.createTable("items"), database)
      .addColumn("code", "varchar(40)", (c) => c.notNull().unique())
      .addColumn("k", "integer", (c) => c.notNull())
      .addColumn("v", "integer", (c) => c.notNull())
      .execute();
  },
});

const SEED = Number(Deno.env.get("KYSERA_FC_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(Deno.env.get("KYSERA_AUDIT_PROPERTY_RUNS") ?? 200);
const OPS = 50;

type Op =
  | { kind: "insert"; codes: number[]; k: number }
  | { kind: "update"; k: number }
  | { kind: "delete"; k: number; v: number }
  | { kind: "upsert"; code: number; k: number }
  | { kind: "copy"; k: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("insert" as const),
    codes: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 5 }),
    k: fc.integer({ min: 0, max: 4 }),
  }),
  fc.record({ kind: fc.constant("update" as const), k: fc.integer({ min: 0, max: 4 }) }),
  fc.record({
    kind: fc.constant("delete" as const),
    k: fc.integer({ min: 0, max: 4 }),
    v: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({
    kind: fc.constant("upsert" as const),
    code: fc.integer({ min: 0, max: 40 }),
    k: fc.integer({ min: 0, max: 4 }),
  }),
  fc.record({ kind: fc.constant("copy" as const), k: fc.integer({ min: 0, max: 4 }) }),
);

suite.test("AU-01: random writes leave audit rows − affected rows = 0", async ({ db, database }) => {
  const ex = createExecutorSync(db, [auditPlugin({ tables: ["items"] })]);
  const count = async (table: string, where?: (q: DB) => DB): Promise<number> => {
    let q = db.selectFrom(table).select(sql<number>`count(*)`.as("n"));
    if (where) q = where(q);
    return Number((await q.executeTakeFirstOrThrow()).n);
  };
  let copies = 0;
  let total = 0;
  let mismatches = 0;
  let failures = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: OPS, maxLength: OPS }), async (ops) => {
      await db.deleteFrom("audit_logs").execute();
      await db.deleteFrom("items").execute();
      for (const o of ops) {
        const before = await count("audit_logs");
        let expected: number;
        try {
          switch (o.kind) {
            case "insert": {
              const codes = [...new Set(o.codes)];
              const existing = await count("items", (q) => q.where("code", "in", codes.map((c) => `c${c}`)));
              expected = existing > 0 ? 0 : codes.length; // a clash fails the whole statement
              await ex.insertInto("items").values(codes.map((c) => ({ code: `c${c}`, k: o.k, v: 0 }))).execute();
              break;
            }
            case "update":
              expected = await count("items", (q) => q.where("k", "=", o.k));
              await ex.updateTable("items").set((eb) => ({ v: eb("v", "+", 1) })).where("k", "=", o.k).execute();
              break;
            case "delete":
              expected = await count("items", (q) => q.where("k", "=", o.k).where("v", ">=", o.v));
              await ex.deleteFrom("items").where("k", "=", o.k).where("v", ">=", o.v).execute();
              break;
            case "upsert": {
              expected = 1;
              const row = { code: `c${o.code}`, k: o.k, v: 0 };
              const q = ex.insertInto("items").values(row);
              await (database === "mariadb"
                ? q.onDuplicateKeyUpdate((eb) => ({ v: eb("v", "+", 1) }))
                : q.onConflict((oc) => oc.column("code").doUpdateSet((eb) => ({ v: eb("items.v", "+", 1) }))))
                .execute();
              break;
            }
            case "copy": {
              expected = await count("items", (q) => q.where("k", "=", o.k));
              const suffix = `-${copies++}`;
              await ex.insertInto("items").columns(["code", "k", "v"]).expression(
                ex.selectFrom("items").select((eb) => [
                  database === "mariadb"
                    ? sql<string>`concat(code, ${suffix})`.as("code")
                    : sql<string>`code || ${suffix}`.as("code"),
                  eb.val(9).as("k"),
                  "v",
                ]).where("k", "=", o.k),
              ).execute();
              break;
            }
          }
        } catch (error) {
          // Only a clashing insert may fail; it must leave no audit row.
          if (o.kind !== "insert") throw error;
          failures++;
          expected = 0;
        }
        const written = (await count("audit_logs")) - before;
        total += expected;
        if (written !== expected) mismatches++;
        assert.equal(written, expected, `${JSON.stringify(o)}: ${written} audit rows for ${expected} rows`);
      }
    }),
    { numRuns: RUNS, seed: SEED },
  );
  console.log(
    `AU-01 ${database}: ${RUNS * OPS} random writes (${failures} refused by the database), ${total} affected rows, ` +
      `${mismatches} mismatches (seed ${SEED})`,
  );
});
