/**
 * One entry of an order as TypeScript types it when the order is a hoisted
 * constant without `as const` (its strings widened to `string`).
 */
export type LooseOrderEntry =
  | string
  | {
    readonly column: string;
    readonly direction?: string | undefined;
    readonly nulls?: string | undefined;
    readonly type?: string | undefined;
    readonly key?: string | undefined;
  };

/**
 * An order in any of its forms: a column, a `{ column, direction }` object,
 * or an array of both, literal or widened; {@linkcode CheckedOrder} then
 * checks what is known at compile time.
 */
export type LooseOrder = LooseOrderEntry | readonly LooseOrderEntry[];

/**
 * `V` when it is a widened `string` (checked at run time) or one of
 * `Allowed`; else `Allowed`, so that the value fails to compile.
 *
 * @typeParam V The value's type as written.
 * @typeParam Allowed The values allowed.
 */
export type OrderLiteral<V, Allowed> = string extends V ? V : V extends Allowed ? V : Allowed;

/**
 * One entry of {@linkcode CheckedOrder}: a column name, or an entry object
 * whose `column`, `direction` and `Extra` options are checked with
 * {@linkcode OrderLiteral}, and whose other keys are refused.
 *
 * @typeParam E The entry as written.
 * @typeParam Column The column names allowed.
 * @typeParam Extra The other options an entry may have, with their allowed values.
 */
export type CheckedOrderEntry<E, Column, Extra> = E extends string ? OrderLiteral<E, Column>
  : E extends { readonly column: infer C } ?
      & { readonly [K in Exclude<keyof E, "column" | "direction" | keyof Extra>]: never }
      & { readonly column: OrderLiteral<C, Column> }
      & (E extends { readonly direction?: infer D }
        ? { readonly direction?: OrderLiteral<D, "asc" | "desc" | undefined> }
        : unknown)
      & { readonly [K in keyof Extra & keyof E]?: OrderLiteral<E[K], Extra[K]> }
  : never;

/**
 * The type an order must also have: every column name, direction and
 * option written as a literal is checked (a misspelt column fails to
 * compile), while strings TypeScript widened (a hoisted constant without
 * `as const`) are accepted and checked at run time. Unknown keys fail to
 * compile.
 *
 * @typeParam O The order as written.
 * @typeParam Column The column names allowed.
 * @typeParam Extra The other options an entry may have, with their allowed values.
 */
export type CheckedOrder<O, Column, Extra = Record<never, never>> = O extends readonly unknown[]
  ? { readonly [K in keyof O]: CheckedOrderEntry<O[K], Column, Extra> }
  : CheckedOrderEntry<O, Column, Extra>;
