import assert from "node:assert/strict";
import { unsafeSqlText } from "./_sql_text.ts";

Deno.test("unsafeSqlText() finds comments and second statements outside quotes, by dialect", () => {
  const cases: [string, "postgres" | "mysql" | "sqlite", string | undefined][] = [
    [`select "a--b", 'it''s -- fine', "x/*y" from "t" where "id" = $1`, "postgres", undefined],
    ["select `a#b`, 'x # y' from `t` where `id` = ?", "mysql", undefined],
    [`select [a'--], 'x' from "t"`, "sqlite", undefined],
    [`select 1 --1 from "t"`, "postgres", "a comment (--)"],
    [`select 1 /* x */ from "t"`, "sqlite", "a comment (/*)"],
    ["select `id` # 1 from `t`", "mysql", "a comment (#)"],
    [`select "id" # 1 from "t"`, "postgres", undefined],
    [`select 1; delete from "t"`, "postgres", "a second statement (;)"],
    [`select $$x$$`, "postgres", "a dollar quote"],
    // MySQL reads \' as an escaped quote: the literal goes on.
    ["select 'a\\' -- ' from `t`", "mysql", undefined],
    // PostgreSQL does not: the literal ends at the second quote.
    [`select 'a\\' -- '`, "postgres", "a comment (--)"],
    [`select 'open`, "sqlite", "an unterminated string literal"],
    [`select "open --`, "sqlite", "an unterminated quoted name"],
    // A newline inside a quoted name is inside it.
    [`select "a\n--" from "t"`, "sqlite", undefined],
  ];
  for (const [sql, dialect, want] of cases) assert.equal(unsafeSqlText(sql, dialect), want, `${dialect}: ${sql}`);
});
