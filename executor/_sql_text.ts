/**
 * The last look at a statement before it runs: its compiled SQL text, read
 * the way the database will read it. Kysely writes some pieces into the text
 * as they were given (operators such as `#`, which MySQL reads as a comment;
 * a unary minus before a negative literal, `--1`; function names; an
 * `explain` format; raw fragments), and a comment there hides whatever
 * follows it (the row scope's predicate is appended last), while a newline
 * inside a quoted name ends a `#` or `--` comment and turns the rest of the
 * name into SQL. A `;` starts a second statement (PostgreSQL runs a
 * statement without parameters as a simple query, which may hold several).
 * So the text is scanned once, skipping quoted names and string literals by
 * the dialect's rules, for a comment opener, a `;`, a dollar quote or an
 * unterminated quote outside them.
 */
import type { DialectName } from "../core/mod.ts";

const QUOTE = 39; // '
const DOUBLE = 34; // "
const BACKTICK = 96; // `
const BRACKET = 91; // [
const CLOSE_BRACKET = 93; // ]
const BACKSLASH = 92; // \
const DASH = 45; // -
const SLASH = 47; // /
const STAR = 42; // *
const HASH = 35; // #
const SEMICOLON = 59; // ;
const DOLLAR = 36; // $

/**
 * What any unsafe text must contain, per dialect: a quote (which may be
 * left open), or a comment, statement or dollar-quote marker. One native
 * search; most statements hold none.
 */
const SUSPECT: Readonly<Record<string, RegExp>> = {
  sqlite: /[-/;'[]/,
  postgres: /[-/;']|\$\D/,
  mysql: /[-/;'#\\"]/,
  unknown: /[-/;'#\\"[$]/,
};

/**
 * What in `sql` would make the database read something other than the
 * statement Kysely built, or `undefined` when nothing does.
 *
 * @param sql The compiled SQL text.
 * @param dialect The dialect that reads it (`undefined`: every rule at once).
 */
export function unsafeSqlText(sql: string, dialect: DialectName | undefined): string | undefined {
  // Most statements hold none of the characters that matter: one native
  // search rules them out; only the others are read quote by quote.
  if (!(SUSPECT[dialect ?? "unknown"] ?? SUSPECT.unknown!).test(sql)) return undefined;
  const mysql = dialect === "mysql" || dialect === undefined;
  const sqlite = dialect === "sqlite" || dialect === undefined;
  const postgres = dialect === "postgres" || dialect === undefined;
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === QUOTE || (c === DOUBLE && mysql && dialect !== undefined)) {
      // A string literal: '' (or "") doubles the quote; MySQL also reads a
      // backslash as an escape, PostgreSQL and SQLite do not, so a literal
      // holding one is read differently by dialects: refused where it matters.
      i++;
      for (;;) {
        if (i >= n) return "an unterminated string literal";
        const d = sql.charCodeAt(i);
        if (d === BACKSLASH && mysql) {
          // MySQL's escape (PostgreSQL, with standard_conforming_strings, and
          // SQLite read a backslash as itself; Kysely writes no E'' strings).
          if (dialect === undefined) return "a backslash in a string literal";
          i += 2;
          continue;
        }
        i++;
        if (d === c) {
          if (sql.charCodeAt(i) === c) i++;
          else break;
        }
      }
      continue;
    }
    if (c === DOUBLE || c === BACKTICK || (c === BRACKET && sqlite)) {
      // A quoted name; the closing quote doubles to escape ([...] cannot).
      const close = c === BRACKET ? CLOSE_BRACKET : c;
      i++;
      for (;;) {
        if (i >= n) return "an unterminated quoted name";
        const d = sql.charCodeAt(i++);
        if (d === close) {
          if (close !== CLOSE_BRACKET && sql.charCodeAt(i) === close) i++;
          else break;
        }
      }
      continue;
    }
    if (c === DASH && sql.charCodeAt(i + 1) === DASH) return "a comment (--)";
    if (c === SLASH && sql.charCodeAt(i + 1) === STAR) return "a comment (/*)";
    if (c === HASH && mysql) return "a comment (#)";
    if (c === SEMICOLON) return "a second statement (;)";
    // `$1` is a PostgreSQL parameter; `$tag$` or `$$` would open a dollar-quoted string.
    if (c === DOLLAR && postgres) {
      const d = sql.charCodeAt(i + 1);
      if (!(d >= 48 && d <= 57)) return "a dollar quote";
    }
    i++;
  }
  return undefined;
}
