/* Opening an index: the bundle or bare table, its config, the block of each E_<leaf> (from the
 * index block: the leaves are located on first use), USER_INFO, and the norms the searcher
 * precomputes. See docs/native.md, Memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static scannlite_status open_index(scannlite_index *ix, const uint8_t *data, size_t size, sl_err *e) {
  sl_span ldb = {data, size};
  int is_model;
  scannlite_status s = sl_bundle_index(data, size, &is_model, &ldb, e);
  if (s) return s;
  if ((s = sl_table_open(&ix->table, ldb.p, ldb.n, e))) return s;
  int found;
  sl_span v;
  size_t block;
  if ((s = sl_table_get(&ix->table, (const uint8_t *)"INDEX_CONFIG", 12, 1, &found, &v, &block, e))) return s;
  if (!found) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not an on-device ScaNN index: the table has no INDEX_CONFIG key");
  sl_config *c = &ix->config;
  if ((s = sl_config_parse(c, v.p, v.n, e))) return s;

  /* SanityCheckIndexConfig and GetDistanceMeasure (cc/task/processor/embedding_searcher.cc). */
  if (c->embedding_type == 0)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "Invalid IndexConfig: embedding_type must not be left UNSPECIFIED");
  if (c->embedding_type == 1 && c->has_indexer)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT,
                   "Invalid IndexConfig: embedding_type is set to FLOAT but ScaNN config specifies a product quantization codebook");
  if (c->embedding_type == 2 && !c->has_indexer)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT,
                   "Invalid IndexConfig: embedding_type is set to UINT8 but ScaNN config doesn't specify a product quantization codebook");
  int measure = c->query_distance;
  if (measure == 2) {
    if (c->has_ah) measure = c->ah_distance;
    else if (c->has_partitioner) measure = c->partitioner_distance;
    else return sl_fail(e, SCANNLITE_ERROR_FORMAT, "ScaNN config does not provide mandatory DistanceMeasure");
    if (measure == 2)
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "UNSPECIFIED is not a valid value for ScaNN config DistanceMeasure");
    if (c->has_partitioner && c->partitioner_distance != measure)
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "DistanceMeasure %s is different from DistanceMeasure %s found in partitioner config",
                     measure ? "DOT_PRODUCT" : "SQUARED_L2_DISTANCE", c->partitioner_distance ? "DOT_PRODUCT" : "SQUARED_L2_DISTANCE");
  }
  /* The partitioner and the quantizer score with their own measures, as on the device (the
   * top-level measure only decides float search); the quantizer knows only these two. */
  if (c->has_ah && c->ah_distance == 2)
    return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "asymmetric hashing's query_distance is UNSPECIFIED (the device's search fails)");
  ix->info.distance = measure == 1 ? SCANNLITE_DOT_PRODUCT : SCANNLITE_SQUARED_L2;
  if (c->embedding_dim == 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "invalid IndexConfig: embedding_dim is 0 or unset");
  if (c->embedding_dim > (1u << 28))
    return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "invalid IndexConfig: embedding_dim %u is too large", c->embedding_dim);
  if (c->has_indexer) {
    if (!c->has_ah) return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "the indexer holds no asymmetric_hashing");
    if (c->lookup_type == 3)
      return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "lookup_type INT8_LUT16 is not implemented on device");
    if (c->embedding_dim != c->num_subspaces)
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "embedding_dim is %u but asymmetric hashing has %u subspaces (one code byte each)",
                     c->embedding_dim, c->num_subspaces);
    ix->info.dimension = c->ah_dims;
    ix->info.lookup = (scannlite_lookup)c->lookup_type;
    ix->info.num_subspaces = c->num_subspaces;
    ix->chunks_per_block = (c->lookup_type == 2 && c->num_codes == 16) ? 256 : 32;
  } else {
    ix->info.dimension = c->embedding_dim;
    ix->info.lookup = SCANNLITE_LOOKUP_NONE;
  }
  uint32_t L = 1;
  ix->info.leaves_to_search = 1;
  if (c->has_partitioner) {
    L = c->num_leaves;
    float product = (float)L * c->search_fraction;
    float up = ceilf(product);
    uint32_t n = isnan(up) || up < 1.0f ? 0 : (up >= (float)L ? L : (uint32_t)up);
    ix->info.leaves_to_search = n;
    if (L > 0 && c->centroid_dim != ix->info.dimension)
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "partitioner centroids have %u dimensions but queries have %u",
                     c->centroid_dim, ix->info.dimension);
  }
  ix->info.num_leaves = L;
  if (c->num_offsets < L)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "global_partition_offsets has %zu entries for %u partitions", c->num_offsets, L);

  /* The leaves: only the block the index block names for each E_<leaf>, which reads no data
   * block; each entry is located on first use (sl_leaf_locate), its block's CRC checked then. */
  if (L) {
    ix->leaves = calloc(L, sizeof *ix->leaves);
    if (!ix->leaves) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for %u leaves", L);
  }
  ix->row = c->has_indexer ? c->embedding_dim : (size_t)c->embedding_dim * 4;
  size_t last_block = SIZE_MAX;
  for (uint32_t p = 0; p < L; p++) {
    char key[32];
    int kl = snprintf(key, sizeof key, "E_%u", p);
    if ((s = sl_table_find_block(&ix->table, (const uint8_t *)key, (size_t)kl, &found, &block, e))) return s;
    if (!found) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt on-device ScaNN index: missing key E_%u", p);
    ix->leaves[p].block = block;
    ix->leaves[p].first_id = c->offsets[p];
    if (block != last_block) ix->raw_items += ix->table.blocks[block].size / ix->row;
    last_block = block;
  }
  if ((s = sl_table_get(&ix->table, (const uint8_t *)"USER_INFO", 9, 1, &found, &ix->user_info, &ix->user_info_block, e)))
    return s;
  ix->has_user_info = found;
  if (!found) ix->user_info.n = 0;

  if (c->has_partitioner && L) {
    ix->leaf_norms = malloc((size_t)L * sizeof(float));
    if (!ix->leaf_norms) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for %u leaf norms", L);
    sl_rowwise_squared_norms(c->centroids, L, c->centroid_dim, ix->leaf_norms);
  }
  if (c->has_ah) {
    ix->code_norms = malloc((size_t)c->num_subspaces * c->num_codes * sizeof(float));
    if (!ix->code_norms) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for codebook norms");
    for (uint32_t s2 = 0; s2 < c->num_subspaces; s2++)
      sl_rowwise_squared_norms(c->codebooks + c->codebook_at[s2], c->num_codes, c->sub_dim[s2],
                               ix->code_norms + (size_t)s2 * c->num_codes);
    /* Transposed, so the lookup table is computed for all codes side by side (search.c). */
    ix->books_t = malloc(((size_t)c->ah_dims * c->num_codes + 1) * sizeof(float));
    if (!ix->books_t) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for the transposed codebooks");
    for (uint32_t s2 = 0; s2 < c->num_subspaces; s2++) {
      const float *book = c->codebooks + c->codebook_at[s2];
      float *bt = ix->books_t + c->codebook_at[s2];
      size_t d = c->sub_dim[s2], K = c->num_codes;
      for (size_t k = 0; k < K; k++)
        for (size_t j = 0; j < d; j++) bt[j * K + k] = book[k * d + j];
    }
  }
  return SCANNLITE_OK;
}

scannlite_status sl_leaf_locate(const scannlite_index *ix, uint32_t p, sl_err *e) {
  sl_leaf *leaf = &((scannlite_index *)ix)->leaves[p];
  for (;;) {
    unsigned char st = atomic_load_explicit(&leaf->state, memory_order_acquire);
    if (st == 2) return SCANNLITE_OK;
    if (st == 0 && atomic_compare_exchange_weak_explicit(&leaf->state, &st, 1, memory_order_acquire,
                                                          memory_order_relaxed))
      break;
  }
  char key[32];
  int kl = snprintf(key, sizeof key, "E_%u", p);
  int found;
  sl_span v;
  size_t block;
  /* The block's trailer is read here; its CRC when a search first reads the codes. */
  scannlite_status s = sl_table_get(&ix->table, (const uint8_t *)key, (size_t)kl, 0, &found, &v, &block, e);
  if (!s && !found) s = sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt on-device ScaNN index: missing key E_%u", p);
  if (!s && block != leaf->block)
    s = sl_fail(e, SCANNLITE_ERROR_FORMAT, "corrupt on-device ScaNN index: E_%u is not in the block the index names", p);
  if (s) {
    atomic_store_explicit(&leaf->state, 0, memory_order_release);
    return s;
  }
  leaf->data = v.p;
  leaf->length = v.n;
  leaf->items = v.n / ix->row;
  atomic_store_explicit(&leaf->state, 2, memory_order_release);
  return SCANNLITE_OK;
}

scannlite_status sl_count_items(const scannlite_index *ix, uint64_t *size, sl_err *e) {
  scannlite_index *mix = (scannlite_index *)ix;
  if (atomic_load_explicit(&mix->counted, memory_order_acquire)) {
    *size = atomic_load_explicit(&mix->size, memory_order_relaxed);
    return SCANNLITE_OK;
  }
  uint64_t n = 0;
  for (uint32_t p = 0; p < ix->info.num_leaves; p++) {
    scannlite_status s = sl_leaf_locate(ix, p, e);
    if (s) return s;
    n += ix->leaves[p].items;
  }
  /* Threads counting at once store the same number. */
  atomic_store_explicit(&mix->size, n, memory_order_relaxed);
  atomic_store_explicit(&mix->counted, 1, memory_order_release);
  *size = n;
  return SCANNLITE_OK;
}

scannlite_status scannlite_open(const void *data, size_t size, scannlite_index **out, char *err, size_t err_size) {
  sl_err e = {err, err_size};
  if (out == NULL) return sl_fail(&e, SCANNLITE_ERROR_ARGUMENT, "a NULL output pointer");
  *out = NULL;
  if (data == NULL && size > 0) return sl_fail(&e, SCANNLITE_ERROR_ARGUMENT, "a NULL buffer");
  const uint16_t one = 1;
  if (*(const uint8_t *)&one != 1)
    return sl_fail(&e, SCANNLITE_ERROR_UNSUPPORTED, "libscannlite needs a little-endian host");
  scannlite_index *ix = calloc(1, sizeof *ix);
  if (ix == NULL) return sl_fail(&e, SCANNLITE_ERROR_MEMORY, "out of memory");
  static const uint8_t empty[1] = {0};
  scannlite_status s = open_index(ix, data ? (const uint8_t *)data : empty, size, &e);
  if (s) {
    scannlite_close(ix);
    return s;
  }
  *out = ix;
  return SCANNLITE_OK;
}

void scannlite_close(scannlite_index *ix) {
  if (ix == NULL) return;
  sl_table_close(&ix->table);
  sl_config_free(&ix->config);
  free(ix->leaves);
  free(ix->leaf_norms);
  free(ix->code_norms);
  free(ix->books_t);
  free(ix);
}

scannlite_status scannlite_peek_info(const scannlite_index *index, scannlite_info *out) {
  if (index == NULL || out == NULL) return SCANNLITE_ERROR_ARGUMENT;
  *out = index->info;
  out->size = atomic_load_explicit(&((scannlite_index *)index)->counted, memory_order_acquire)
                  ? atomic_load_explicit(&((scannlite_index *)index)->size, memory_order_relaxed)
                  : 0;
  return SCANNLITE_OK;
}

scannlite_status scannlite_count_items(const scannlite_index *index, uint64_t *size, char *err, size_t err_size) {
  sl_err e = {err, err_size};
  if (index == NULL || size == NULL) return sl_fail(&e, SCANNLITE_ERROR_ARGUMENT, "a NULL index or size");
  return sl_count_items(index, size, &e);
}

scannlite_status scannlite_get_info(const scannlite_index *index, scannlite_info *out) {
  if (index == NULL || out == NULL) return SCANNLITE_ERROR_ARGUMENT;
  uint64_t n;
  scannlite_status s = sl_count_items(index, &n, NULL);
  if (s) return s;
  *out = index->info;
  out->size = n;
  return SCANNLITE_OK;
}

scannlite_status scannlite_user_info(const scannlite_index *index, const uint8_t **data, size_t *size) {
  if (index == NULL || data == NULL || size == NULL) return SCANNLITE_ERROR_ARGUMENT;
  if (index->has_user_info) {
    scannlite_status s = sl_table_check_block(&index->table, index->user_info_block, NULL);
    if (s) return s;
  }
  *data = index->user_info.p;
  *size = index->user_info.n;
  return SCANNLITE_OK;
}

scannlite_status scannlite_metadata(const scannlite_index *index, uint64_t id, const uint8_t **data, size_t *size) {
  if (index == NULL || data == NULL || size == NULL) return SCANNLITE_ERROR_ARGUMENT;
  char key[32];
  int kl = snprintf(key, sizeof key, "M_%llu", (unsigned long long)id);
  int found;
  sl_span v;
  size_t block;
  scannlite_status s = sl_table_get(&index->table, (const uint8_t *)key, (size_t)kl, 1, &found, &v, &block, NULL);
  if (s) return s;
  if (!found) return SCANNLITE_ERROR_NOT_FOUND;
  *data = v.p;
  *size = v.n;
  return SCANNLITE_OK;
}

const char *scannlite_version(void) { return SCANNLITE_VERSION; }
