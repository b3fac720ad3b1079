/* A bundle: a .tflite flatbuffer whose TFLITE_METADATA buffer names the SCANN_INDEX_FILE
 * associated file of an output tensor of subgraph 0, found in the zip appended to the model
 * (stored entries only). Schemas: tensorflow/lite/schema/schema.fbs and
 * tensorflow_lite_support/metadata/metadata_schema.fbs. Every offset is checked. */
#include <string.h>

#include "internal.h"

#define SCANN_INDEX_FILE 6

typedef struct fb {
  const uint8_t *p;
  size_t n;
} fb;

static int fb_u32(const fb *b, size_t at, uint32_t *out) {
  if (at > b->n || b->n - at < 4) return 0;
  *out = sl_u32(b->p + at);
  return 1;
}

/* Position of field `slot` of the table at t (0 if absent); -1 on a bad table. */
static long long fb_field(const fb *b, size_t t, unsigned slot) {
  uint32_t soff;
  if (!fb_u32(b, t, &soff)) return -1;
  long long vt = (long long)t - (long long)(int32_t)soff;
  if (vt < 0 || (size_t)vt > b->n || b->n - (size_t)vt < 4) return -1;
  uint16_t vsize = sl_u16(b->p + vt), tsize = sl_u16(b->p + vt + 2);
  if (vsize < 4 || (size_t)vt + vsize > b->n) return -1;
  (void)tsize;
  size_t at = 4 + 2 * (size_t)slot;
  if (at + 2 > vsize) return 0;
  uint16_t off = sl_u16(b->p + vt + at);
  if (off == 0) return 0;
  if (t + off >= b->n) return -1;
  return (long long)(t + off);
}

/* Follow the uoffset at position `at` (a table, vector or string); -1 if it leaves the buffer. */
static long long fb_deref(const fb *b, size_t at) {
  uint32_t off;
  if (!fb_u32(b, at, &off)) return -1;
  if ((uint64_t)at + off >= b->n) return -1;
  return (long long)(at + off);
}

/* A vector field of a table: *len elements starting at *elems (0 elements if absent). */
static int fb_vector(const fb *b, size_t t, unsigned slot, size_t elem_size, size_t *elems, uint32_t *len) {
  long long f = fb_field(b, t, slot);
  *len = 0;
  if (f < 0) return 0;
  if (f == 0) return 1;
  long long v = fb_deref(b, (size_t)f);
  if (v < 0 || !fb_u32(b, (size_t)v, len)) return 0;
  if ((uint64_t)*len * elem_size > b->n - (size_t)v - 4) return 0;
  *elems = (size_t)v + 4;
  return 1;
}

/* Element i of a vector of tables. */
static long long fb_elem(const fb *b, size_t elems, uint32_t i) { return fb_deref(b, elems + 4 * (size_t)i); }

static int fb_string(const fb *b, size_t t, unsigned slot, sl_span *s) {
  size_t at;
  uint32_t len;
  s->p = NULL;
  s->n = 0;
  if (!fb_vector(b, t, slot, 1, &at, &len)) return 0;
  if (len) {
    s->p = b->p + at;
    s->n = len;
  }
  return 1;
}

static scannlite_status corrupt(sl_err *e, const char *what) {
  return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt TFLite model: malformed flatbuffer (%s)", what);
}

/* The metadata flatbuffer's index file name; *found = 0 if it names none. */
static scannlite_status index_name(const fb *m, sl_span *name, int *found, sl_err *e) {
  *found = 0;
  if (m->n < 8 || memcmp(m->p + 4, "M001", 4) != 0)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a bundle: TFLITE_METADATA has no M001 identifier");
  long long root = fb_deref(m, 0);
  if (root < 0) return corrupt(e, "metadata root");
  size_t subs;
  uint32_t nsubs;
  if (!fb_vector(m, (size_t)root, 3, 4, &subs, &nsubs)) return corrupt(e, "subgraph_metadata");
  if (nsubs == 0) return SCANNLITE_OK;
  long long sub = fb_elem(m, subs, 0);
  if (sub < 0) return corrupt(e, "subgraph metadata 0");
  size_t outs;
  uint32_t nouts;
  if (!fb_vector(m, (size_t)sub, 3, 4, &outs, &nouts)) return corrupt(e, "output_tensor_metadata");
  for (uint32_t i = 0; i < nouts; i++) {
    long long tm = fb_elem(m, outs, i);
    if (tm < 0) return corrupt(e, "output tensor metadata");
    size_t files;
    uint32_t nfiles;
    if (!fb_vector(m, (size_t)tm, 6, 4, &files, &nfiles)) return corrupt(e, "associated_files");
    for (uint32_t j = 0; j < nfiles; j++) {
      long long af = fb_elem(m, files, j);
      if (af < 0) return corrupt(e, "associated file");
      long long tf = fb_field(m, (size_t)af, 2);
      if (tf < 0) return corrupt(e, "associated file type");
      int type = tf ? m->p[tf] : 0;
      sl_span s;
      if (!fb_string(m, (size_t)af, 0, &s)) return corrupt(e, "associated file name");
      if (type == SCANN_INDEX_FILE && s.p != NULL) {
        *name = s;
        *found = 1;
        return SCANNLITE_OK;
      }
    }
  }
  return SCANNLITE_OK;
}

/* The stored zip entry `name` of the archive appended to data. */
static scannlite_status zip_entry(const uint8_t *data, size_t size, sl_span name, sl_span *out, sl_err *e) {
  if (size < 22) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a bundle: the model carries no zip of associated files");
  size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0, eocd = 0;
  int found = 0;
  for (size_t i = size - 22 + 1; i-- > lowest;) {
    if (memcmp(data + i, "PK\5\6", 4) == 0 && i + 22 + sl_u16(data + i + 20) == size) {
      eocd = i;
      found = 1;
      break;
    }
  }
  if (!found) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a bundle: the model carries no zip of associated files");
  uint32_t entries = sl_u16(data + eocd + 10), cd_size = sl_u32(data + eocd + 12), cd_off = sl_u32(data + eocd + 16);
  if (cd_size > eocd) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: bad zip central directory");
  size_t cd = eocd - cd_size;
  if (cd_off > cd) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: bad zip central directory");
  size_t base = cd - cd_off; /* where the archive starts (it follows the model) */
  size_t at = cd;
  for (uint32_t i = 0; i < entries; i++) {
    if (eocd - at < 46 || memcmp(data + at, "PK\1\2", 4) != 0)
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: bad zip central directory entry %u", i);
    uint16_t method = sl_u16(data + at + 10), nlen = sl_u16(data + at + 28), xlen = sl_u16(data + at + 30),
             clen = sl_u16(data + at + 32);
    uint32_t csize = sl_u32(data + at + 20), usize = sl_u32(data + at + 24), lho = sl_u32(data + at + 42);
    if (eocd - at - 46 < (size_t)nlen + xlen + clen)
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: bad zip central directory entry %u", i);
    if (nlen == name.n && memcmp(data + at + 46, name.p, nlen) == 0) {
      if (method != 0)
        return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED,
                       "corrupt bundle: zip entry '%.*s' is compressed; the Task Library reads stored entries only",
                       (int)nlen, (const char *)name.p);
      if (csize != usize || csize == 0xFFFFFFFFu || lho == 0xFFFFFFFFu)
        return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: zip entry '%.*s' has inconsistent sizes", (int)nlen,
                       (const char *)name.p);
      size_t lh = base + lho;
      if (lh > cd || cd - lh < 30 || memcmp(data + lh, "PK\3\4", 4) != 0)
        return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: zip entry '%.*s' has no local header", (int)nlen,
                       (const char *)name.p);
      size_t start = lh + 30 + sl_u16(data + lh + 26) + sl_u16(data + lh + 28);
      if (start > cd || cd - start < usize)
        return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: zip entry '%.*s' runs past the end of the archive",
                       (int)nlen, (const char *)name.p);
      out->p = data + start;
      out->n = usize;
      return SCANNLITE_OK;
    }
    at += 46 + (size_t)nlen + xlen + clen;
  }
  return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt bundle: the model names index file '%.*s' but carries no zip entry with that name",
                 (int)name.n, (const char *)name.p);
}

scannlite_status sl_bundle_index(const uint8_t *data, size_t size, int *is_model, sl_span *ldb, sl_err *e) {
  /* A bare table ends with the SSTable magic (a bundle with its zip's end record): then its
   * first page, a data block, is not read to look for TFLite's file identifier. */
  static const uint8_t magic[8] = {0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb};
  *is_model = size >= 8 && !(size >= 48 && memcmp(data + size - 8, magic, 8) == 0) && memcmp(data + 4, "TFL3", 4) == 0;
  if (!*is_model) return SCANNLITE_OK;
  fb b = {data, size};
  long long root = fb_deref(&b, 0);
  if (root < 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a TFLite model: the root table offset points past the end of the file");
  size_t metas, bufs;
  uint32_t nmetas, nbufs;
  if (!fb_vector(&b, (size_t)root, 6, 4, &metas, &nmetas)) return corrupt(e, "metadata");
  if (!fb_vector(&b, (size_t)root, 4, 4, &bufs, &nbufs)) return corrupt(e, "buffers");
  for (uint32_t i = 0; i < nmetas; i++) {
    long long md = fb_elem(&b, metas, i);
    if (md < 0) return corrupt(e, "metadata entry");
    sl_span nm;
    if (!fb_string(&b, (size_t)md, 0, &nm)) return corrupt(e, "metadata name");
    if (nm.n != 15 || memcmp(nm.p, "TFLITE_METADATA", 15) != 0) continue;
    long long bf = fb_field(&b, (size_t)md, 1);
    uint32_t bi = 0;
    if (bf < 0 || (bf && !fb_u32(&b, (size_t)bf, &bi))) return corrupt(e, "metadata buffer");
    if (bi >= nbufs) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a TFLite model: metadata points at missing buffer %u", bi);
    long long buf = fb_elem(&b, bufs, bi);
    if (buf < 0) return corrupt(e, "buffer");
    size_t at;
    uint32_t len;
    if (!fb_vector(&b, (size_t)buf, 0, 1, &at, &len)) return corrupt(e, "buffer data");
    fb m = {data + at, len};
    if (len == 0) {
      /* Models over 2 GB: the buffer's offset (field 1) and size (field 2). */
      long long fo = fb_field(&b, (size_t)buf, 1), fs = fb_field(&b, (size_t)buf, 2);
      if (fo <= 0 || fs <= 0 || (size_t)fo + 8 > size || (size_t)fs + 8 > size) return corrupt(e, "metadata buffer is empty");
      uint64_t off = sl_u64(data + fo), sz = sl_u64(data + fs);
      if (off <= 1 || off > size || sz > size - off) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a TFLite model: buffer %u lies outside the file", bi);
      m.p = data + off;
      m.n = (size_t)sz;
    }
    sl_span name;
    int found;
    scannlite_status s = index_name(&m, &name, &found, e);
    if (s) return s;
    if (!found)
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a bundle: the model has no SCANN_INDEX_FILE associated file on its output tensors");
    return zip_entry(data, size, name, ldb, e);
  }
  return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not a bundle: the model has no TFLITE_METADATA");
}
