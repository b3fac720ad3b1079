// scannlite.mjs + scannlite.wasm under Node's test runner:
//   node --test libscannlite/wasm/test/
// On its own it checks Google's tflite-support fixtures (../shared/fixtures/tflite-support) and
// the error paths. tests/test_native_wasm.py runs it with SCANNLITE_WASM_CASES naming a JSON
// file of vector sets: each is searched here and its lines must equal the host C CLI's.
// Environment: SCANNLITE_WASM (the module; default libscannlite/build-wasm/scannlite.wasm),
// SCANNLITE_FIXTURES (Google's fixtures folder), SCANNLITE_WASM_CASES (optional).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { ALL_LEAVES, loadModule, open } from "../scannlite.mjs";
import { formatResults, hexFloat } from "./lines.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../../..");
const WASM = process.env.SCANNLITE_WASM ?? resolve(ROOT, "libscannlite/build-wasm/scannlite.wasm");
const FIXTURES = process.env.SCANNLITE_FIXTURES ?? resolve(ROOT, "../shared/fixtures/tflite-support");
const CASES = process.env.SCANNLITE_WASM_CASES;
const TEXT_LABELS = ["sunny", "weather", "sun", "cat", "car"]; // the fixtures' README: metadata order (sentences)
const IMAGE_LABELS = ["bird", "burger", "car", "cat", "dog"];

const fixture = (name) => readFileSync(resolve(FIXTURES, name));
const openFile = (path, options) => open(readFileSync(path), { wasm: WASM, ...options });
const text = (bytes) => new TextDecoder().decode(bytes);

function burgerQuery() {
  const pbtxt = readFileSync(resolve(FIXTURES, "burger_jpg_embedding.pbtxt"), "utf8");
  return Float32Array.from([...pbtxt.matchAll(/value_float:\s*(\S+)/g)].map((m) => Number(m[1])));
}

// A one-line Error carrying the library's message (or this module's own, prefixed "scannlite:").
function oneLineError(pattern) {
  return (error) => {
    assert.ok(error instanceof Error, `expected an Error, got ${error}`);
    assert.ok(error.message.length > 0 && !/[\r\n]/.test(error.message), `not one line: ${JSON.stringify(error.message)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

test("the module exports what scannlite.mjs needs and imports nothing from its host", async () => {
  const module = await loadModule(WASM);
  assert.deepEqual(WebAssembly.Module.imports(module), []);
  const exported = WebAssembly.Module.exports(module).map((e) => e.name).sort();
  assert.deepEqual(exported, ["_initialize", "free", "malloc", "memory", "scannlite_close", "scannlite_get_info",
    "scannlite_l2_normalize", "scannlite_metadata", "scannlite_open", "scannlite_scratch_size",
    "scannlite_search", "scannlite_search_filtered", "scannlite_user_info", "scannlite_version",
    "scannlite_wasm_layout"]);
  assert.equal(await loadModule(WASM), module, "one compile per URL");
});

test("scannlite.d.ts declares what scannlite.mjs exports, and the index's members", async () => {
  const module = await import("../scannlite.mjs");
  const dts = readFileSync(resolve(HERE, "../scannlite.d.ts"), "utf8");
  const declared = [...dts.matchAll(/^export (?:function|const) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(module).sort());
  const body = dts.slice(dts.indexOf("export interface ScannliteIndex {"));
  const members = [...body.slice(0, body.indexOf("\n}")).matchAll(/^  (?:readonly )?(\w+)[(:]/gm)].map((m) => m[1]);
  const index = await openFile(resolve(FIXTURES, "regex_index.ldb"));
  try {
    assert.ok(members.length >= 10, `found ${members}`);
    for (const name of members) assert.ok(name in index, `${name} is declared but missing`);
    assert.deepEqual(Object.keys(index.info).sort(), [...dts.slice(dts.indexOf("export interface IndexInfo {")).split("\n}")[0]
      .matchAll(/^  (\w+):/gm)].map((m) => m[1]).sort());
  } finally {
    index.close();
  }
});

test("Google's regex_searcher.tflite: info, user info, metadata order, and the same results as its bare .ldb", async () => {
  const bundle = await openFile(resolve(FIXTURES, "regex_searcher.tflite"));
  const bare = await openFile(resolve(FIXTURES, "regex_index.ldb"));
  try {
    assert.deepEqual({ ...bundle.info }, { ...bare.info });
    assert.equal(bundle.info.dimension, 16);
    assert.ok(bundle.memoryBytes >= fixture("regex_searcher.tflite").length, "the bundle's copy lives in wasm memory");
    assert.equal(bundle.info.size, 5);
    assert.equal(bundle.info.numLeaves, 1);
    assert.equal(bundle.info.distance, "SQUARED_L2");
    assert.equal(text(bundle.userInfo), "userinfo");
    assert.match(bundle.version, /^\d+\.\d+\.\d+$/);
    assert.ok(Number.isInteger(bundle.scratchSize(5)) && bundle.scratchSize(5) > 0);
    assert.ok(bundle.scratchSize(1000) >= bundle.scratchSize(5));
    const sentences = TEXT_LABELS.map((_, id) => text(bundle.metadata(id)));
    TEXT_LABELS.forEach((label, id) => assert.match(sentences[id], new RegExp(`\\b${label}\\b`)));
    assert.equal(sentences[1], "The weather was excellent.");
    const query = new Float32Array(16).map((_, i) => Math.sin(i + 1));
    bundle.l2Normalize(query);
    const results = bundle.search(query, 5);
    assert.equal(results.length, 5);
    assert.deepEqual(results, bare.search(query, 5));
    assert.deepEqual(results.map((r) => r.id).sort(), [0, 1, 2, 3, 4]);
    for (let i = 1; i < results.length; i++) assert.ok(results[i - 1].distance <= results[i].distance);
    assert.deepEqual(bundle.search(query, 2), results.slice(0, 2), "max_results = 2 returns the first two");
    for (const r of results) assert.equal(text(r.metadata), sentences[r.id]);
  } finally {
    bundle.close();
    bare.close();
  }
});

test("Google's searcher_index.ldb with burger_jpg_embedding: the distances the Task Library's tests recorded", async () => {
  const index = await openFile(resolve(FIXTURES, "searcher_index.ldb"));
  try {
    assert.equal(index.info.dimension, 1024);
    const results = index.search(burgerQuery(), 5);
    const expected = [["burger", 0.0], ["car", 1.82244], ["bird", 1.93094], ["dog", 2.04736], ["cat", 2.07587]];
    assert.deepEqual(results.map((r) => text(r.metadata)), expected.map(([label]) => label));
    results.forEach((r, i) => assert.ok(Math.abs(r.distance - expected[i][1]) < 1e-5, `${r.distance} vs ${expected[i][1]}`));
    assert.deepEqual(results.map((r) => IMAGE_LABELS[r.id]), expected.map(([label]) => label));
  } finally {
    index.close();
  }
});

test("allow restricts the results to the listed ids, in the unrestricted order", async () => {
  const index = await openFile(resolve(FIXTURES, "searcher_index.ldb"));
  try {
    const query = burgerQuery();
    const all = index.search(query, 5, { leaves: ALL_LEAVES });
    for (const allow of [[3, 1], [4], [0, 2, 4, 2], [4n, 0n], new BigUint64Array([1n, 2n])]) {
      const ids = new Set([...allow].map(Number));
      const expected = all.filter((r) => ids.has(r.id));
      assert.deepEqual(index.search(query, 5, { allow, leaves: ALL_LEAVES }), expected);
      assert.deepEqual(index.search(query, 1, { allow, leaves: ALL_LEAVES }), expected.slice(0, 1));
    }
    assert.deepEqual(index.search(query, 5, { allow: [] }), []);
    assert.throws(() => index.search(query, 5, { allow: [-1] }), oneLineError(/^scannlite: /));
    assert.throws(() => index.search(query, 5, { allow: 3 }), oneLineError(/^scannlite: /));
  } finally {
    index.close();
  }
});

test("l2Normalize is the Task Library's float32 rule, in place; a zero vector is left as it is", async () => {
  const index = await openFile(resolve(FIXTURES, "regex_index.ldb"));
  try {
    const vector = Float32Array.from({ length: 100 }, (_, i) => Math.cos(i * 0.37) * (i + 1));
    let sum = 0;
    for (const v of vector) sum = Math.fround(sum + Math.fround(v * v));
    const inv = Math.fround(1 / Math.fround(Math.sqrt(sum)));
    const expected = vector.map((v) => Math.fround(v * inv));
    assert.equal(index.l2Normalize(vector), vector);
    assert.deepEqual(vector, expected);
    const zero = new Float32Array(8);
    assert.deepEqual(index.l2Normalize(zero), new Float32Array(8));
    assert.throws(() => index.l2Normalize([1, 2]), oneLineError(/Float32Array/));
  } finally {
    index.close();
  }
});

test("bad input: one-line Errors from the library, and the index stays usable", async () => {
  const index = await openFile(resolve(FIXTURES, "regex_searcher.tflite"));
  const query = new Float32Array(16).fill(0.25);
  try {
    assert.throws(() => index.search(new Float32Array(15), 3), oneLineError());
    assert.throws(() => index.search(new Float32Array(17), 3), oneLineError());
    assert.throws(() => index.search(query, 0), oneLineError());
    assert.throws(() => index.search(query, -1), oneLineError());
    assert.throws(() => index.search(query, 1.5), oneLineError(/^scannlite: k must be an integer/));
    assert.throws(() => index.search(query, 2 ** 31), oneLineError(/^scannlite: k must be at most 2147483647/));
    assert.throws(() => index.search(query, -(2 ** 40)), oneLineError(/^scannlite: k must be > 0/));
    assert.equal(index.search(query, 2 ** 31 - 1).length, 5, "a k above the index's size returns every item");
    assert.throws(() => index.search(query, 3, { leaves: -1 }), oneLineError(/^scannlite: leaves/));
    assert.throws(() => index.search("0.25", 3), oneLineError(/Float32Array/));
    assert.throws(() => index.metadata(99), oneLineError());
    assert.equal(index.search(query, 3).length, 3, "still usable after the errors");
  } finally {
    index.close();
  }
  assert.throws(() => index.search(query, 3), oneLineError(/closed/));
  assert.equal(index.memoryBytes, 0);
  index.close(); // twice is harmless
});

test("foreign, truncated and empty files are refused with one-line Errors", async () => {
  const bundle = fixture("regex_searcher.tflite");
  const ldb = fixture("regex_index.ldb");
  const bad = {
    "a JPEG": fixture("burger.jpg"),
    "a model without an index": fixture("regex_one_embedding_with_metadata.tflite"),
    "the bundle cut in half": bundle.subarray(0, bundle.length >> 1),
    "the bundle less its last byte": bundle.subarray(0, bundle.length - 1),
    "the index cut in half": ldb.subarray(0, ldb.length >> 1),
    "the index less its footer": ldb.subarray(0, ldb.length - 48),
    "nothing": new Uint8Array(0),
    "the wasm module": readFileSync(WASM),
  };
  for (const [what, bytes] of Object.entries(bad)) {
    await assert.rejects(open(bytes, { wasm: WASM }), oneLineError(), what);
  }
  await assert.rejects(open("not bytes", { wasm: WASM }), oneLineError(/^scannlite: the bundle must be/));
  await assert.rejects(open(ldb, { wasm: resolve(HERE, "missing.wasm") }), oneLineError(/^scannlite: cannot load/));
  await assert.rejects(open(ldb, { wasm: ldb }), oneLineError(/is not a WebAssembly module/));
});

test("results and metadata survive close() and later memory growth", async () => {
  const index = await openFile(resolve(FIXTURES, "searcher_index.ldb"));
  const first = index.search(burgerQuery(), 5);
  const other = await openFile(resolve(FIXTURES, "searcher_index.ldb"));
  index.close();
  assert.deepEqual(first.map((r) => text(r.metadata)), ["burger", "car", "bird", "dog", "cat"]);
  assert.deepEqual(other.search(burgerQuery(), 5), first);
  other.close();
});

test("hexFloat prints as C's printf(\"%a\") does with glibc", () => {
  assert.equal(hexFloat(0), "0x0p+0");
  assert.equal(hexFloat(-0), "-0x0p+0");
  assert.equal(hexFloat(1), "0x1p+0");
  assert.equal(hexFloat(3), "0x1.8p+1");
  assert.equal(hexFloat(-0.1), "-0x1.999999999999ap-4");
  assert.equal(hexFloat(Math.fround(0.1)), "0x1.99999ap-4");
  assert.equal(hexFloat(2 ** -149), "0x1p-149");
  assert.equal(hexFloat(Infinity), "inf");
});

// The vector sets of tests/test_native_wasm.py: each search must give the host C CLI's lines
// exactly, and each bad input the CLI's error message (less its "error: " prefix).
if (CASES) {
  const { searches, errors } = JSON.parse(readFileSync(CASES, "utf8"));
  for (const c of searches) {
    test(`vector set ${c.name}: the host C CLI's lines, bit for bit`, async () => {
      const index = await openFile(c.path);
      try {
        assert.equal(index.info.dimension, c.dim);
        const raw = readFileSync(c.queries);
        const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        assert.ok(all.length > 0 && all.length % c.dim === 0, `${c.queries}: not whole queries of ${c.dim} floats`);
        const options = { leaves: c.leaves ?? 0 };
        if (c.allow) options.allow = readFileSync(c.allow, "utf8").split("\n").filter((l) => l !== "").map(Number);
        const lines = [];
        const normalized = c.normalized ? new Float32Array(all) : null;
        for (let q = 0; q * c.dim < all.length; q++) {
          let query = all.subarray(q * c.dim, (q + 1) * c.dim);
          if (normalized) query = index.l2Normalize(normalized.subarray(q * c.dim, (q + 1) * c.dim));
          lines.push(...formatResults(q, index.search(query, c.k, options)));
        }
        if (normalized) {
          // The host library's normalised queries, bit for bit (compared as integers: -0 and NaN too).
          const host = readFileSync(c.normalized);
          assert.deepEqual(new Uint32Array(normalized.buffer),
            new Uint32Array(host.buffer.slice(host.byteOffset, host.byteOffset + host.byteLength)));
        }
        writeFileSync(c.output, lines.map((l) => l + "\n").join(""));
        const expected = readFileSync(c.expected, "utf8").split("\n").filter((l) => l !== "");
        assert.ok(expected.length > 0, `${c.expected} is empty`);
        assert.deepEqual(lines, expected);
        assert.throws(() => index.search(all.subarray(0, c.dim - 1), c.k), oneLineError(), "wrong dimension");
      } finally {
        index.close();
      }
    });
  }
  for (const c of errors) {
    test(`bad input ${c.name}: the CLI's one-line error`, async () => {
      const expected = (error) => oneLineError()(error) && assert.equal(error.message, c.message) === undefined;
      if (c.k === undefined) {
        await assert.rejects(openFile(c.path), expected);
        return;
      }
      const index = await openFile(c.path);
      try {
        const raw = readFileSync(c.queries);
        const length = index.info.dimension + (c.dim_delta ?? 0);
        const query = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 4 * length));
        assert.equal(query.length, length);
        assert.throws(() => index.search(query, c.k), expected);
      } finally {
        index.close();
      }
    });
  }
}
