// Type-checks the packed package as a TypeScript consumer sees it
// (smoke/run.sh: tsc, NodeNext resolution, skipLibCheck off).
import { type DialectName, isUniqueConstraintError, type KyseraLogger, parseDatabaseError } from "kysera";
import { createPrefixedLogger } from "kysera/core";
import { wrapSyncSqlite } from "kysera/dialects";

const dialect: DialectName = "postgres";
const error = parseDatabaseError(new Error("x"), dialect);
if (isUniqueConstraintError(error)) {
  const columns: readonly string[] | undefined = error.columns;
  void columns;
}
const logger: KyseraLogger = createPrefixedLogger(
  { trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  "smoke",
);
void logger;
void wrapSyncSqlite;

// @ts-expect-error: not a dialect Kysera knows
parseDatabaseError(new Error("x"), "oracle");
// @ts-expect-error: the result is typed, not any
const notAString: string = parseDatabaseError(new Error("x"), "mysql");
void notAString;
