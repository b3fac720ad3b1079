// Rough figures for docs/web.md: open time and search latency of scannlite.wasm in Node.
//   node libscannlite/wasm/bench.mjs WASM FILE QUERIES.f32 K [REPEAT]
// Prints one JSON line: the module's size, compile time, open p50 (instantiate + copy + open),
// and search p50/p90 over every query of the file, REPEAT times (default 5).
import { readFileSync, statSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { loadModule, open } from "./scannlite.mjs";

const [wasmPath, file, queriesPath, kText, repeatText = "5"] = process.argv.slice(2);
if (!queriesPath || !kText) {
  console.error("usage: node bench.mjs WASM FILE QUERIES.f32 K [REPEAT]");
  process.exit(2);
}
const k = Number(kText);
const repeat = Number(repeatText);
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

let t = performance.now();
const module = await loadModule(readFileSync(wasmPath));
const compileMs = performance.now() - t;
const bytes = readFileSync(file);
const opens = [];
for (let i = 0; i < 10; i++) {
  t = performance.now();
  const index = await open(bytes, { wasm: module });
  opens.push(performance.now() - t);
  index.close();
}
const index = await open(bytes, { wasm: module });
const raw = readFileSync(queriesPath);
const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
const dim = index.info.dimension;
const queries = [];
for (let q = 0; q * dim < all.length; q++) queries.push(all.slice(q * dim, (q + 1) * dim));
for (const query of queries) index.search(query, k); // warm-up: the engine tiers up the hot loops
const searches = [];
for (let r = 0; r < repeat; r++) {
  for (const query of queries) {
    t = performance.now();
    index.search(query, k);
    searches.push(performance.now() - t);
  }
}
console.log(JSON.stringify({
  wasm_bytes: statSync(wasmPath).size, file, file_bytes: bytes.length, ...index.info, k,
  compile_ms: +compileMs.toFixed(2), open_p50_ms: +quantile(opens, 0.5).toFixed(3),
  searches: searches.length, search_p50_ms: +quantile(searches, 0.5).toFixed(4),
  search_p90_ms: +quantile(searches, 0.9).toFixed(4), memory_bytes: index.memoryBytes, node: process.version,
}));
index.close();
