/* scannlite-cli: info, search and filter over a bundle or .ldb, in the exact text format the
 * other ports (JNI, WebAssembly) and the tests compare against (docs/native.md, "CLI"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scannlite.h"

static int fail(const char *fmt, const char *a, const char *b) {
  fputs("error: ", stderr);
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  return 1;
}

static int read_file(const char *path, uint8_t **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return fail("cannot open %s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf != NULL) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    uint8_t *bigger = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
    if (bigger == NULL) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  int bad = ferror(f);
  fclose(f);
  if (buf == NULL) return fail("out of memory reading %s%s", path, "");
  if (bad) {
    free(buf);
    return fail("cannot read %s%s", path, "");
  }
  *data = buf;
  *size = n;
  return 0;
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static void print_results(long long q, const scannlite_result *r, int32_t count) {
  for (int32_t i = 0; i < count; i++) {
    printf("%lld %d %" PRIu64 " %a ", q, (int)i, r[i].id, (double)r[i].distance);
    if (r[i].metadata_size == 0) {
      fputc('-', stdout);
    } else {
      for (size_t j = 0; j < r[i].metadata_size; j++) printf("%02x", r[i].metadata[j]);
    }
    fputc('\n', stdout);
  }
}

static int usage(void) {
  fputs("error: usage: scannlite-cli info FILE | search FILE QUERIES K [LEAVES] | filter FILE QUERIES K LEAVES ALLOW"
        " | bench FILE QUERIES K [LEAVES] [ROUNDS]\n",
        stderr);
  return 1;
}

static double now_us(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  const char *cmd = argv[1];
  int info = strcmp(cmd, "info") == 0, search = strcmp(cmd, "search") == 0, filter = strcmp(cmd, "filter") == 0;
  int bench = strcmp(cmd, "bench") == 0;
  long long rounds = 5;
  if (!(info && argc == 3) && !(search && (argc == 5 || argc == 6)) && !(filter && argc == 7) &&
      !(bench && argc >= 5 && argc <= 7))
    return usage();
  if (bench && argc == 7 && !parse_long(argv[6], 1, 1000000, &rounds)) return fail("ROUNDS must be a positive integer, got '%s'%s", argv[6], "");
  uint8_t *data;
  size_t size;
  if (read_file(argv[2], &data, &size)) return 1;
  char err[256];
  scannlite_index *ix;
  if (scannlite_open(data, size, &ix, err, sizeof err) != SCANNLITE_OK) {
    free(data);
    return fail("%s: %s", argv[2], err);
  }
  scannlite_info in;
  scannlite_peek_info(ix, &in); /* reads nothing: the items are counted for `info` only */
  int rc = 0;
  if (info) {
    if (scannlite_count_items(ix, &in.size, err, sizeof err) != SCANNLITE_OK) {
      rc = fail("%s: %s", argv[2], err);
      goto done;
    }
    static const char *lookups[] = {"FLOAT", "INT16", "INT8"};
    printf("dimension %u\nsize %" PRIu64 "\nnum_leaves %u\nleaves_to_search %u\ndistance %s\nlookup %s\nnum_subspaces %u\n",
           in.dimension, in.size, in.num_leaves, in.leaves_to_search, in.distance == SCANNLITE_DOT_PRODUCT ? "dot" : "l2",
           in.lookup == SCANNLITE_LOOKUP_NONE ? "NONE" : lookups[in.lookup], in.num_subspaces);
    goto done;
  }
  long long k, leaves = 0;
  if (!parse_long(argv[4], 1, INT32_MAX, &k)) {
    rc = fail("K must be an integer in [1, 2147483647], got '%s'%s", argv[4], "");
    goto done;
  }
  if (argc >= 6 && !parse_long(argv[5], 0, UINT32_MAX, &leaves)) {
    rc = fail("LEAVES must be an integer in [0, 4294967295], got '%s'%s", argv[5], "");
    goto done;
  }
  uint8_t *qdata;
  size_t qsize;
  if (read_file(argv[3], &qdata, &qsize)) {
    rc = 1;
    goto done;
  }
  size_t row = (size_t)in.dimension * sizeof(float);
  uint64_t *allow = NULL;
  size_t nallow = 0;
  if (row == 0 || qsize % row) {
    char what[64];
    snprintf(what, sizeof what, "%zu", qsize);
    rc = fail("%s holds %s bytes, not a whole number of queries of the index's dimension", argv[3], what);
  }
  if (!rc && filter) {
    FILE *f = fopen(argv[6], "r");
    if (f == NULL) {
      rc = fail("cannot open %s: %s", argv[6], strerror(errno));
    } else {
      char line[64];
      size_t cap = 0;
      while (!rc && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = '\0';
        if (len == 0) continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(line, &end, 10);
        if (errno || *end != '\0' || line[0] == '-') {
          rc = fail("%s: not an ordinal: '%s'", argv[6], line);
          break;
        }
        if (nallow == cap) {
          cap = cap ? cap * 2 : 256;
          uint64_t *bigger = realloc(allow, cap * sizeof *allow);
          if (!bigger) {
            rc = fail("out of memory reading %s%s", argv[6], "");
            break;
          }
          allow = bigger;
        }
        allow[nallow++] = v;
      }
      fclose(f);
    }
  }
  /* A search returns at most min(k, size) results: the items are counted (every leaf
   * located) only for a k too large to allocate as it is. */
  size_t room = (size_t)k;
  if (!rc && k > 65536) {
    if (scannlite_count_items(ix, &in.size, err, sizeof err) != SCANNLITE_OK) rc = fail("%s%s", err, "");
    else if ((uint64_t)k > in.size) room = (size_t)in.size;
  }
  scannlite_result *res = rc ? NULL : malloc((room ? room : 1) * sizeof *res);
  if (!rc && res == NULL) rc = fail("out of memory for %s results%s", argv[4], "");
  size_t nq = rc ? 0 : qsize / row;
  float *q = malloc(row ? row : 1);
  if (!rc && bench) {
    /* Each search timed alone, every query `rounds` times: p50 and p95 in microseconds. */
    size_t total = nq * (size_t)rounds;
    double *us = malloc((total ? total : 1) * sizeof *us);
    size_t t = 0;
    for (long long r = 0; us && !rc && r < rounds; r++)
      for (size_t i = 0; !rc && i < nq; i++) {
        memcpy(q, qdata + i * row, row);
        int32_t count;
        double t0 = now_us();
        if (scannlite_search(ix, q, in.dimension, (int32_t)k, (uint32_t)leaves, res, &count, err, sizeof err)) rc = fail("%s%s", err, "");
        us[t++] = now_us() - t0;
      }
    if (!rc && us && t) {
      qsort(us, t, sizeof *us, cmp_double);
      printf("searches %zu\np50_us %.1f\np95_us %.1f\n", t, us[t / 2], us[(size_t)(t * 0.95)]);
    }
    free(us);
    nq = 0;
  }
  for (size_t i = 0; !rc && i < nq; i++) {
    memcpy(q, qdata + i * row, row);
    int32_t count;
    scannlite_status s =
        filter ? scannlite_search_filtered(ix, q, in.dimension, (int32_t)k, (uint32_t)leaves, allow, nallow, res, &count,
                                           err, sizeof err)
               : scannlite_search(ix, q, in.dimension, (int32_t)k, (uint32_t)leaves, res, &count, err, sizeof err);
    if (s != SCANNLITE_OK) {
      rc = fail("%s%s", err, "");
      break;
    }
    print_results((long long)i, res, count);
  }
  free(q);
  free(res);
  free(allow);
  free(qdata);
done:
  scannlite_close(ix);
  free(data);
  if (!rc && fflush(stdout) != 0) rc = fail("cannot write the output%s%s", "", "");
  return rc;
}
