// The host CLI's output format (`scannlite-cli search`), made from scannlite.mjs results so the
// two can be compared as text: one line per result, "query rank id distance metadata_hex".

const scratch = new DataView(new ArrayBuffer(8));

/** A double as glibc's printf("%a") prints it: shortest hex mantissa, "0x0p+0" for zero. */
export function hexFloat(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  scratch.setFloat64(0, x);
  const hi = scratch.getUint32(0);
  const sign = hi >>> 31 ? "-" : "";
  const biased = (hi >>> 20) & 0x7ff;
  const mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(scratch.getUint32(4));
  if (biased === 0 && mantissa === 0n) return `${sign}0x0p+0`;
  const lead = biased === 0 ? "0" : "1";
  const exponent = biased === 0 ? -1022 : biased - 1023;
  const fraction = mantissa.toString(16).padStart(13, "0").replace(/0+$/, "");
  return `${sign}0x${lead}${fraction ? "." + fraction : ""}p${exponent >= 0 ? "+" : ""}${exponent}`;
}

export function hex(bytes) {
  return bytes.length ? Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") : "-";
}

/** The lines of one query's results; `query` is its 0-based position in the queries file. */
export function formatResults(query, results) {
  return results.map((r, rank) => `${query} ${rank} ${r.id} ${hexFloat(r.distance)} ${hex(r.metadata)}`);
}
