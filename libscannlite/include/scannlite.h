/*
 * libscannlite: search TFLite Searcher bundles and on-device ScaNN indexes exactly as the
 * TFLite Task Library (tflite-support 0.4.4) does, in C11 with libc and libm only.
 *
 * A bundle is a .tflite embedder whose metadata packs an on-device ScaNN index (a LevelDB
 * table, ".ldb"); a bare .ldb is accepted too. The library never reads files itself: the
 * caller hands it memory (usually a read-only mmap of the file) that must stay valid and
 * unchanged until scannlite_close. Opening reads the table's footer, block index and the
 * config's block, no other data block: not the codes, vectors or metadata (zero copy); see
 * docs/native.md for what it allocates and reads.
 *
 * Results are bit-identical to the Task Library's: the same leaves, lookup-table arithmetic
 * (FLOAT, INT16, INT8), sums, distances, tie order and metadata bytes.
 *
 * Thread safety: an opened index is immutable; any number of threads may search it at once.
 * Every function that can fail returns a scannlite_status and, when err is not NULL, writes a
 * one-line NUL-terminated message into err (truncated to err_size). It never aborts.
 *
 * Byte order: the format is little-endian and so is every target this library supports
 * (x86-64, ARM64, wasm32); scannlite_open refuses to run on a big-endian host.
 */
#ifndef SCANNLITE_H
#define SCANNLITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SCANNLITE_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define SCANNLITE_API __attribute__((visibility("default")))
#else
#define SCANNLITE_API
#endif

#define SCANNLITE_VERSION "0.1.0"

typedef enum scannlite_status {
  SCANNLITE_OK = 0,
  SCANNLITE_ERROR_ARGUMENT = 1,    /* NULL pointer, k <= 0, a wrong query dimension, ... */
  SCANNLITE_ERROR_FORMAT = 2,      /* not a bundle or index, truncated, bad CRC, corrupt */
  SCANNLITE_ERROR_UNSUPPORTED = 3, /* a valid index this library cannot search (e.g. INT8_LUT16) */
  SCANNLITE_ERROR_MEMORY = 4,      /* an allocation failed */
  SCANNLITE_ERROR_NOT_FOUND = 5    /* no such item or key */
} scannlite_status;

typedef enum scannlite_distance {
  SCANNLITE_SQUARED_L2 = 0,
  SCANNLITE_DOT_PRODUCT = 1
} scannlite_distance;

typedef enum scannlite_lookup {
  SCANNLITE_LOOKUP_FLOAT = 0,
  SCANNLITE_LOOKUP_INT16 = 1,
  SCANNLITE_LOOKUP_INT8 = 2,
  SCANNLITE_LOOKUP_NONE = -1 /* a float (linear) index: no asymmetric hashing */
} scannlite_lookup;

typedef struct scannlite_index scannlite_index;

/* What an opened index holds. */
typedef struct scannlite_info {
  uint32_t dimension;         /* the query's length in floats */
  uint64_t size;              /* items in the index */
  uint32_t num_leaves;        /* partitions (1 for an index without a partitioner) */
  uint32_t leaves_to_search;  /* what the index's search_fraction gives, as the device computes it */
  scannlite_distance distance;
  scannlite_lookup lookup;
  uint32_t num_subspaces;     /* bytes per item for an asymmetric-hashing index, else 0 */
} scannlite_info;

/* One result: the item's ordinal (global datapoint id j, its metadata key M_<j>), its
 * distance as the Task Library reports it (DOT_PRODUCT: the negative dot product), and a view
 * of its metadata bytes inside the caller's buffer (or inside the index's own decompressed
 * copy of a Snappy block), valid until scannlite_close. */
typedef struct scannlite_result {
  uint64_t id;
  float distance;
  const uint8_t *metadata;
  size_t metadata_size;
} scannlite_result;

/* Open a bundle (.tflite with a SCANN_INDEX_FILE in its metadata) or a bare .ldb. */
SCANNLITE_API scannlite_status scannlite_open(const void *data, size_t size, scannlite_index **out,
                                              char *err, size_t err_size);
SCANNLITE_API void scannlite_close(scannlite_index *index);

/* The index's description. Opening reads no data block, so the item count (info.size) is not
 * known until every leaf is located: the first call locates them (each E_<leaf> block's
 * trailer, restart array and first entry: about two pages a leaf), later calls read nothing.
 * It fails (FORMAT) where a leaf's block is damaged, as every search visiting that leaf will. */
SCANNLITE_API scannlite_status scannlite_get_info(const scannlite_index *index, scannlite_info *out);
/* scannlite_get_info without counting: reads nothing; info.size is 0 until the items have
 * been counted (by scannlite_get_info, scannlite_count_items or a search with a huge k). */
SCANNLITE_API scannlite_status scannlite_peek_info(const scannlite_index *index, scannlite_info *out);
/* The items in the index (info.size), counting them as scannlite_get_info does, with a message. */
SCANNLITE_API scannlite_status scannlite_count_items(const scannlite_index *index, uint64_t *size, char *err,
                                                     size_t err_size);
/* USER_INFO bytes ("" when the key is absent), a view valid until scannlite_close. */
SCANNLITE_API scannlite_status scannlite_user_info(const scannlite_index *index, const uint8_t **data,
                                                   size_t *size);

/* Search for the k nearest items, as TextSearcher/ImageSearcher with max_results = k would:
 * results[0..*count) in ascending distance, *count <= min(k, info.size) (results needs room for that
 * many). The query is used as given (apply
 * scannlite_l2_normalize first where the app would set l2_normalize). leaves_to_search = 0
 * uses the index's own; another value overrides it (clamped to num_leaves).
 * Each call allocates its scratch space once (scannlite_scratch_size bytes) and frees it. */
SCANNLITE_API scannlite_status scannlite_search(const scannlite_index *index, const float *query,
                                                size_t dimension, int32_t k, uint32_t leaves_to_search,
                                                scannlite_result *results, int32_t *count,
                                                char *err, size_t err_size);

/* The same search restricted to items whose ordinal is in allow[0..allow_count) (any order,
 * duplicates ignored): the k nearest allowed items among the searched leaves. With
 * leaves_to_search = UINT32_MAX every leaf is searched (exact over the allowed items'
 * codes). Not a Task Library feature; checked against brute force. Its scratch is
 * scannlite_scratch_size bytes plus 8 per allow entry (a sorted copy of the list). */
SCANNLITE_API scannlite_status scannlite_search_filtered(const scannlite_index *index, const float *query,
                                                         size_t dimension, int32_t k,
                                                         uint32_t leaves_to_search,
                                                         const uint64_t *allow, size_t allow_count,
                                                         scannlite_result *results, int32_t *count,
                                                         char *err, size_t err_size);

/* Bytes of scratch one search with this k allocates (documented bound, for apps that budget).
 * A k larger than the leaves' blocks could hold uncompressed counts the items first, as
 * scannlite_get_info does (0 if that fails). */
SCANNLITE_API size_t scannlite_scratch_size(const scannlite_index *index, int32_t k);

/* Metadata bytes of item `id` (a view, valid until scannlite_close). */
SCANNLITE_API scannlite_status scannlite_metadata(const scannlite_index *index, uint64_t id,
                                                  const uint8_t **data, size_t *size);

/* The Task Library's l2_normalize, bit for bit: a float32 running sum of squares, 1/sqrt in
 * float32, one multiply per value; a zero vector is left as it is. In place. */
SCANNLITE_API void scannlite_l2_normalize(float *vector, size_t dimension);

SCANNLITE_API const char *scannlite_version(void);

#ifdef __cplusplus
}
#endif
#endif /* SCANNLITE_H */
