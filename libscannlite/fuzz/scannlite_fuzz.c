/*
 * Hostile-input driver for libscannlite (docs/native-port.md, "Hostile input").
 *
 * Every input is handed to the library in a heap buffer of exactly its size, so that a read
 * one byte past the end is an AddressSanitizer report, and then exercised through the whole
 * API: open, info, user info, searches with several k and leaf counts, a filtered search and
 * metadata look-ups. Each input must be either refused with a one-line error or searched; a
 * crash, a sanitizer report or a broken contract (an empty or multi-line message, an id past
 * the index, more than k results, unsorted distances) stops the run with exit status 1.
 *
 *   scannlite-fuzz MANIFEST    run the cases of a manifest written by tests/support/native_fuzz.py
 *                              (a base file plus splices per case; format in its docstring)
 *   scannlite-fuzz -f FILE...  run whole files
 *
 * Built with -DSCANNLITE_LIBFUZZER it is instead a libFuzzer target (LLVMFuzzerTestOneInput).
 * One line per case on stdout ("<case> refused <STATUS> <message>" or "<case> searched
 * <results>"), then a summary line "cases N refused R searched S slowest_ms T case C".
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scannlite.h"

#define ERR_SIZE 256
#define MAX_QUERY_DIM (1u << 20) /* beyond this the driver only checks that a small query is refused */

static const char *status_name(scannlite_status st) {
  switch (st) {
    case SCANNLITE_OK: return "OK";
    case SCANNLITE_ERROR_ARGUMENT: return "ARGUMENT";
    case SCANNLITE_ERROR_FORMAT: return "FORMAT";
    case SCANNLITE_ERROR_UNSUPPORTED: return "UNSUPPORTED";
    case SCANNLITE_ERROR_MEMORY: return "MEMORY";
    case SCANNLITE_ERROR_NOT_FOUND: return "NOT_FOUND";
  }
  return "UNKNOWN";
}

static const char *current_case = "";
static const uint8_t *current_data; /* the input being exercised, for the death report */
static size_t current_size;

/* When a sanitizer stops the run: name the case and, if SCANNLITE_FUZZ_CRASH is set, save the
 * input there (reproduce with: scannlite-fuzz -f FILE). */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void on_death(void) {
  fprintf(stderr, "scannlite-fuzz: stopped on case %s (%zu bytes)\n", current_case, current_size);
  const char *path = getenv("SCANNLITE_FUZZ_CRASH");
  if (path != NULL && current_data != NULL) {
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
      fwrite(current_data, 1, current_size, f);
      fclose(f);
      fprintf(stderr, "scannlite-fuzz: input saved to %s\n", path);
    }
  }
}

static void fail(const char *what) {
  fprintf(stderr, "contract broken on case %s: %s\n", current_case, what);
  fflush(stdout);
  on_death();
  exit(1);
}

/* An error message must be a non-empty single line, NUL-terminated inside the buffer. */
static void check_message(const char *err, size_t err_size, const char *where) {
  size_t n = strnlen(err, err_size);
  if (n == err_size) fail("error message not NUL-terminated within err_size");
  if (n == 0) {
    fprintf(stderr, "(%s)\n", where);
    fail("empty error message");
  }
  if (memchr(err, '\n', n) != NULL) fail("multi-line error message");
}

static volatile uint64_t sink; /* keeps the reads of returned views from being optimised out */

static void touch(const uint8_t *data, size_t size) {
  uint64_t sum = 0;
  for (size_t i = 0; i < size; i++) sum += data[i];
  sink += sum;
}

/* Results: at most k, ascending distance, and each one's metadata the bytes scannlite_metadata
 * gives for its id (ids are offsets[leaf] + position, not bounded by info.size: a table's
 * offsets may leave gaps, as the Task Library allows). */
static void check_results(const scannlite_index *index, const scannlite_result *results, int32_t count, int32_t k) {
  if (count < 0 || count > k) fail("result count outside 0..k");
  for (int32_t i = 0; i < count; i++) {
    if (results[i].metadata_size > 0 && results[i].metadata == NULL) fail("metadata size without data");
    touch(results[i].metadata, results[i].metadata_size);
    if (i > 0 && results[i].distance < results[i - 1].distance) fail("distances not ascending");
    const uint8_t *md = NULL;
    size_t md_size = 0;
    scannlite_status st = scannlite_metadata(index, results[i].id, &md, &md_size);
    if (st == SCANNLITE_OK) {
      if (md_size != results[i].metadata_size || (md_size && memcmp(md, results[i].metadata, md_size) != 0))
        fail("a result's metadata differs from scannlite_metadata of its id");
    } else if (results[i].metadata_size != 0) {
      fail("a result has metadata that scannlite_metadata does not find");
    }
  }
}

/* Exercise one input; returns 1 if it was opened (and searched), 0 if refused. */
static int exercise(const uint8_t *data, size_t size, char *summary, size_t summary_size) {
  char err[ERR_SIZE];
  memset(err, 'X', sizeof err);
  scannlite_index *index = NULL;
  scannlite_status st = scannlite_open(data, size, &index, err, sizeof err);
  if (st != SCANNLITE_OK) {
    check_message(err, sizeof err, "open");
    snprintf(summary, summary_size, "refused %s %s", status_name(st), err);
    /* The same refusal with no message buffer, and with one too small for the message. */
    scannlite_index *again = NULL;
    if (scannlite_open(data, size, &again, NULL, 0) != st) fail("open without err disagrees");
    char *tiny = malloc(7);
    if (tiny == NULL) fail("out of memory");
    if (scannlite_open(data, size, &again, tiny, 7) != st) fail("open with a small err disagrees");
    if (strnlen(tiny, 7) == 7) fail("truncated message not NUL-terminated");
    free(tiny);
    return 0;
  }
  if (index == NULL) fail("open succeeded without an index");

  scannlite_info info;
  if (scannlite_peek_info(index, &info) != SCANNLITE_OK) fail("peek_info failed on an open index");
  /* Opening locates no leaf: counting the items may find a damaged leaf's block, and then
   * fails with a message, and get_info fails the same way. */
  memset(err, 'X', sizeof err);
  uint64_t items = 0;
  st = scannlite_count_items(index, &items, err, sizeof err);
  scannlite_info counted;
  if (scannlite_get_info(index, &counted) != st) fail("get_info and count_items disagree");
  if (st == SCANNLITE_OK) {
    if (counted.size != items || counted.dimension != info.dimension) fail("get_info and count_items disagree");
    info.size = items;
  } else {
    check_message(err, sizeof err, "count_items");
  }
  const uint8_t *user = NULL;
  size_t user_size = 0;
  if (scannlite_user_info(index, &user, &user_size) == SCANNLITE_OK) touch(user, user_size);
  (void)scannlite_scratch_size(index, 10);

  int searched = 0, failed = 0;
  int32_t total = 0;
  scannlite_result results[16];
  int32_t count = 0;
  if (info.dimension > 0 && info.dimension <= MAX_QUERY_DIM) {
    float *query = malloc((size_t)info.dimension * sizeof(float));
    if (query == NULL) fail("out of memory");
    for (uint32_t j = 0; j < info.dimension; j++) query[j] = (float)sin(0.7 * j + 0.3);
    static const int32_t ks[] = {1, 5, 16};
    static const uint32_t leaves[] = {0, 1, UINT32_MAX};
    for (int i = 0; i < 3; i++) {
      memset(err, 'X', sizeof err);
      st = scannlite_search(index, query, info.dimension, ks[i], leaves[i], results, &count, err, sizeof err);
      if (st == SCANNLITE_OK) {
        check_results(index, results, count, ks[i]);
        searched++;
        total += count;
      } else {
        check_message(err, sizeof err, "search");
        failed++;
      }
    }
    uint64_t allow[] = {0, 1, info.size ? info.size - 1 : 0, info.size, UINT64_MAX, 3, 1};
    memset(err, 'X', sizeof err);
    st = scannlite_search_filtered(index, query, info.dimension, 4, UINT32_MAX, allow, sizeof allow / sizeof *allow,
                                   results, &count, err, sizeof err);
    if (st == SCANNLITE_OK) {
      check_results(index, results, count, 4);
      for (int32_t i = 0; i < count; i++) {
        int allowed = 0;
        for (size_t j = 0; j < sizeof allow / sizeof *allow; j++) allowed |= results[i].id == allow[j];
        if (!allowed) fail("filtered search returned an id not allowed");
      }
    } else {
      check_message(err, sizeof err, "filtered search");
    }
    /* A query of the wrong length must be refused, never read past. */
    memset(err, 'X', sizeof err);
    if (scannlite_search(index, query, info.dimension - 1, 5, 0, results, &count, err, sizeof err) == SCANNLITE_OK &&
        info.dimension > 1)
      fail("a query one float short was accepted");
    free(query);
  } else {
    float small[4] = {0};
    memset(err, 'X', sizeof err);
    if (scannlite_search(index, small, 4, 5, 0, results, &count, err, sizeof err) == SCANNLITE_OK && info.dimension != 4)
      fail("a 4-float query was accepted by an index of another dimension");
  }
  uint64_t ids[] = {0, 1, info.size ? info.size - 1 : 0, info.size, UINT64_MAX};
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    const uint8_t *md = NULL;
    size_t md_size = 0;
    /* A key M_<id> past the index's size may exist in a hostile table: looked up like any key. */
    if (scannlite_metadata(index, ids[i], &md, &md_size) == SCANNLITE_OK) touch(md, md_size);
  }
  scannlite_close(index);
  snprintf(summary, summary_size, "searched dim %u size %llu searches %d failed %d results %d", info.dimension,
           (unsigned long long)info.size, searched, failed, (int)total);
  return 1;
}

#ifdef SCANNLITE_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char summary[ERR_SIZE + 64];
  /* libFuzzer's buffer is exactly `size` bytes; an empty input still gets a valid pointer. */
  exercise(size ? data : (const uint8_t *)"", size, summary, sizeof summary);
  return 0;
}
#else

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      uint8_t *grown = realloc(buf, cap);
      if (grown == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = grown;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *size = n;
  return buf;
}

/* Little-endian readers over the manifest, with bounds. */
typedef struct {
  const uint8_t *p;
  size_t n, pos;
} reader;

static uint64_t rd(reader *r, int bytes) {
  if (r->n - r->pos < (size_t)bytes) {
    fprintf(stderr, "error: the manifest is truncated at byte %zu\n", r->pos);
    exit(2);
  }
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[r->pos + i] << (8 * i);
  r->pos += (size_t)bytes;
  return v;
}

static const uint8_t *take(reader *r, uint64_t len) {
  if (len > r->n - r->pos) {
    fprintf(stderr, "error: the manifest is truncated at byte %zu\n", r->pos);
    exit(2);
  }
  const uint8_t *p = r->p + r->pos;
  r->pos += (size_t)len;
  return p;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct {
  long cases, refused, searched;
  double slowest;
  char slowest_case[64];
} tally;

static void run_one(tally *t, const char *name, const uint8_t *src, size_t len, reader *splices, uint32_t nsplices) {
  /* Exactly the input's bytes on the heap: one byte more read is an AddressSanitizer report. */
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) fail("out of memory");
  memcpy(buf, src, len);
  for (uint32_t i = 0; i < nsplices; i++) {
    uint64_t off = rd(splices, 8), removed = rd(splices, 8);
    uint32_t added = (uint32_t)rd(splices, 4);
    const uint8_t *bytes = take(splices, added);
    if (off > len) off = len;
    if (removed > len - off) removed = len - off;
    size_t n = len - (size_t)removed + added;
    uint8_t *next = malloc(n ? n : 1);
    if (next == NULL) fail("out of memory");
    memcpy(next, buf, (size_t)off);
    memcpy(next + off, bytes, added);
    memcpy(next + off + added, buf + off + removed, len - (size_t)off - (size_t)removed);
    free(buf);
    buf = next;
    len = n;
  }
  current_case = name;
  current_data = buf;
  current_size = len;
  char summary[ERR_SIZE + 64];
  double t0 = now_ms();
  int opened = exercise(buf, len, summary, sizeof summary);
  double dt = now_ms() - t0;
  current_data = NULL;
  free(buf);
  printf("%s %s\n", name, summary);
  t->cases++;
  if (opened)
    t->searched++;
  else
    t->refused++;
  if (dt > t->slowest) {
    t->slowest = dt;
    snprintf(t->slowest_case, sizeof t->slowest_case, "%s", name);
  }
}

int main(int argc, char **argv) {
  if (__sanitizer_set_death_callback != NULL) __sanitizer_set_death_callback(on_death);
  tally t = {0, 0, 0, 0.0, "-"};
  if (argc >= 3 && strcmp(argv[1], "-f") == 0) {
    for (int i = 2; i < argc; i++) {
      size_t size = 0;
      uint8_t *data = read_file(argv[i], &size);
      if (data == NULL) {
        fprintf(stderr, "error: cannot read %s\n", argv[i]);
        return 2;
      }
      run_one(&t, argv[i], data, size, NULL, 0);
      free(data);
    }
  } else if (argc == 2) {
    size_t size = 0;
    uint8_t *manifest = read_file(argv[1], &size);
    if (manifest == NULL) {
      fprintf(stderr, "error: cannot read %s\n", argv[1]);
      return 2;
    }
    reader r = {manifest, size, 0};
    if (memcmp(take(&r, 8), "SLFUZZ2\n", 8) != 0) {
      fprintf(stderr, "error: %s is not a scannlite fuzz manifest\n", argv[1]);
      return 2;
    }
    uint32_t nbases = (uint32_t)rd(&r, 4);
    const uint8_t **bases = calloc(nbases ? nbases : 1, sizeof *bases);
    uint64_t *base_len = calloc(nbases ? nbases : 1, sizeof *base_len);
    if (bases == NULL || base_len == NULL) fail("out of memory");
    for (uint32_t i = 0; i < nbases; i++) {
      base_len[i] = rd(&r, 8);
      bases[i] = take(&r, base_len[i]);
    }
    uint32_t ncases = (uint32_t)rd(&r, 4);
    for (uint32_t c = 0; c < ncases; c++) {
      uint32_t base = (uint32_t)rd(&r, 4);
      uint64_t len = rd(&r, 8);
      uint32_t nsplices = (uint32_t)rd(&r, 4);
      if (base >= nbases || len > base_len[base]) {
        fprintf(stderr, "error: case %u of the manifest is malformed\n", c);
        return 2;
      }
      char name[32];
      snprintf(name, sizeof name, "%u", c);
      run_one(&t, name, bases[base], (size_t)len, &r, nsplices);
    }
    free(bases);
    free(base_len);
    free(manifest);
  } else {
    fprintf(stderr, "usage: scannlite-fuzz MANIFEST | scannlite-fuzz -f FILE...\n");
    return 2;
  }
  printf("cases %ld refused %ld searched %ld slowest_ms %.1f case %s\n", t.cases, t.refused, t.searched, t.slowest,
         t.slowest_case);
  return 0;
}
#endif
