// Types for scannlite.mjs: libscannlite compiled to WebAssembly (docs/web.md).

/** Pass as `leaves` to search every leaf (exact over an `allow` list's items). */
export const ALL_LEAVES: 4294967295;

/** scannlite.wasm as a URL or path, its bytes, or an already compiled module. */
export type WasmSource = URL | string | ArrayBuffer | ArrayBufferView | WebAssembly.Module;

export interface OpenOptions {
  /** Where scannlite.wasm is; default: next to scannlite.mjs. */
  wasm?: WasmSource;
}

export interface SearchOptions {
  /** 0 (default): the index's own leavesToSearch; another value overrides it (clamped to numLeaves). */
  leaves?: number;
  /** Only these item ids may be returned (any order, duplicates ignored). */
  allow?: ArrayLike<number | bigint> | BigUint64Array;
}

export interface SearchResult {
  /** The item's ordinal in the index (its metadata key M_<id>). */
  id: number;
  /** As the Task Library reports it: squared L2, or the negative dot product. A float32 value. */
  distance: number;
  /** The item's metadata bytes (a copy). */
  metadata: Uint8Array;
}

export interface IndexInfo {
  /** The query's length in floats. */
  dimension: number;
  /** Items in the index. */
  size: number;
  /** Partitions (1 for an index without a partitioner). */
  numLeaves: number;
  /** Leaves a search visits by default, as the device computes it from search_fraction. */
  leavesToSearch: number;
  distance: "SQUARED_L2" | "DOT_PRODUCT";
  /** "NONE": a float (linear) index without asymmetric hashing. */
  lookup: "FLOAT" | "INT16" | "INT8" | "NONE";
  /** Bytes per item for an asymmetric-hashing index, else 0. */
  numSubspaces: number;
}

/** Errors thrown by this module: the library's one-line message, and which kind of failure. */
export interface ScannliteError extends Error {
  code?: "SCANNLITE_ERROR_ARGUMENT" | "SCANNLITE_ERROR_FORMAT" | "SCANNLITE_ERROR_UNSUPPORTED"
    | "SCANNLITE_ERROR_MEMORY" | "SCANNLITE_ERROR_NOT_FOUND";
}

export interface ScannliteIndex {
  readonly info: Readonly<IndexInfo>;
  /** USER_INFO bytes (empty when absent). */
  readonly userInfo: Uint8Array;
  /** libscannlite's version. */
  readonly version: string;
  readonly closed: boolean;
  /** Bytes of wasm memory this index holds (the bundle's copy, its tables, the stack); 0 once closed. */
  readonly memoryBytes: number;
  /** The k nearest items in ascending distance; bit for bit the C library's (and the Task Library's) results. */
  search(query: Float32Array | ArrayLike<number>, k: number, options?: SearchOptions): SearchResult[];
  /** Metadata bytes of item `id` (a copy). */
  metadata(id: number | bigint): Uint8Array;
  /** Bytes of scratch one search with this k allocates. */
  scratchSize(k: number): number;
  /** The Task Library's l2_normalize, in place; returns its argument. */
  l2Normalize(vector: Float32Array): Float32Array;
  /** Frees the index; later calls throw. */
  close(): void;
}

/** scannlite.wasm's default location: next to scannlite.mjs. */
export function defaultWasmURL(): URL;

/** Compile scannlite.wasm (cached per URL); open() calls it. */
export function loadModule(source?: WasmSource): Promise<WebAssembly.Module>;

/** Open a bundle (.tflite with an on-device ScaNN index) or a bare .ldb; its bytes are copied once. */
export function open(bundle: ArrayBuffer | ArrayBufferView, options?: OpenOptions): Promise<ScannliteIndex>;
