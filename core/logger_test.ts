import assert from "node:assert/strict";
import { mock } from "node:test";
import { createConsoleLogger, createPrefixedLogger, type LogLevel, silentLogger } from "./mod.ts";

function fakeConsole() {
  const calls: [LogLevel, unknown[]][] = [];
  const at = (level: LogLevel) => (...args: unknown[]) => void calls.push([level, args]);
  return {
    calls,
    console: { trace: at("trace"), debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
  };
}

Deno.test("createConsoleLogger() writes only messages at or above its level", () => {
  const out = fakeConsole();
  const logger = createConsoleLogger({ level: "warn", console: out.console });
  logger.trace("t");
  logger.debug("d");
  logger.info("i");
  logger.warn("w", { id: 1 });
  logger.error("e");
  assert.deepEqual(out.calls, [["warn", ["w", { id: 1 }]], ["error", ["e"]]]);
});

Deno.test("createConsoleLogger() defaults to info", () => {
  const out = fakeConsole();
  const logger = createConsoleLogger({ console: out.console });
  logger.debug("d");
  logger.info("i");
  assert.deepEqual(out.calls.map(([level]) => level), ["info"]);
});

Deno.test("createConsoleLogger() rejects an unknown level with a RangeError", () => {
  assert.throws(
    () => createConsoleLogger({ level: "verbose" as LogLevel }),
    new RangeError(
      "Cannot create the logger: 'level' must be one of trace, debug, info, warn, error: current value is verbose",
    ),
  );
});

Deno.test("createPrefixedLogger() prefixes every level and passes the arguments on", () => {
  const out = fakeConsole();
  const logger = createPrefixedLogger(createConsoleLogger({ level: "trace", console: out.console }), "audit");
  logger.trace("a");
  logger.error("b", 2);
  assert.deepEqual(out.calls, [["trace", ["[audit] a"]], ["error", ["[audit] b", 2]]]);
});

Deno.test("silentLogger writes nothing", () => {
  const spy = mock.method(console, "error", () => {});
  try {
    silentLogger.error("x");
    assert.equal(spy.mock.callCount(), 0);
  } finally {
    spy.mock.restore();
  }
});
