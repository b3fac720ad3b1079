// scannlite.mjs: search a TFLite Searcher bundle (or a bare .ldb index) in a browser or in Node,
// with libscannlite compiled to WebAssembly (scannlite.wasm), bit for bit the Task Library's
// results. Plain ES module: no bundler, no dependency, nothing fetched but the module itself.
// Usage and measured figures: docs/web.md.
//
//   import { open } from "./scannlite.mjs";
//   const index = await open(await (await fetch("photos.tflite")).arrayBuffer());
//   const hits = index.search(embedding, 5);          // [{id, distance, metadata}, ...]
//   index.close();
//
// Each open index has its own wasm instance and memory: the bundle is copied into that memory
// once, and every search reads it in place. close() frees it all.

const LAYOUT = 40 | (24 << 8) | (1 << 16); // scannlite_wasm.c: sizeof(info), sizeof(result), version
const INFO_SIZE = 40;
const RESULT_SIZE = 24;
const ERR_SIZE = 512;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
const STATUS = ["OK", "ARGUMENT", "FORMAT", "UNSUPPORTED", "MEMORY", "NOT_FOUND"];
const DISTANCE = ["SQUARED_L2", "DOT_PRODUCT"];
const LOOKUP = new Map([[0, "FLOAT"], [1, "INT16"], [2, "INT8"], [-1, "NONE"]]);
const EXPORTS = ["memory", "malloc", "free", "scannlite_open", "scannlite_close", "scannlite_get_info",
  "scannlite_user_info", "scannlite_search", "scannlite_search_filtered", "scannlite_scratch_size",
  "scannlite_metadata", "scannlite_l2_normalize", "scannlite_version", "scannlite_wasm_layout"];
const ENOSYS = 52; // WASI errno for a function this host does not provide

/** Pass as `leaves` to search every leaf (exact over an `allow` list's items). */
export const ALL_LEAVES = UINT32_MAX;

/** Where open() looks for the module when the caller names none: scannlite.wasm next to this file. */
export function defaultWasmURL() {
  return new URL("./scannlite.wasm", import.meta.url);
}

const modules = new Map(); // URL -> Promise<WebAssembly.Module>: each URL is fetched and compiled once

function fail(message, code) {
  const error = new Error(message);
  if (code) error.code = code;
  return error;
}

function toURL(source) {
  if (source instanceof URL) return source;
  const text = String(source);
  if (/^[a-z][a-z0-9+.-]+:/i.test(text)) return new URL(text); // already absolute (two+ letters: not C:\)
  if (globalThis.document?.baseURI) return new URL(text, globalThis.document.baseURI);
  if (globalThis.location?.href) return new URL(text, globalThis.location.href);
  return null; // Node: a file path, resolved against the working directory by readWasm
}

async function readWasm(source) {
  const url = toURL(source);
  try {
    if (url === null || url.protocol === "file:") {
      const { readFile } = await import("node:fs/promises");
      return await readFile(url ?? String(source));
    }
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.arrayBuffer();
  } catch (error) {
    throw fail(`scannlite: cannot load the wasm module ${url ?? source}: ${error.message}`);
  }
}

/**
 * Compile scannlite.wasm once: from a URL or path (cached by URL), from its bytes, or pass a
 * WebAssembly.Module through. open() calls it; call it yourself to load the module early.
 */
export async function loadModule(source = defaultWasmURL()) {
  if (source instanceof WebAssembly.Module) return checkModule(source, "the given module");
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return compile(source, "the given bytes");
  const key = String(toURL(source) ?? source);
  if (!modules.has(key)) {
    const pending = readWasm(source).then((bytes) => compile(bytes, key));
    pending.catch(() => modules.delete(key)); // a failed load is retried next time
    modules.set(key, pending);
  }
  return modules.get(key);
}

async function compile(bytes, name) {
  let module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (error) {
    throw fail(`scannlite: ${name} is not a WebAssembly module: ${error.message}`);
  }
  return checkModule(module, name);
}

function checkModule(module, name) {
  const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const missing = EXPORTS.filter((e) => !exported.has(e));
  if (missing.length) throw fail(`scannlite: ${name} is not scannlite.wasm (it lacks ${missing.join(", ")})`);
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module !== "wasi_snapshot_preview1" || imp.kind !== "function") {
      throw fail(`scannlite: ${name} imports ${imp.module}.${imp.name}, which this host does not provide`);
    }
  }
  return module;
}

// The library never does I/O; should a libc path still import a WASI function, it gets
// ENOSYS (and proc_exit, which must not return, an exception) instead of a failed instantiation.
function importsFor(module) {
  const wasi = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    wasi[imp.name] = imp.name === "proc_exit"
      ? (code) => { throw fail(`scannlite: the wasm module exited with status ${code}`); }
      : () => ENOSYS;
  }
  return { wasi_snapshot_preview1: wasi };
}

// k goes to the library as an int32: it judges every int32 (k <= 0 included, in its own words);
// what is not one is refused here.
function checkK(k) {
  if (!Number.isInteger(k)) throw fail(`scannlite: k must be an integer, not ${String(k)}`, "SCANNLITE_ERROR_ARGUMENT");
  if (k > INT32_MAX || k < INT32_MIN) {
    throw fail(`scannlite: k must be ${k > 0 ? `at most ${INT32_MAX}` : "> 0"}, not ${k}`, "SCANNLITE_ERROR_ARGUMENT");
  }
}

function asBytes(data) {
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer)) {
    return new Uint8Array(data);
  }
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw fail("scannlite: the bundle must be an ArrayBuffer or a typed array (e.g. a Uint8Array)", "SCANNLITE_ERROR_ARGUMENT");
}

function asFloats(query, what) {
  if (query instanceof Float32Array) return query;
  if (query != null && typeof query === "object" && typeof query.length === "number") return Float32Array.from(query);
  throw fail(`scannlite: the ${what} must be a Float32Array (or an array of numbers)`, "SCANNLITE_ERROR_ARGUMENT");
}

/**
 * Open a bundle (.tflite with an on-device ScaNN index in its metadata) or a bare .ldb index.
 * `bundle`: its bytes (ArrayBuffer or typed array), copied once into the module's memory.
 * `options.wasm`: scannlite.wasm as a URL, path, bytes or WebAssembly.Module (default: next to this file).
 * Throws an Error with the library's one-line message when the bytes are not a searchable index.
 */
export async function open(bundle, options = {}) {
  const bytes = asBytes(bundle);
  const module = await loadModule(options.wasm ?? defaultWasmURL());
  const instance = await WebAssembly.instantiate(module, importsFor(module));
  return new ScannliteIndex(instance.exports, bytes);
}

class ScannliteIndex {
  #ex;
  #handle = 0;
  #bundle = 0; // the bundle's copy in wasm memory
  #scratch = 0; // err[ERR_SIZE] | info[INFO_SIZE] | out pointer, data pointer, size, count
  #size = 0;

  constructor(exports, bytes) {
    this.#ex = exports;
    if (typeof exports._initialize === "function") exports._initialize();
    if (exports.scannlite_wasm_layout() !== LAYOUT) {
      throw fail("scannlite: this scannlite.wasm was built for another scannlite.mjs (struct layout differs)");
    }
    try {
      this.#scratch = this.#alloc(ERR_SIZE + INFO_SIZE + 16);
      this.#bundle = this.#alloc(bytes.length);
      this.#u8().set(bytes, this.#bundle);
      const out = this.#scratch + ERR_SIZE + INFO_SIZE;
      this.#check(this.#call(() => exports.scannlite_open(this.#bundle, bytes.length, out, this.#scratch, ERR_SIZE)));
      this.#handle = this.#dv().getUint32(out, true);
      this.#check(this.#call(() => exports.scannlite_get_info(this.#handle, this.#scratch + ERR_SIZE)));
    } catch (error) {
      this.close();
      throw error;
    }
    const dv = this.#dv();
    const at = this.#scratch + ERR_SIZE;
    this.#size = Number(dv.getBigUint64(at + 8, true));
    /** What the index holds, read once at open. */
    this.info = Object.freeze({
      dimension: dv.getUint32(at, true),
      size: this.#size,
      numLeaves: dv.getUint32(at + 16, true),
      leavesToSearch: dv.getUint32(at + 20, true),
      distance: DISTANCE[dv.getInt32(at + 24, true)] ?? `unknown (${dv.getInt32(at + 24, true)})`,
      lookup: LOOKUP.get(dv.getInt32(at + 28, true)) ?? `unknown (${dv.getInt32(at + 28, true)})`,
      numSubspaces: dv.getUint32(at + 32, true),
    });
    /** The index's USER_INFO bytes (empty when it has none), a copy. */
    this.userInfo = this.#view((data, size) => exports.scannlite_user_info(this.#handle, data, size));
    /** The library's version string. */
    this.version = this.#string(exports.scannlite_version() >>> 0, 64);
  }

  /**
   * The k nearest items to `query` (length info.dimension), ascending distance, as the Task
   * Library's searcher with max_results = k returns them. `leaves`: 0 (default) for the index's
   * own leaves_to_search, another number to override it (clamped to numLeaves; ALL_LEAVES for
   * all). `allow`: only these item ids (numbers or bigints) may be returned.
   * Each result's metadata is a copy, valid after close().
   */
  search(query, k, { leaves = 0, allow } = {}) {
    this.#open();
    const q = asFloats(query, "query");
    checkK(k);
    if (!Number.isInteger(leaves) || leaves < 0 || leaves > UINT32_MAX) {
      throw fail(`scannlite: leaves must be an integer from 0 to ${UINT32_MAX}, not ${String(leaves)}`,
        "SCANNLITE_ERROR_ARGUMENT");
    }
    const ids = allow === undefined ? null : this.#ids(allow);
    const capacity = Math.max(1, Math.min(k, this.#size));
    const ex = this.#ex;
    const countAt = this.#scratch + ERR_SIZE + INFO_SIZE + 12;
    const held = [];
    try {
      const qp = this.#alloc(q.length * 4);
      held.push(qp);
      new Float32Array(ex.memory.buffer, qp, q.length).set(q);
      const rp = this.#alloc(capacity * RESULT_SIZE);
      held.push(rp);
      let status;
      if (ids === null) {
        status = this.#call(() => ex.scannlite_search(this.#handle, qp, q.length, k, leaves, rp, countAt,
          this.#scratch, ERR_SIZE));
      } else {
        const ap = this.#alloc(ids.length * 8);
        held.push(ap);
        new BigUint64Array(ex.memory.buffer, ap, ids.length).set(ids);
        status = this.#call(() => ex.scannlite_search_filtered(this.#handle, qp, q.length, k, leaves, ap,
          ids.length, rp, countAt, this.#scratch, ERR_SIZE));
      }
      this.#check(status);
      const dv = this.#dv();
      const u8 = this.#u8();
      const count = dv.getInt32(countAt, true);
      const results = new Array(count);
      for (let i = 0; i < count; i++) {
        const at = rp + i * RESULT_SIZE;
        const data = dv.getUint32(at + 12, true);
        results[i] = {
          id: Number(dv.getBigUint64(at, true)),
          distance: dv.getFloat32(at + 8, true),
          metadata: u8.slice(data, data + dv.getUint32(at + 16, true)),
        };
      }
      return results;
    } finally {
      if (this.#handle) for (const p of held) ex.free(p);
    }
  }

  /** The metadata bytes of item `id` (a copy). */
  metadata(id) {
    this.#open();
    const key = this.#ids([id])[0];
    return this.#view((data, size) => this.#ex.scannlite_metadata(this.#handle, key, data, size));
  }

  /** Bytes of scratch space one search with this k allocates inside the module. */
  scratchSize(k) {
    this.#open();
    checkK(k);
    return this.#ex.scannlite_scratch_size(this.#handle, k) >>> 0;
  }

  /**
   * The Task Library's l2_normalize, bit for bit (float32 arithmetic, a zero vector unchanged),
   * in place on a Float32Array; returns it. Apply it to the query where the app would set
   * l2_normalize, before search().
   */
  l2Normalize(vector) {
    this.#open();
    if (!(vector instanceof Float32Array)) {
      throw fail("scannlite: l2Normalize works in place on a Float32Array", "SCANNLITE_ERROR_ARGUMENT");
    }
    const p = this.#alloc(vector.length * 4);
    try {
      new Float32Array(this.#ex.memory.buffer, p, vector.length).set(vector);
      this.#call(() => this.#ex.scannlite_l2_normalize(p, vector.length));
      vector.set(new Float32Array(this.#ex.memory.buffer, p, vector.length));
    } finally {
      if (this.#handle) this.#ex.free(p);
    }
    return vector;
  }

  /** Free the index and its memory; any later call throws. Calling it again does nothing. */
  close() {
    const ex = this.#ex;
    if (ex === null) return;
    this.#ex = null;
    try {
      if (this.#handle) ex.scannlite_close(this.#handle);
      if (this.#bundle) ex.free(this.#bundle);
      if (this.#scratch) ex.free(this.#scratch);
    } catch {
      // a trapped instance is dropped whole below; its memory goes with it
    }
    this.#handle = this.#bundle = this.#scratch = 0;
  }

  get closed() {
    return this.#ex === null;
  }

  /** Bytes of wasm memory this index holds (the bundle's copy, its tables, the stack); 0 once closed. */
  get memoryBytes() {
    return this.#ex === null ? 0 : this.#ex.memory.buffer.byteLength;
  }

  #open() {
    if (this.#ex === null || !this.#handle) throw fail("scannlite: the index is closed", "SCANNLITE_ERROR_ARGUMENT");
  }

  #u8() {
    return new Uint8Array(this.#ex.memory.buffer); // a fresh view: memory.grow detaches old ones
  }

  #dv() {
    return new DataView(this.#ex.memory.buffer);
  }

  #alloc(bytes) {
    const p = this.#ex.malloc(Math.max(1, bytes)) >>> 0;
    if (p === 0) throw fail(`scannlite: out of wasm memory (allocating ${bytes} bytes)`, "SCANNLITE_ERROR_MEMORY");
    return p;
  }

  // A trap is a library bug, not a user error: the instance cannot be trusted after it.
  #call(fn) {
    try {
      return fn();
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError) {
        this.#handle = 0;
        this.#ex = null;
        throw fail(`scannlite: the wasm module trapped (${error.message}); the index is closed`);
      }
      throw error;
    }
  }

  #check(status) {
    if (status === 0) return;
    const name = STATUS[status] ?? `status ${status}`;
    const message = this.#string(this.#scratch, ERR_SIZE) || `scannlite: ${name.toLowerCase()} error`;
    throw fail(message, `SCANNLITE_ERROR_${name}`);
  }

  #string(at, max) {
    const u8 = this.#u8();
    let end = at;
    while (end < at + max && u8[end] !== 0) end++;
    return new TextDecoder().decode(u8.subarray(at, end));
  }

  // A (data pointer, size) pair filled by the library, copied out of wasm memory.
  #view(fill) {
    const at = this.#scratch + ERR_SIZE + INFO_SIZE + 4;
    const status = this.#call(() => fill(at, at + 4));
    if (status !== 0) {
      const name = STATUS[status] ?? `status ${status}`;
      throw fail(`scannlite: ${name === "NOT_FOUND" ? "no such item" : name.toLowerCase() + " error"}`,
        `SCANNLITE_ERROR_${name}`);
    }
    const dv = this.#dv();
    const data = dv.getUint32(at, true);
    return this.#u8().slice(data, data + dv.getUint32(at + 4, true));
  }

  #ids(allow) {
    if (allow == null || typeof allow !== "object" || typeof allow.length !== "number") {
      throw fail("scannlite: allow must be an array of item ids", "SCANNLITE_ERROR_ARGUMENT");
    }
    if (allow instanceof BigUint64Array) return allow;
    const ids = new BigUint64Array(allow.length);
    for (let i = 0; i < allow.length; i++) {
      const v = allow[i];
      const ok = typeof v === "bigint" ? v >= 0n && v < 2n ** 64n : Number.isSafeInteger(v) && v >= 0;
      if (!ok) throw fail(`scannlite: item ids are integers from 0, not ${String(v)}`, "SCANNLITE_ERROR_ARGUMENT");
      ids[i] = BigInt(v);
    }
    return ids;
  }
}
