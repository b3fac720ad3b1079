/* IndexConfig / ScannOnDeviceConfig: hand-written proto2 wire parsing, bounds-checked.
 * Field numbers: tensorflow_lite_support/scann_ondevice/proto/index_config.proto and
 * cc/core/serialized_searcher.proto (the same as store/ondevice/protos.py). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char BAD[] = "invalid IndexConfig proto";

typedef struct field {
  uint32_t number;
  uint32_t wire;
  uint64_t varint; /* wire 0 */
  uint32_t fixed32; /* wire 5 */
  sl_span bytes;    /* wire 2 */
} field;

/* Next field of a message at *pos; returns 1 if one was read, 0 at the end, -1 on error. */
static int next_field(sl_span m, size_t *pos, field *f) {
  if (*pos >= m.n) return 0;
  uint64_t tag;
  if (!sl_varint(m.p, m.n, pos, 32, &tag)) return -1;
  f->number = (uint32_t)(tag >> 3);
  f->wire = (uint32_t)(tag & 7);
  if (f->number == 0) return -1;
  switch (f->wire) {
    case 0:
      return sl_varint(m.p, m.n, pos, 64, &f->varint) ? 1 : -1;
    case 1:
      if (m.n - *pos < 8) return -1;
      *pos += 8;
      return 1;
    case 2: {
      uint64_t len;
      if (!sl_varint(m.p, m.n, pos, 32, &len) || len > m.n - *pos) return -1;
      f->bytes.p = m.p + *pos;
      f->bytes.n = (size_t)len;
      *pos += (size_t)len;
      return 1;
    }
    case 5:
      if (m.n - *pos < 4) return -1;
      f->fixed32 = sl_u32(m.p + *pos);
      *pos += 4;
      return 1;
    default:
      return -1; /* groups: never in these protos */
  }
}

static float as_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* The repeated float field 1 ("dimension") of a Leaf or CodebookEntry: count, and copy if out. */
static int floats_of(sl_span m, float *out, size_t *count) {
  size_t pos = 0, n = 0;
  field f;
  int r;
  while ((r = next_field(m, &pos, &f)) > 0) {
    if (f.number != 1) continue;
    if (f.wire == 2) {
      if (f.bytes.n % 4) return 0;
      if (out)
        for (size_t i = 0; i < f.bytes.n / 4; i++) out[n + i] = as_float(sl_u32(f.bytes.p + 4 * i));
      n += f.bytes.n / 4;
    } else if (f.wire == 5) {
      if (out) out[n] = as_float(f.fixed32);
      n++;
    } else {
      return 0;
    }
  }
  if (r < 0) return 0;
  *count = n;
  return 1;
}

static int enum_value(const field *f, int max, int *out) {
  if (f->wire != 0) return 0;
  if (f->varint <= (uint64_t)max) *out = (int)f->varint; /* an unknown value leaves the default (proto2) */
  return 1;
}

static scannlite_status parse_partitioner(sl_config *c, sl_span m, sl_err *e) {
  size_t pos = 0, leaves = 0, dim = 0;
  field f;
  int r;
  c->has_partitioner = 1;
  c->search_fraction = 1.0f;
  c->partitioner_distance = 0;
  for (int pass = 0; pass < 2; pass++) {
    pos = 0;
    size_t i = 0;
    while ((r = next_field(m, &pos, &f)) > 0) {
      if (f.number == 1) {
        size_t n;
        if (f.wire != 2 || !floats_of(f.bytes, pass && c->centroids ? c->centroids + i * dim : NULL, &n))
          return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad partitioner leaf %zu", BAD, i);
        if (pass == 0) {
          if (i == 0) dim = n;
          else if (n != dim)
            return sl_fail(e, SCANNLITE_ERROR_FORMAT,
                           "invalid IndexConfig: partitioner leaf %zu has %zu dimensions but leaf 0 has %zu", i, n, dim);
        }
        i++;
      } else if (pass == 0 && f.number == 2) {
        if (f.wire != 5) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad search_fraction", BAD);
        c->search_fraction = as_float(f.fixed32);
      } else if (pass == 0 && f.number == 3) {
        if (!enum_value(&f, 2, &c->partitioner_distance))
          return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad partitioner query_distance", BAD);
      }
    }
    if (r < 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: malformed PartitionerProto", BAD);
    if (pass == 0) {
      leaves = i;
      if (leaves > UINT32_MAX || dim > UINT32_MAX)
        return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: too many leaves", BAD);
      c->num_leaves = (uint32_t)leaves;
      c->centroid_dim = (uint32_t)dim;
      if (leaves > 0 && dim > 0) {
        c->centroids = malloc(leaves * dim * sizeof(float));
        if (!c->centroids) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for %zu centroids", leaves);
      }
    }
  }
  return SCANNLITE_OK;
}

static scannlite_status parse_ah(sl_config *c, sl_span m, sl_err *e) {
  field f, g;
  int r, q;
  c->has_ah = 1;
  c->ah_distance = 0;
  c->lookup_type = 0;
  size_t subspaces = 0, total = 0;
  /* Pass 0: shapes; pass 1: values. */
  for (int pass = 0; pass < 2; pass++) {
    size_t pos = 0, s = 0, at = 0;
    while ((r = next_field(m, &pos, &f)) > 0) {
      if (f.number == 1) {
        if (f.wire != 2) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad AH subspace", BAD);
        size_t p2 = 0, k = 0, width = 0;
        while ((q = next_field(f.bytes, &p2, &g)) > 0) {
          if (g.number != 1) continue;
          size_t n;
          float *dest = pass ? c->codebooks + at + k * c->sub_dim[s] : NULL;
          if (g.wire != 2 || !floats_of(g.bytes, dest, &n))
            return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad codebook entry %zu of subspace %zu", BAD, k, s);
          if (k == 0) width = n;
          else if (n != width)
            return sl_fail(e, SCANNLITE_ERROR_FORMAT,
                           "invalid IndexConfig: codebook of subspace %zu entry %zu has %zu dimensions but entry 0 has %zu",
                           s, k, n, width);
          k++;
        }
        if (q < 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: malformed codebook of subspace %zu", BAD, s);
        if (pass == 0) {
          if (s == 0) {
            if (k == 0)
              return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED,
                             "invalid IndexConfig: the codebook of subspace 0 has no entries");
            if (k > UINT32_MAX) return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: too many codes", BAD);
            c->num_codes = (uint32_t)k;
          } else if (k != c->num_codes) {
            return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED,
                           "invalid IndexConfig: subspace %zu has %zu codebook entries but subspace 0 has %u", s, k,
                           c->num_codes);
          }
          if (width == 0)
            return sl_fail(e, SCANNLITE_ERROR_FORMAT, "invalid IndexConfig: subspace %zu has 0 dimensions", s);
          total += width;
          if (total > UINT32_MAX) return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: too many dimensions", BAD);
        } else {
          at += (size_t)c->num_codes * c->sub_dim[s];
        }
        s++;
      } else if (pass == 0 && f.number == 2) {
        if (!enum_value(&f, 2, &c->ah_distance))
          return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad AH query_distance", BAD);
      } else if (pass == 0 && f.number == 3) {
        if (!enum_value(&f, 3, &c->lookup_type)) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad lookup_type", BAD);
      }
    }
    if (r < 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: malformed AsymmetricHashingProto", BAD);
    if (pass == 0) {
      subspaces = s;
      if (subspaces == 0)
        return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "invalid IndexConfig: asymmetric hashing has no subspaces");
      if (subspaces > UINT32_MAX) return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: too many subspaces", BAD);
      c->num_subspaces = (uint32_t)subspaces;
      c->ah_dims = (uint32_t)total;
      c->sub_dim = calloc(subspaces, sizeof *c->sub_dim);
      c->sub_start = calloc(subspaces, sizeof *c->sub_start);
      c->codebook_at = calloc(subspaces, sizeof *c->codebook_at);
      c->codebooks = malloc(total * (size_t)c->num_codes * sizeof(float));
      if (!c->sub_dim || !c->sub_start || !c->codebook_at || !c->codebooks)
        return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for %zu codebooks", subspaces);
      /* Widths: re-read entry 0 of every subspace. */
      size_t p = 0, i = 0, start = 0, off = 0;
      while ((r = next_field(m, &p, &f)) > 0) {
        if (f.number != 1) continue;
        size_t p2 = 0, n = 0;
        while ((q = next_field(f.bytes, &p2, &g)) > 0)
          if (g.number == 1) {
            floats_of(g.bytes, NULL, &n);
            break;
          }
        c->sub_dim[i] = (uint32_t)n;
        c->sub_start[i] = (uint32_t)start;
        c->codebook_at[i] = off;
        start += n;
        off += n * c->num_codes;
        i++;
      }
    }
  }
  return SCANNLITE_OK;
}

static scannlite_status parse_scann(sl_config *c, sl_span m, sl_err *e) {
  size_t pos = 0;
  field f;
  int r, seen_part = 0, seen_indexer = 0;
  c->query_distance = 2;
  while ((r = next_field(m, &pos, &f)) > 0) {
    scannlite_status s;
    if (f.number == 1) {
      if (!enum_value(&f, 2, &c->query_distance)) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad query_distance", BAD);
    } else if (f.number == 2) {
      if (f.wire != 2 || seen_indexer++)
        return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: the indexer is malformed or given twice", BAD);
      c->has_indexer = 1;
      size_t p2 = 0;
      field g;
      int q, seen_ah = 0;
      while ((q = next_field(f.bytes, &p2, &g)) > 0) {
        if (g.number != 1) continue;
        if (g.wire != 2 || seen_ah++)
          return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: asymmetric_hashing is malformed or given twice", BAD);
        if ((s = parse_ah(c, g.bytes, e))) return s;
      }
      if (q < 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: malformed IndexerProto", BAD);
    } else if (f.number == 3) {
      if (f.wire != 2 || seen_part++)
        return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: the partitioner is malformed or given twice", BAD);
      if ((s = parse_partitioner(c, f.bytes, e))) return s;
    }
  }
  if (r < 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: malformed ScannOnDeviceConfig", BAD);
  return SCANNLITE_OK;
}

scannlite_status sl_config_parse(sl_config *c, const uint8_t *p, size_t n, sl_err *e) {
  memset(c, 0, sizeof *c);
  c->query_distance = 2;
  sl_span m = {p, n};
  size_t pos = 0, count = 0;
  field f;
  int r, seen_scann = 0;
  /* Offsets may come packed or not: count them first. */
  while ((r = next_field(m, &pos, &f)) > 0) {
    if (f.number == 4) {
      if (f.wire == 0) {
        count++;
      } else if (f.wire == 2) {
        size_t q = 0;
        uint64_t v;
        while (q < f.bytes.n) {
          if (!sl_varint(f.bytes.p, f.bytes.n, &q, 64, &v))
            return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad global_partition_offsets", BAD);
          count++;
        }
      } else {
        return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad global_partition_offsets", BAD);
      }
    }
  }
  if (r < 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: malformed IndexConfig", BAD);
  if (count) {
    c->offsets = malloc(count * sizeof *c->offsets);
    if (!c->offsets) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for %zu offsets", count);
  }
  pos = 0;
  while ((r = next_field(m, &pos, &f)) > 0) {
    scannlite_status s;
    switch (f.number) {
      case 1:
        if (f.wire != 2 || seen_scann++)
          return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: scann_config is malformed or given twice", BAD);
        if ((s = parse_scann(c, f.bytes, e))) return s;
        break;
      case 2:
        if (!enum_value(&f, 2, &c->embedding_type)) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad embedding_type", BAD);
        break;
      case 3:
        if (f.wire != 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad embedding_dim", BAD);
        c->embedding_dim = (uint32_t)f.varint; /* uint32: the low 32 bits, as protobuf does */
        break;
      case 4:
        if (f.wire == 0) {
          c->offsets[c->num_offsets++] = (uint32_t)f.varint;
        } else {
          size_t q = 0;
          uint64_t v;
          while (q < f.bytes.n && sl_varint(f.bytes.p, f.bytes.n, &q, 64, &v)) c->offsets[c->num_offsets++] = (uint32_t)v;
        }
        break;
      default:
        break;
    }
  }
  return SCANNLITE_OK;
}

void sl_config_free(sl_config *c) {
  free(c->centroids);
  free(c->sub_dim);
  free(c->sub_start);
  free(c->codebooks);
  free(c->codebook_at);
  free(c->offsets);
  memset(c, 0, sizeof *c);
}
