/*
 * Concurrent searches under ThreadSanitizer (docs/native-port.md, "Threads").
 *
 * scannlite.h promises that an opened index is immutable and that any number of threads may
 * search it at once; the one thing that changes inside is each block's "checksum verified"
 * flag, set on first use. This program opens each file, starts THREADS threads together on the
 * fresh index (so first uses race), each running every query with several k and leaf settings
 * and filtered searches, and checks that all threads got identical results. Built with
 * -fsanitize=thread, any data race is a report and a non-zero exit.
 *
 *   scannlite-threads FILE QUERIES.f32 [FILE QUERIES.f32 ...]
 * prints "FILE: T threads x N searches agree" per file.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scannlite.h"

#define THREADS 4
#define MAX_K 16

typedef struct {
  const scannlite_index *index;
  const float *queries;
  size_t nq, dim;
  pthread_barrier_t *start;
  /* Per search: count, then ids and distance bits, so threads can be compared exactly. */
  uint64_t *out;
  size_t out_len;
  int failed;
  int id;
  uint64_t items; /* scannlite_count_items, from odd threads */
} job;

static const int32_t KS[] = {1, 5, MAX_K};
static const uint32_t LEAVES[] = {0, 1, UINT32_MAX};
#define SETTINGS 4 /* three plain searches and one filtered */
#define SLOTS (1 + 2 * MAX_K)

static void *worker(void *arg) {
  job *j = arg;
  scannlite_result results[MAX_K];
  uint64_t allow[64];
  for (size_t a = 0; a < 64; a++) allow[a] = 3 * a;
  char err[256];
  pthread_barrier_wait(j->start);
  if (j->id % 2 && scannlite_count_items(j->index, &j->items, err, sizeof err) != SCANNLITE_OK) j->items = UINT64_MAX;
  for (size_t q = 0; q < j->nq; q++) {
    for (int s = 0; s < SETTINGS; s++) {
      int32_t count = 0;
      scannlite_status st =
          s < 3 ? scannlite_search(j->index, j->queries + q * j->dim, j->dim, KS[s], LEAVES[s], results, &count, err,
                                   sizeof err)
                : scannlite_search_filtered(j->index, j->queries + q * j->dim, j->dim, MAX_K, UINT32_MAX, allow, 64,
                                            results, &count, err, sizeof err);
      uint64_t *slot = j->out + (q * SETTINGS + (size_t)s) * SLOTS;
      if (st != SCANNLITE_OK) {
        slot[0] = UINT64_MAX - (uint64_t)st; /* the same failure in every thread is fine */
        continue;
      }
      slot[0] = (uint64_t)count;
      for (int32_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &results[i].distance, sizeof bits);
        /* Metadata lookups race too: each M_<j> block's trailer is read on its first use. */
        const uint8_t *meta = NULL;
        size_t meta_size = 0;
        scannlite_status ms = scannlite_metadata(j->index, results[i].id, &meta, &meta_size);
        uint64_t folded = (uint64_t)ms;
        for (size_t b = 0; ms == SCANNLITE_OK && b < meta_size; b++) folded = folded * 31 + meta[b];
        slot[1 + 2 * i] = results[i].id;
        slot[2 + 2 * i] = bits | (folded << 32);
      }
    }
  }
  return NULL;
}

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  if (fseek(f, 0, SEEK_END) != 0) {
    fclose(f);
    return NULL;
  }
  long n = ftell(f);
  rewind(f);
  uint8_t *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc % 2 == 0) {
    fprintf(stderr, "error: usage: scannlite-threads FILE QUERIES.f32 [FILE QUERIES.f32 ...]\n");
    return 2;
  }
  for (int a = 1; a < argc; a += 2) {
    size_t size = 0, qsize = 0;
    uint8_t *data = read_file(argv[a], &size);
    uint8_t *qdata = read_file(argv[a + 1], &qsize);
    if (data == NULL || qdata == NULL) {
      fprintf(stderr, "error: cannot read %s or %s\n", argv[a], argv[a + 1]);
      return 2;
    }
    char err[256];
    scannlite_index *index = NULL;
    if (scannlite_open(data, size, &index, err, sizeof err) != SCANNLITE_OK) {
      fprintf(stderr, "error: %s: %s\n", argv[a], err);
      return 1;
    }
    scannlite_info info;
    scannlite_peek_info(index, &info); /* reads nothing: the threads' first uses locate the leaves */
    size_t dim = info.dimension, nq = dim ? qsize / (dim * sizeof(float)) : 0;
    if (nq == 0 || qsize % (dim * sizeof(float)) != 0) {
      fprintf(stderr, "error: %s does not hold whole %zu-float queries\n", argv[a + 1], dim);
      return 1;
    }
    float *queries = malloc(qsize);
    if (queries == NULL) return 2;
    memcpy(queries, qdata, qsize);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    job jobs[THREADS];
    pthread_t tids[THREADS];
    size_t out_len = nq * SETTINGS * SLOTS;
    for (int t = 0; t < THREADS; t++) {
      jobs[t] = (job){index, queries, nq, dim, &start, calloc(out_len, sizeof(uint64_t)), out_len, 0, t, 0};
      if (jobs[t].out == NULL || pthread_create(&tids[t], NULL, worker, &jobs[t]) != 0) {
        fprintf(stderr, "error: cannot start thread %d\n", t);
        return 2;
      }
    }
    for (int t = 0; t < THREADS; t++) pthread_join(tids[t], NULL);
    for (int t = 1; t < THREADS; t++) {
      if (memcmp(jobs[t].out, jobs[0].out, out_len * sizeof(uint64_t)) != 0) {
        fprintf(stderr, "error: %s: thread %d's results differ from thread 0's\n", argv[a], t);
        return 1;
      }
    }
    scannlite_info counted;
    if (scannlite_get_info(index, &counted) != SCANNLITE_OK) counted.size = UINT64_MAX - 1;
    for (int t = 1; t < THREADS; t += 2) {
      if (jobs[t].items != counted.size) {
        fprintf(stderr, "error: %s: thread %d counted %llu items, get_info %llu\n", argv[a], t,
                (unsigned long long)jobs[t].items, (unsigned long long)counted.size);
        return 1;
      }
    }
    printf("%s: %d threads x %zu searches agree\n", argv[a], THREADS, nq * SETTINGS);
    for (int t = 0; t < THREADS; t++) free(jobs[t].out);
    pthread_barrier_destroy(&start);
    scannlite_close(index);
    free(queries);
    free(qdata);
    free(data);
  }
  return 0;
}
