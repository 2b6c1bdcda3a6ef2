import type { Insertable, Kysely, Selectable, Transaction, Updateable } from "kysely";

/**
 * Anything queries can run on: a Kysely instance or a transaction of one.
 * Functions that take an `Executor<DB>` work both inside and outside a
 * transaction.
 *
 * @example A function that runs inside or outside a transaction
 * ```ts
 * import type { Executor } from "@kysera/kysera/core";
 *
 * interface DB { users: { id: number; email: string } }
 * async function countUsers(db: Executor<DB>): Promise<number> {
 *   const row = await db.selectFrom("users").select((eb) => eb.fn.countAll<number>().as("n"))
 *     .executeTakeFirstOrThrow();
 *   return Number(row.n);
 * }
 * ```
 */
export type Executor<DB> = Kysely<DB> | Transaction<DB>;

/** The names of the tables of a database type. */
export type TableName<DB> = keyof DB & string;

/** A row of table `T` as a select returns it. */
export type Row<DB, T extends TableName<DB>> = Selectable<DB[T]>;

/** A row of table `T` as an insert accepts it (generated columns optional). */
export type NewRow<DB, T extends TableName<DB>> = Insertable<DB[T]>;

/** The changes an update of table `T` accepts (every column optional). */
export type RowUpdate<DB, T extends TableName<DB>> = Updateable<DB[T]>;

/** The column names of table `T`. */
export type ColumnName<DB, T extends TableName<DB>> = keyof DB[T] & string;
