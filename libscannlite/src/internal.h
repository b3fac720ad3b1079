/* Internal declarations of libscannlite (not installed). See docs/native.md. */
#ifndef SCANNLITE_INTERNAL_H
#define SCANNLITE_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scannlite.h"

/* A status with its one-line message: every internal function that can fail takes one. */
typedef struct sl_err {
  char *buf;
  size_t size;
} sl_err;

scannlite_status sl_fail(sl_err *e, scannlite_status code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

typedef struct sl_span {
  const uint8_t *p;
  size_t n;
} sl_span;

/* Little-endian loads from possibly unaligned memory. */
static inline uint32_t sl_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t sl_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint64_t sl_u64(const uint8_t *p) { return (uint64_t)sl_u32(p) | (uint64_t)sl_u32(p + 4) << 32; }

/* Base-128 varint at *pos (< limit) of at most max_bits bits; returns 0 on a bad or truncated one. */
int sl_varint(const uint8_t *buf, size_t limit, size_t *pos, unsigned max_bits, uint64_t *out);

/* CRC32C (Castagnoli), slice-by-8 tables (built per index: no shared mutable state). */
typedef struct sl_crc_tables {
  uint32_t t[8][256];
} sl_crc_tables;
void sl_crc32c_init(sl_crc_tables *t);
uint32_t sl_crc32c(const sl_crc_tables *t, uint32_t crc, const uint8_t *p, size_t n);

/* Raw Snappy: the declared length, then the decoder into exactly that many bytes. */
int sl_snappy_length(const uint8_t *in, size_t n, size_t *out_len);
int sl_snappy_decode(const uint8_t *in, size_t n, uint8_t *out, size_t out_len);

/* One data block of the table. */
typedef struct sl_block {
  uint64_t offset, size;    /* the stored block (without its 5-byte trailer) in the table */
  const uint8_t *contents;  /* its entries: in the caller's buffer, or `owned` (Snappy) */
  size_t length;
  uint8_t *owned;
  uint8_t compressed;
  /* Nothing of the block is read at open: on first use its trailer (compression type, and
   * its CRC when checked) is read. 0: untouched, 1: being read by one thread, 2: contents
   * known, 3: CRC checked too. Fields above `state` are written once, before 2 is stored. */
  atomic_uchar state;
} sl_block;

typedef struct sl_table {
  const uint8_t *data; /* the .ldb bytes */
  size_t size;
  sl_span index;       /* index block contents */
  uint8_t *index_owned;
  sl_block *blocks;    /* in index order: offsets strictly ascending */
  size_t nblocks;
  sl_crc_tables crc;
} sl_table;

scannlite_status sl_table_open(sl_table *t, const uint8_t *data, size_t size, sl_err *e);
void sl_table_close(sl_table *t);
/* The data block that would hold `key`, from the index block alone (reads no data block):
 * *found = 0 if the key sorts past every block. */
scannlite_status sl_table_find_block(const sl_table *t, const uint8_t *key, size_t key_len, int *found, size_t *block,
                                     sl_err *e);
/* Find `key`: *found = 0 if absent; else the value and the block that holds it. The block's
 * checksum is checked (once) first if `check`; otherwise the caller checks it before reading the value. */
scannlite_status sl_table_get(const sl_table *t, const uint8_t *key, size_t key_len, int check, int *found,
                              sl_span *value, size_t *block, sl_err *e);
/* Read block `block`'s trailer on first use (and check its CRC if `check`): thread-safe. */
scannlite_status sl_table_block(const sl_table *t, size_t block, int check, sl_err *e);
scannlite_status sl_table_check_block(const sl_table *t, size_t block, sl_err *e);

/* The index config, as the searcher reads it. */
typedef struct sl_config {
  int query_distance;    /* ScannOnDeviceConfig.query_distance (2 = UNSPECIFIED) */
  int has_partitioner, has_indexer, has_ah;
  uint32_t num_leaves, centroid_dim;
  float *centroids;      /* num_leaves x centroid_dim, row-major */
  float search_fraction;
  int partitioner_distance;
  uint32_t num_subspaces, num_codes;
  uint32_t *sub_dim, *sub_start; /* per subspace: width, first query dimension */
  uint32_t ah_dims;      /* the sum of the widths */
  float *codebooks;      /* subspace s: num_codes x sub_dim[s], row-major, at codebook_at[s] */
  size_t *codebook_at;
  int ah_distance;
  int lookup_type;       /* 0 FLOAT, 1 INT16, 2 INT8, 3 INT8_LUT16 */
  int embedding_type;    /* 0 UNSPECIFIED, 1 FLOAT, 2 UINT8 */
  uint32_t embedding_dim;
  uint32_t *offsets;
  size_t num_offsets;
} sl_config;

scannlite_status sl_config_parse(sl_config *c, const uint8_t *p, size_t n, sl_err *e);
void sl_config_free(sl_config *c);

/* The packed index of a bundle: found = 0 if the data is not a TFLite model. */
scannlite_status sl_bundle_index(const uint8_t *data, size_t size, int *is_model, sl_span *ldb, sl_err *e);

/* A leaf: opening only names the block the index block says holds E_p; the entry itself is
 * located (that block's trailer, restart array and entry read) on first use. */
typedef struct sl_leaf {
  const uint8_t *data; /* E_p: codes or float vectors */
  size_t length;
  size_t block;        /* set at open, from the index block */
  uint64_t items;      /* rows in the leaf */
  uint64_t first_id;   /* global_partition_offsets[p] */
  /* 0: not located, 1: being located by one thread, 2: located. data, length and items are
   * written once, before 2 is stored (release); a failure stores 0 again. */
  atomic_uchar state;
} sl_leaf;

struct scannlite_index {
  sl_table table;
  sl_config config;
  scannlite_info info;
  sl_leaf *leaves;
  sl_span user_info;
  size_t user_info_block;
  int has_user_info;
  float *leaf_norms;   /* squared norms of the centroids, Eigen's order */
  float *code_norms;   /* squared norms of the codebook entries, Eigen's order, S x K */
  float *books_t;      /* the codebooks transposed: subspace s is sub_dim[s] x K at codebook_at[s] */
  size_t row;          /* bytes per item */
  uint64_t raw_items;  /* the items the leaves' blocks could hold uncompressed (bytes / row, a bound) */
  _Atomic uint64_t size; /* items in all leaves, once counted (counted = 1, release) */
  atomic_uchar counted;
  uint32_t chunks_per_block;
};

/* Locate leaf p's entry on its first use (thread-safe); a failure repeats on every use. */
scannlite_status sl_leaf_locate(const scannlite_index *ix, uint32_t p, sl_err *e);
/* The items in all leaves (locating every leaf the first time). */
scannlite_status sl_count_items(const scannlite_index *ix, uint64_t *size, sl_err *e);

/* Eigen-order arithmetic (search.c). */
void sl_rowwise_squared_norms(const float *m, size_t rows, size_t cols, float *out);
float sl_redux_squared_norm(const float *x, size_t n);

#endif
