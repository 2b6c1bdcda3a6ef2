// What AsyncLocalStorage (the mechanism behind PluginContext) costs under
// Node and Bun, beside a plain async call: `node bench/plugin_context_cost.mjs`
// and `tools/node_modules/.bin/bun bench/plugin_context_cost.mjs`. Prints ns
// per operation; `deno task bench` covers Deno (plugin_context_bench.ts).
import { AsyncLocalStorage } from "node:async_hooks";

const storage = new AsyncLocalStorage();
const N = 200_000;
let sink = 0;

async function time(label, fn) {
  for (let i = 0; i < 20_000; i++) await fn(); // warm up
  const start = performance.now();
  for (let i = 0; i < N; i++) await fn();
  const ns = ((performance.now() - start) * 1e6) / N;
  return [label, ns];
}

const plain = 1;
const results = [
  await time("async call (baseline)", async () => {
    sink += await (async () => {
      await null;
      return plain;
    })();
  }),
  await time("run() around an async call", async () => {
    sink += await storage.run(1, async () => {
      await null;
      return plain;
    });
  }),
  await time("100 reads in an async call (baseline)", async () => {
    await (async () => {
      await null;
      for (let i = 0; i < 100; i++) sink += plain;
    })();
  }),
  await time("run() + 100 getStore()", async () => {
    await storage.run(1, async () => {
      await null;
      for (let i = 0; i < 100; i++) sink += storage.getStore();
    });
  }),
];
const runtime = typeof globalThis.Bun !== "undefined" ? `bun ${globalThis.Bun.version}` : `node ${process.version}`;
for (const [label, ns] of results) console.log(`${runtime}  ${label.padEnd(40)} ${ns.toFixed(0)} ns/op`);
if (sink < 0) console.log(sink);
