/**
 * Which raw SQL inside a builder query a row scope can live with.
 *
 * A raw fragment (`sql\`...\`` in a select list, a WHERE, `modifyEnd`, a
 * set-operation branch) is text no hook can read: it may read a covered
 * table (`(select title from posts)`), run SQL kept in a string
 * (`query_to_xml('select ...')`), end the statement (`;`) or comment out
 * what follows it (`--`, `#`, `/*`), which is where the scope's predicate
 * goes. A fragment is let through as *inert* only when all of it is on an
 * allow-list that can do none of that: operators, numbers, string
 * literals, column names, expression keywords, and calls of functions that
 * compute a value from their arguments (`count`, `coalesce`, `lower`,
 * `now`, ...). Anything else (an unknown function, a keyword that starts a
 * query, a quoting the list cannot follow) is raw SQL, which a plugin with
 * a `rawSql` policy decides on. Fail closed: the list says what is safe,
 * not what is dangerous.
 */
import type { OperationNode, RawNode } from "kysely";

/** Functions that compute a value from their arguments and read no table. */
const FUNCTIONS: ReadonlySet<string> = new Set([
  "abs",
  "array_agg",
  "avg",
  "bool_and",
  "bool_or",
  "cast",
  "ceil",
  "ceiling",
  "char_length",
  "character_length",
  "coalesce",
  "concat",
  "concat_ws",
  "count",
  "current_database",
  "current_date",
  "current_schema",
  "current_time",
  "current_timestamp",
  "current_user",
  "database",
  "date",
  "date_trunc",
  "datetime",
  "dense_rank",
  "extract",
  "floor",
  "greatest",
  "group_concat",
  "if",
  "ifnull",
  "iif",
  "instr",
  "json_agg",
  "json_array",
  "json_build_object",
  "json_extract",
  "json_object",
  "jsonb_agg",
  "jsonb_build_object",
  "julianday",
  "lag",
  "lead",
  "least",
  "left",
  "length",
  "localtime",
  "localtimestamp",
  "lower",
  "lpad",
  "ltrim",
  "max",
  "md5",
  "min",
  "mod",
  "now",
  "nullif",
  "position",
  "power",
  "quote_ident",
  "random",
  "rank",
  "right",
  "round",
  "row_number",
  "rpad",
  "rtrim",
  "session_user",
  "sqrt",
  "strftime",
  "string_agg",
  "strpos",
  "substr",
  "substring",
  "sum",
  "to_json",
  "to_regclass",
  "to_jsonb",
  "trim",
  "unixepoch",
  "upper",
  "version",
]);

/**
 * Words a `(` may follow without being a function call: expression
 * keywords, and type names in `cast(x as varchar(10))`. (A subquery after
 * `exists (` or `in (` needs a query word, refused below.)
 */
const BEFORE_PARENS: ReadonlySet<string> = new Set([
  "all",
  "and",
  "any",
  "as",
  "between",
  "by",
  "case",
  "char",
  "character",
  "decimal",
  "distinct",
  "else",
  "exists",
  "filter",
  "ilike",
  "in",
  "is",
  "like",
  "not",
  "numeric",
  "or",
  "over",
  "row",
  "some",
  "then",
  "varchar",
  "when",
]);

/** Words that start, join or end a query, or act on the database, outside a function call. */
const QUERY_WORDS: ReadonlySet<string> = new Set([
  "alter",
  "analyze",
  "call",
  "copy",
  "create",
  "delete",
  "do",
  "drop",
  "except",
  "exec",
  "execute",
  "explain",
  "grant",
  "handler",
  "insert",
  "intersect",
  "into",
  "join",
  "lateral",
  "load",
  "lock",
  "merge",
  "pragma",
  "prepare",
  "replace",
  "returning",
  "revoke",
  "select",
  "set",
  "show",
  "table",
  "truncate",
  "union",
  "update",
  "using",
  "vacuum",
  "values",
  "window",
  "with",
]);

/** Node kinds that compile to a name: followed by `(`, the name would be called as a function. */
const NAME_KINDS: ReadonlySet<string> = new Set([
  "IdentifierNode",
  "ReferenceNode",
  "ColumnNode",
  "TableNode",
  "SchemableIdentifierNode",
]);

/**
 * The text of a raw node with its parameters in place: nested raw nodes
 * inline (so `sql\`${sql.raw("query_to_xml")}(...)\`` reads as one call),
 * names as a quoted name, anything else (values, subqueries: nodes the
 * hooks see) as `?`.
 */
function textOf(node: RawNode): string {
  let text = node.sqlFragments[0] ?? "";
  node.parameters.forEach((parameter: OperationNode, i: number) => {
    if (parameter.kind === "RawNode") text += ` ${textOf(parameter as RawNode)} `;
    else if (NAME_KINDS.has(parameter.kind)) text += ` "p" `;
    else text += " ? ";
    text += node.sqlFragments[i + 1] ?? "";
  });
  return text;
}

function callable(word: string | undefined): boolean {
  return word !== undefined && (FUNCTIONS.has(word) || BEFORE_PARENS.has(word));
}

/**
 * Whether a raw node nested in a builder query is inert (see the module
 * doc); `false` means it is raw SQL no hook can read.
 *
 * @param node A raw node inside a statement.
 */
export function isInertRaw(node: RawNode): boolean {
  const text = textOf(node);
  let depth = 0;
  let i = 0;
  // The last word or quoted name, while only spaces follow it: a `(` next
  // makes it a function call.
  let pending: { word: string | undefined } | undefined;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "(") {
      if (pending !== undefined && !callable(pending.word)) return false;
      pending = undefined;
      depth++;
      i++;
      continue;
    }
    pending = undefined;
    if (c === ")") {
      if (--depth < 0) return false;
      i++;
      continue;
    }
    if (c === "'") {
      // A string literal; '' is a quote inside it. A backslash is refused:
      // MySQL reads it as an escape and PostgreSQL does not, so where the
      // literal ends would depend on the database.
      i++;
      for (;;) {
        const d = text[i];
        if (d === undefined || d === "\\") return false;
        i++;
        if (d === "'") {
          if (text[i] === "'") i++;
          else break;
        }
      }
      continue;
    }
    if (c === '"' || c === "`") {
      // A quoted name (a string on MySQL without ANSI_QUOTES: inert either way).
      const end = text.indexOf(c, i + 1);
      if (end === -1 || text.slice(i + 1, end).includes("\\")) return false;
      i = end + 1;
      pending = { word: undefined };
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 64))?.[0];
    if (word !== undefined) {
      const lower = word.toLowerCase();
      if (QUERY_WORDS.has(lower)) return false;
      pending = { word: lower };
      i += word.length;
      continue;
    }
    // Operators, numbers, commas, dots and `?`; nothing that ends the
    // statement, starts a comment or a dollar quote, or escapes.
    // (`[` is refused: SQLite reads `[...]` as a quoted name, which could hide a quote.)
    if (/[0-9.,+\-*/%<>=!|&^~:?@]/.test(c)) {
      if ((c === "-" && text[i + 1] === "-") || (c === "/" && text[i + 1] === "*")) return false;
      i++;
      continue;
    }
    return false;
  }
  return depth === 0;
}

/**
 * Functions that run SQL they are given as a string, or read a table they
 * are given by name, where no row scope can reach it (PostgreSQL's
 * `query_to_xml`, `table_to_xml` and friends, `dblink`). A known list, as a
 * builder call (`eb.fn("query_to_xml", ...)`) is no raw SQL: it cannot be
 * complete, which the RLS docs say, pointing at native policies.
 */
const SQL_RUNNING_FUNCTIONS: ReadonlySet<string> = new Set([
  "cursor_to_xml",
  "cursor_to_xmlschema",
  "database_to_xml",
  "database_to_xml_and_xmlschema",
  "database_to_xmlschema",
  "dblink",
  "dblink_exec",
  "dblink_open",
  "dblink_send_query",
  "query_to_xml",
  "query_to_xml_and_xmlschema",
  "query_to_xmlschema",
  "schema_to_xml",
  "schema_to_xml_and_xmlschema",
  "schema_to_xmlschema",
  "table_to_xml",
  "table_to_xml_and_xmlschema",
  "table_to_xmlschema",
]);

/**
 * Whether a function called through the builder runs SQL from a string or
 * reads a table by name (see {@linkcode SQL_RUNNING_FUNCTIONS}).
 *
 * @param name The function name as the builder holds it (possibly schema-qualified).
 */
export function runsSqlFromString(name: string): boolean {
  const bare = name.slice(name.lastIndexOf(".") + 1).replaceAll('"', "").toLowerCase();
  return SQL_RUNNING_FUNCTIONS.has(bare);
}
