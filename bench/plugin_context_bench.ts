/**
 * What a plugin context (AsyncLocalStorage) costs on Deno: reading it, and
 * entering it per call, beside a plain closure variable (the baseline).
 * `bench/plugin_context_cost.mjs` measures the same under Node and Bun.
 *
 * Run: `deno bench -A bench/plugin_context_bench.ts`
 */
import { PluginContext } from "../executor/mod.ts";

const context = new PluginContext<number>("tenant");
let plain = 1;
let sink = 0;

Deno.bench("100 closure reads inside an async call", { group: "read 100", baseline: true }, async () => {
  await (async () => {
    await null;
    for (let i = 0; i < 100; i++) sink += plain;
  })();
});
Deno.bench("100 PluginContext.get() inside run()", { group: "read 100" }, async () => {
  await context.run(1, async () => {
    await null;
    for (let i = 0; i < 100; i++) sink += context.get() ?? 0;
  });
});
Deno.bench("async call", { group: "enter", baseline: true }, async () => {
  plain = await (async () => {
    await null;
    return 1;
  })();
});
Deno.bench("PluginContext.run() around an async call", { group: "enter" }, async () => {
  plain = await context.run(1, async () => {
    await null;
    return 1;
  });
});
