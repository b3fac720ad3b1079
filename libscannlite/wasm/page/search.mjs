// The offline search page's logic (docs/web.md): one TFLite Searcher bundle, embedded queries
// through MediaPipe's TextEmbedder, searched by libscannlite compiled to WebAssembly. Everything
// is fetched from the page's own folder (no CDN), so it runs from a local static server offline.
import { FilesetResolver, TextEmbedder } from "./mediapipe/text_bundle.mjs";
import { open } from "./scannlite.mjs";

const here = new URL(".", import.meta.url);

/** The bundle's USER_INFO as scannlite writes it (JSON with "scannlite"), else null. */
export function scannliteUserInfo(bytes) {
  try {
    const info = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return info && typeof info === "object" && info.scannlite ? info : null;
  } catch {
    return null;
  }
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Load a bundle: its embedder into MediaPipe's TextEmbedder, its index into scannlite.wasm.
 * Returns {info, userInfo, l2Normalize, embed(text) (normalised as USER_INFO says), embedRaw(text),
 * search(text, k), searchVector(vector, k), close()}.
 */
export async function load(bundleUrl) {
  const timings = {};
  let t = performance.now();
  const bytes = await fetchBytes(bundleUrl);
  timings.fetchMs = performance.now() - t;
  t = performance.now();
  const [fileset, index] = await Promise.all([
    FilesetResolver.forTextTasks(new URL("mediapipe/wasm", here).href.replace(/\/$/, "")),
    open(bytes),
  ]);
  timings.indexMs = performance.now() - t;
  t = performance.now();
  // The embedder's raw output; the index's USER_INFO says whether to l2-normalise (the Task
  // Library's l2_normalize), which scannlite.wasm does bit for bit as the C library.
  const embedder = await TextEmbedder.createFromOptions(fileset, {
    baseOptions: { modelAssetBuffer: bytes, delegate: "CPU" },
    l2Normalize: false,
    quantize: false,
  });
  timings.embedderMs = performance.now() - t;
  const info = scannliteUserInfo(index.userInfo);
  const normalize = Boolean(info && info.l2_normalize);
  const embedRaw = (text) => Float32Array.from(embedder.embed(text).embeddings[0].floatEmbedding);
  const embed = (text) => {
    const vector = embedRaw(text);
    if (vector.length !== index.info.dimension) {
      throw new Error(`the embedder gives ${vector.length} floats but the index expects ${index.info.dimension}`);
    }
    return normalize ? index.l2Normalize(vector) : vector;
  };
  return {
    info: index.info,
    userInfo: info,
    timings,
    l2Normalize: normalize,
    embed,
    embedRaw,
    searchVector: (vector, k) => index.search(Float32Array.from(vector), k),
    search: (text, k) => index.search(embed(text), k),
    close() {
      embedder.close();
      index.close();
    },
  };
}

const decoder = new TextDecoder();

function render(results, params, labels, out) {
  out.replaceChildren();
  const images = params.get("images");
  for (const { id, distance, metadata } of results) {
    const text = decoder.decode(metadata);
    const figure = document.createElement("figure");
    figure.dataset.id = String(id);
    if (images) {
      const img = document.createElement("img");
      img.src = new URL(text, new URL(images, location.href)).href;
      img.width = img.height = 72;
      img.alt = "";
      figure.append(img);
    }
    const caption = document.createElement("figcaption");
    caption.textContent = labels[text] ?? text;
    const small = document.createElement("small");
    small.textContent = `${distance >= 0 ? "+" : ""}${distance.toFixed(3)}`;
    caption.append(document.createElement("br"), small);
    figure.append(caption);
    out.append(figure);
  }
}

/** Wire the page: ?bundle=URL (default emoji_text_searcher.tflite), ?images=FOLDER/, ?labels=JSON URL, ?k=N. */
export async function main() {
  const params = new URLSearchParams(location.search);
  const bundleUrl = new URL(params.get("bundle") || "emoji_text_searcher.tflite", location.href).href;
  const k = Math.max(1, Math.min(100, Number.parseInt(params.get("k") || "10", 10) || 10));
  const status = document.getElementById("status");
  const form = document.getElementById("form");
  const input = document.getElementById("query");
  const out = document.getElementById("results");
  const state = { ready: null, loadMs: null, firstSearchMs: null, error: null };
  window.scannlitePage = state;
  state.ready = (async () => {
    const labelsUrl = params.get("labels");
    const [page, labels] = await Promise.all([
      load(bundleUrl),
      labelsUrl ? fetchBytes(new URL(labelsUrl, location.href)).then((b) => JSON.parse(decoder.decode(b))) : {},
    ]);
    state.page = page;
    state.loadMs = performance.now(); // since navigation started
    const run = () => {
      const t0 = performance.now();
      const results = page.search(input.value, k);
      const ms = performance.now() - t0;
      render(results, params, labels, out);
      status.textContent = `${results.length} results in ${ms.toFixed(1)} ms (embed + search)`;
      return results;
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      try {
        run();
      } catch (e) {
        status.textContent = `error: ${e.message}`;
      }
    });
    input.disabled = false;
    if (input.value) {
      run();
      state.firstSearchMs = performance.now();
    } else {
      status.textContent = `ready: ${page.info.size} items, ${page.info.numLeaves} leaves (${page.info.leavesToSearch} searched)`;
    }
    return page;
  })();
  state.ready.catch((e) => {
    state.error = e.message;
    status.textContent = `error: ${e.message}`;
  });
  return state.ready;
}
