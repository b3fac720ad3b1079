/* Search, bit for bit as the Task Library (tflite-support 0.4.4, Eigen on SSE without FMA):
 * see docs/native.md ("Arithmetic") for the order of every sum and where it comes from. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- Eigen-order arithmetic ---------------------------------------------------------- */

static inline float ldf(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

/* Eigen's vectorised sum (redux_impl, LinearVectorizedTraversal, 4-float packets, an
 * expression without direct access so the first packet starts at 0): two packet
 * accumulators over pairs of packets, one more packet, (p0 + p2) + (p1 + p3), then the tail. */
#define SL_REDUX(N, TERM)                                                        \
  do {                                                                           \
    size_t n_ = (N);                                                             \
    size_t a2_ = (n_ / 8) * 8, a1_ = (n_ / 4) * 4;                               \
    if (a1_ == 0) {                                                              \
      res_ = TERM(0);                                                            \
      for (size_t i_ = 1; i_ < n_; i_++) res_ = res_ + TERM(i_);                 \
    } else {                                                                     \
      float p0_[4], p1_[4];                                                      \
      for (int l_ = 0; l_ < 4; l_++) p0_[l_] = TERM((size_t)l_);                 \
      if (a1_ > 4) {                                                             \
        for (int l_ = 0; l_ < 4; l_++) p1_[l_] = TERM((size_t)4 + l_);           \
        for (size_t i_ = 8; i_ < a2_; i_ += 8)                                   \
          for (int l_ = 0; l_ < 4; l_++) {                                       \
            p0_[l_] = p0_[l_] + TERM(i_ + l_);                                   \
            p1_[l_] = p1_[l_] + TERM(i_ + 4 + l_);                               \
          }                                                                      \
        for (int l_ = 0; l_ < 4; l_++) p0_[l_] = p0_[l_] + p1_[l_];              \
        if (a1_ > a2_)                                                           \
          for (int l_ = 0; l_ < 4; l_++) p0_[l_] = p0_[l_] + TERM(a2_ + l_);     \
      }                                                                          \
      res_ = (p0_[0] + p0_[2]) + (p0_[1] + p0_[3]);                              \
      for (size_t i_ = a1_; i_ < n_; i_++) res_ = res_ + TERM(i_);               \
    }                                                                            \
  } while (0)

float sl_redux_squared_norm(const float *x, size_t n) {
  float res_;
  if (n == 0) return 0.0f;
#define SQ(i) (x[i] * x[i])
  SL_REDUX(n, SQ);
#undef SQ
  return res_;
}

static float redux_squared_norm_bytes(const uint8_t *x, size_t n) {
  float res_;
  if (n == 0) return 0.0f;
#define SQ(i) (ldf(x + 4 * (i)) * ldf(x + 4 * (i)))
  SL_REDUX(n, SQ);
#undef SQ
  return res_;
}

/* A lazy (coefficient-based) product's coefficient: sum of q[i] * x[i] in redux order. */
static float redux_dot_bytes(const float *q, const uint8_t *x, size_t n) {
  float res_;
  if (n == 0) return 0.0f;
#define DT(i) (q[i] * ldf(x + 4 * (i)))
  SL_REDUX(n, DT);
#undef DT
  return res_;
}

/* One row of Eigen's row-major GEMV: per-lane sums over whole packets from zero, the packet
 * reduced, then the tail left to right. */
static float gemv_dot_bytes(const float *q, const uint8_t *x, size_t n) {
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  size_t full = (n / 4) * 4, j;
  for (j = 0; j < full; j += 4)
    for (int l = 0; l < 4; l++) c[l] = c[l] + ldf(x + 4 * (j + l)) * q[j + l];
  float cc = (c[0] + c[2]) + (c[1] + c[3]);
  for (; j < n; j++) cc = cc + ldf(x + 4 * j) * q[j];
  return cc;
}

/* matrix.rowwise().squaredNorm() of a row-major rows x cols matrix, as Eigen evaluates it on
 * the column-major original: rows in whole packets of 4 reduce x0 + ((x1 + x2) + (x3 + x4))
 * + ..., the last rows % 4 left to right. */
void sl_rowwise_squared_norms(const float *m, size_t rows, size_t cols, float *out) {
  size_t body = rows - rows % 4;
  for (size_t r = 0; r < rows; r++) {
    const float *x = m + r * cols;
    if (cols == 0) {
      out[r] = 0.0f;
      continue;
    }
    float p = x[0] * x[0];
    size_t i = 1;
    if (r < body) {
      size_t size4 = (cols - 1) & ~(size_t)3;
      for (; i < size4; i += 4)
        p = p + ((x[i] * x[i] + x[i + 1] * x[i + 1]) + (x[i + 2] * x[i + 2] + x[i + 3] * x[i + 3]));
    }
    for (; i < cols; i++) p = p + x[i] * x[i];
    out[r] = p;
  }
}

/* ---- top-k (TopNAmortizedConstant) and the partitioner's nth_element ------------------ */

typedef struct cand {
  float d;
  uint64_t id;
} cand;

#define SL_T cand
#define SL_LESS(a, b) ((a).d < (b).d)
#define SL_NAME(x) topn_##x
#include "topn.h"
#undef SL_T
#undef SL_LESS
#undef SL_NAME

typedef struct leafd {
  float d;
  int32_t leaf;
} leafd;

#define SL_T leafd
#define SL_LESS(a, b) ((a).d < (b).d || (!((b).d < (a).d) && (a).leaf < (b).leaf))
#define SL_NAME(x) leaf_##x
#include "topn.h"
#undef SL_T
#undef SL_LESS
#undef SL_NAME

typedef struct topn {
  cand *e;
  size_t size, limit, cap;
  cand bottom;
} topn;

static void topn_shrink(topn *t) {
  topn_nth_element(t->e, t->e + t->limit - 1, t->e + t->size);
  t->size = t->limit;
  t->bottom = t->e[t->limit - 1];
}

static inline void topn_push(topn *t, float d, uint64_t id) {
  if (d < t->bottom.d) {
    t->e[t->size].d = d;
    t->e[t->size].id = id;
    t->size++;
    if (t->size >= t->cap) topn_shrink(t);
  }
}

/* ---- the search ------------------------------------------------------------------------ */

typedef struct plan {
  size_t pairs, lut, qlut, cands;
} plan;

static uint32_t effective_leaves(const scannlite_index *ix, uint32_t leaves) {
  uint32_t L = ix->info.num_leaves;
  if (leaves == 0) return ix->info.leaves_to_search;
  return leaves < L ? leaves : L;
}

/* The top-k buffer: 2k as the Task Library's vector grows to, or the items + 1 if fewer (the
 * same results: never reached). A k beyond what the leaves' blocks could hold uncompressed
 * counts the items first (locating every leaf), so a huge k allocates no huge buffer. */
static scannlite_status cand_cap(const scannlite_index *ix, int32_t k, size_t *out, sl_err *e) {
  uint64_t cap = 2 * (uint64_t)k;
  if (cap > ix->raw_items + 1) {
    uint64_t n;
    scannlite_status s = sl_count_items(ix, &n, e);
    if (s) return s;
    if (cap > n + 1) cap = n + 1;
  }
  *out = (size_t)cap;
  return SCANNLITE_OK;
}

static plan make_plan(const scannlite_index *ix, size_t cands) {
  plan p;
  size_t lut_entries = ix->config.has_ah ? (size_t)ix->config.num_subspaces * ix->config.num_codes + 256 : 0;
  p.pairs = (size_t)ix->info.num_leaves * sizeof(leafd);
  p.lut = lut_entries * sizeof(float);
  p.qlut = ix->info.lookup == SCANNLITE_LOOKUP_INT16 || ix->info.lookup == SCANNLITE_LOOKUP_INT8
               ? lut_entries * sizeof(uint16_t)
               : 0;
  p.cands = cands * sizeof(cand);
  return p;
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t scannlite_scratch_size(const scannlite_index *index, int32_t k) {
  size_t cap;
  if (index == NULL || k <= 0 || cand_cap(index, k, &cap, NULL)) return 0;
  plan p = make_plan(index, cap);
  return round16(p.pairs) + round16(p.lut) + round16(p.qlut) + round16(p.cands);
}

#define SL_EACH(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

/* The leaves to visit, in the order the device visits them. */
static void choose_leaves(const scannlite_index *ix, const float *q, uint32_t n, leafd *pairs) {
  const sl_config *c = &ix->config;
  uint32_t L = ix->info.num_leaves;
  if (!c->has_partitioner || n >= L) {
    for (uint32_t l = 0; l < L; l++) pairs[l].leaf = (int32_t)l;
    return;
  }
  size_t D = c->centroid_dim;
  size_t block = D < 128 ? D : ((size_t)L * sizeof(float) < 32000 ? 16 : 4);
  int l2 = c->partitioner_distance == 0;
  uint32_t l = 0;
  /* Eight leaves side by side (independent sums, each in the device's order), then the rest. */
  for (; l + 8 <= L; l += 8) {
    const float *r0 = c->centroids + (size_t)l * D, *r1 = r0 + D, *r2 = r1 + D, *r3 = r2 + D, *r4 = r3 + D,
                *r5 = r4 + D, *r6 = r5 + D, *r7 = r6 + D;
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f, t3 = 0.0f, t4 = 0.0f, t5 = 0.0f, t6 = 0.0f, t7 = 0.0f;
    for (size_t b0 = 0; b0 < D; b0 += block) {
      size_t b1 = b0 + block < D ? b0 + block : D;
      float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
      for (size_t j = b0; j < b1; j++) {
        float qj = q[j];
#define SL_ADD(i) a##i = a##i + r##i[j] * qj;
        SL_EACH(SL_ADD)
#undef SL_ADD
      }
#define SL_TOT(i) t##i = t##i + a##i * -1.0f;
      SL_EACH(SL_TOT)
#undef SL_TOT
    }
#define SL_SET(i)                                                          \
  pairs[l + i].d = l2 ? 2.0f * t##i + ix->leaf_norms[l + i] : t##i;        \
  pairs[l + i].leaf = (int32_t)(l + i);
    SL_EACH(SL_SET)
#undef SL_SET
  }
  for (; l < L; l++) {
    const float *row = c->centroids + (size_t)l * D;
    float tot = 0.0f;
    for (size_t b0 = 0; b0 < D; b0 += block) {
      size_t b1 = b0 + block < D ? b0 + block : D;
      float acc = 0.0f;
      for (size_t j = b0; j < b1; j++) acc = acc + row[j] * q[j];
      tot = tot + acc * -1.0f;
    }
    if (l2) tot = 2.0f * tot + ix->leaf_norms[l];
    pairs[l].d = tot;
    pairs[l].leaf = (int32_t)l;
  }
  leaf_nth_element(pairs, pairs + n, pairs + L);
}

/* x86's cvttss2si, then the low bits: what the device's float -> uint8/uint16 cast gives. */
static inline uint32_t trunc_cast(float v) {
  int32_t i = (v > -2147483648.0f && v < 2147483648.0f) ? (int32_t)v : INT32_MIN;
  return (uint32_t)i;
}

/* Every code's entry of one subspace side by side: entry k's own sum runs over j in the
 * device's order (a float from 0, one product added per dimension), so the lanes a compiler
 * makes of k give the same bits as one entry at a time. */
#if defined(__GNUC__) && !defined(__clang__)
#define SL_VECTORIZE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define SL_VECTORIZE
#endif

SL_VECTORIZE static void lut_dot(const float *restrict bt, const float *restrict qs, size_t d, size_t K, float *restrict dot) {
  for (size_t k = 0; k < K; k++) dot[k] = 0.0f;
  for (size_t j = 0; j < d; j++) {
    const float *restrict col = bt + j * K;
    float qj = qs[j];
    for (size_t k = 0; k < K; k++) dot[k] = dot[k] + col[k] * qj;
  }
}

SL_VECTORIZE static void build_lut(const scannlite_index *ix, const float *q, float *lut) {
  const sl_config *c = &ix->config;
  size_t K = c->num_codes;
  for (uint32_t s = 0; s < c->num_subspaces; s++) {
    size_t d = c->sub_dim[s];
    const float *qs = q + c->sub_start[s];
    float *restrict out = lut + (size_t)s * K;
    lut_dot(ix->books_t + c->codebook_at[s], qs, d, K, out);
    if (c->ah_distance == 1) {
      for (size_t k = 0; k < K; k++) out[k] = 0.0f + out[k] * -1.0f;
    } else {
      float qn = sl_redux_squared_norm(qs, d);
      const float *restrict cn = ix->code_norms + (size_t)s * K;
      for (size_t k = 0; k < K; k++) out[k] = (qn + cn[k]) - (0.0f + out[k] * 2.0f);
    }
  }
  memset(lut + (size_t)c->num_subspaces * K, 0, 256 * sizeof(float));
}

typedef struct scorer {
  const scannlite_index *ix;
  const float *q;
  const float *lut;
  const uint16_t *qlut;
  float dq_scale, dq_offset_1;
  float qn;
  size_t S, K, cpb;
} scorer;

/* The table's min and max (1 if it holds a NaN): eight lanes, each keeping its first of equal
 * values, then the lanes combined. Only a zero's sign can differ from one scan in order, and
 * a zero bound gives the same entries, scale and sums (a distance's zero is +0 either way). */
SL_VECTORIZE static int table_range(const float *restrict lut, size_t n, float *lo_out, float *hi_out) {
  float lo[8], hi[8];
  int nan[8];
  for (int l = 0; l < 8; l++) {
    lo[l] = hi[l] = lut[0];
    nan[l] = 0;
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      float v = lut[i + (size_t)l];
      lo[l] = v < lo[l] ? v : lo[l];
      hi[l] = v > hi[l] ? v : hi[l];
      nan[l] |= v != v;
    }
  for (; i < n; i++) {
    float v = lut[i];
    lo[0] = v < lo[0] ? v : lo[0];
    hi[0] = v > hi[0] ? v : hi[0];
    nan[0] |= v != v;
  }
  for (int l = 1; l < 8; l++) {
    lo[0] = lo[l] < lo[0] ? lo[l] : lo[0];
    hi[0] = hi[l] > hi[0] ? hi[l] : hi[0];
    nan[0] |= nan[l];
  }
  *lo_out = lo[0];
  *hi_out = hi[0];
  return nan[0] | (lut[0] != lut[0]);
}

SL_VECTORIZE static void quantize(const float *restrict lut, size_t n, float lo, float scale, int int8,
                                  uint16_t *restrict qlut) {
  if (int8)
    for (size_t i = 0; i < n; i++) qlut[i] = (uint8_t)(int32_t)(scale * (lut[i] - lo));
  else
    for (size_t i = 0; i < n; i++) qlut[i] = (uint16_t)(int32_t)(scale * (lut[i] - lo));
}

static void prepare(scorer *sc, const scannlite_index *ix, const float *q, float *lut, uint16_t *qlut) {
  memset(sc, 0, sizeof *sc);
  sc->ix = ix;
  sc->q = q;
  if (!ix->config.has_ah) {
    sc->qn = sl_redux_squared_norm(q, ix->config.embedding_dim);
    return;
  }
  sc->S = ix->config.num_subspaces;
  sc->K = ix->config.num_codes;
  sc->cpb = ix->chunks_per_block;
  build_lut(ix, q, lut);
  sc->lut = lut;
  if (ix->info.lookup == SCANNLITE_LOOKUP_FLOAT) return;
  size_t n = sc->S * sc->K;
  float lo, hi;
  int nan = table_range(lut, n, &lo, &hi);
  float top = ix->info.lookup == SCANNLITE_LOOKUP_INT8 ? 255.0f : 2047.0f;
  float range = hi - lo, eps = FLT_EPSILON;
  float scale = top / ((range < eps) ? eps : range);
  int int8 = ix->info.lookup == SCANNLITE_LOOKUP_INT8;
  if (!nan && isfinite(lo) && isfinite(hi) && isfinite(scale) && scale >= 0.0f && scale * range <= 65536.0f) {
    /* Every scaled entry lies in [0, top + rounding]: the plain cast is the device's. */
    quantize(lut, n, lo, scale, int8, qlut);
  } else {
    for (size_t i = 0; i < n; i++) {
      uint32_t v = trunc_cast(scale * (lut[i] - lo));
      qlut[i] = int8 ? (uint16_t)(uint8_t)v : (uint16_t)v;
    }
  }
  memset(qlut + n, 0, 256 * sizeof(uint16_t));
  sc->qlut = qlut;
  sc->dq_scale = (hi - lo) / top;
  sc->dq_offset_1 = lo + sc->dq_scale / 2.0f;
}

/* Distance of one coded item (S code bytes). */
static inline float ah_distance(const scorer *sc, const uint8_t *codes) {
  float out = 0.0f;
  size_t S = sc->S, K = sc->K;
  if (sc->qlut == NULL) {
    for (size_t b = 0; b < S; b += sc->cpb) {
      size_t e = b + sc->cpb < S ? b + sc->cpb : S;
      float acc = sc->lut[b * K + codes[b]];
      for (size_t s = b + 1; s < e; s++) acc = acc + sc->lut[s * K + codes[s]];
      out = out + acc;
    }
    return out;
  }
  for (size_t b = 0; b < S; b += sc->cpb) {
    size_t e = b + sc->cpb < S ? b + sc->cpb : S;
    uint16_t acc = 0;
    for (size_t s = b; s < e; s++) acc = (uint16_t)(acc + sc->qlut[s * K + codes[s]]);
    float offset_n = (float)(e - b) * sc->dq_offset_1;
    out = out + (sc->dq_scale * (float)acc + offset_n);
  }
  return out;
}

/* Distances of SL_BATCH consecutive coded items (rows `row` bytes apart), each summed in
 * exactly the order of ah_distance: the items' independent sums run side by side. */
#define SL_BATCH 8
static void ah_float_batch(const scorer *sc, const uint8_t *x, size_t row, float *o) {
  size_t S = sc->S, K = sc->K;
  const uint8_t *x0 = x, *x1 = x + row, *x2 = x + 2 * row, *x3 = x + 3 * row, *x4 = x + 4 * row, *x5 = x + 5 * row,
                *x6 = x + 6 * row, *x7 = x + 7 * row;
  float o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f, o4 = 0.0f, o5 = 0.0f, o6 = 0.0f, o7 = 0.0f;
  for (size_t b = 0; b < S; b += sc->cpb) {
    size_t e = b + sc->cpb < S ? b + sc->cpb : S;
    const float *t = sc->lut + b * K;
#define SL_FIRST(l) float a##l = t[x##l[b]];
    SL_EACH(SL_FIRST)
#undef SL_FIRST
    for (size_t s = b + 1; s < e; s++) {
      t = sc->lut + s * K;
#define SL_ADD(l) a##l = a##l + t[x##l[s]];
      SL_EACH(SL_ADD)
#undef SL_ADD
    }
#define SL_OUT(l) o##l = o##l + a##l;
    SL_EACH(SL_OUT)
#undef SL_OUT
  }
#define SL_STORE(l) o[l] = o##l;
  SL_EACH(SL_STORE)
#undef SL_STORE
}

/* gcc's SLP vectoriser packs the eight integer sums into one register, with a chain of
 * inserts per step: slower than eight scalar sums, so it is off here. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void ah_int_batch(const scorer *sc, const uint8_t *x, size_t row, float *o) {
  size_t S = sc->S, K = sc->K;
  const uint8_t *x0 = x, *x1 = x + row, *x2 = x + 2 * row, *x3 = x + 3 * row, *x4 = x + 4 * row, *x5 = x + 5 * row,
                *x6 = x + 6 * row, *x7 = x + 7 * row;
  float o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f, o4 = 0.0f, o5 = 0.0f, o6 = 0.0f, o7 = 0.0f;
  for (size_t b = 0; b < S; b += sc->cpb) {
    size_t e = b + sc->cpb < S ? b + sc->cpb : S;
    unsigned a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (size_t s = b; s < e; s++) {
      const uint16_t *t = sc->qlut + s * K;
#define SL_ADD(l) a##l += t[x##l[s]];
      SL_EACH(SL_ADD)
#undef SL_ADD
    }
    float offset_n = (float)(e - b) * sc->dq_offset_1;
    /* the device's sums are uint16 and wrap: the low 16 bits of the exact sum */
#define SL_OUT(l) o##l = o##l + (sc->dq_scale * (float)(uint16_t)a##l + offset_n);
    SL_EACH(SL_OUT)
#undef SL_OUT
  }
#define SL_STORE(l) o[l] = o##l;
  SL_EACH(SL_STORE)
#undef SL_STORE
}

/* Distance of one float item of a leaf of n items (the product path depends on n). */
static inline float float_distance(const scorer *sc, const uint8_t *x, size_t n_items) {
  size_t D = sc->ix->config.embedding_dim;
  int lazy = D + 1 + n_items < 20;
  if (sc->ix->info.distance == SCANNLITE_DOT_PRODUCT) {
    if (lazy) return -1.0f * redux_dot_bytes(sc->q, x, D);
    return 0.0f + -1.0f * gemv_dot_bytes(sc->q, x, D);
  }
  float xn = redux_squared_norm_bytes(x, D);
  float two = lazy ? 2.0f * redux_dot_bytes(sc->q, x, D) : 0.0f + 2.0f * gemv_dot_bytes(sc->q, x, D);
  return (sc->qn + xn) - two;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static scannlite_status run(const scannlite_index *ix, const float *query, size_t dimension, int32_t k,
                            uint32_t leaves, const uint64_t *allow, size_t allow_count, int filtered,
                            scannlite_result *results, int32_t *count, sl_err *e) {
  if (ix == NULL || query == NULL || results == NULL || count == NULL)
    return sl_fail(e, SCANNLITE_ERROR_ARGUMENT, "a NULL index, query, results or count");
  *count = 0;
  if (k <= 0) return sl_fail(e, SCANNLITE_ERROR_ARGUMENT, "k must be > 0, got %d", (int)k);
  if (dimension != ix->info.dimension)
    return sl_fail(e, SCANNLITE_ERROR_ARGUMENT, "the query has %zu dimensions but the index expects %u", dimension,
                   ix->info.dimension);
  if (filtered && allow == NULL && allow_count > 0) return sl_fail(e, SCANNLITE_ERROR_ARGUMENT, "a NULL allow list");
  for (size_t i = 0; i < dimension; i++)
    if (!isfinite(query[i]))
      return sl_fail(e, SCANNLITE_ERROR_ARGUMENT, "the query holds a NaN or infinite value at dimension %zu", i);
  uint32_t n = filtered && leaves == UINT32_MAX ? ix->info.num_leaves : effective_leaves(ix, leaves);
  size_t cap;
  scannlite_status s = cand_cap(ix, k, &cap, e);
  if (s) return s;
  plan p = make_plan(ix, cap);
  size_t total = round16(p.pairs) + round16(p.lut) + round16(p.qlut) + round16(p.cands);
  if (filtered && allow_count > (SIZE_MAX - total - 16) / sizeof(uint64_t))
    return sl_fail(e, SCANNLITE_ERROR_MEMORY, "an allow list of %zu ordinals does not fit in memory", allow_count);
  size_t allow_bytes = filtered ? allow_count * sizeof(uint64_t) : 0;
  uint8_t *scratch = malloc(total + allow_bytes + 16);
  if (scratch == NULL) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for %zu bytes of scratch", total);
  leafd *pairs = (leafd *)scratch;
  float *lut = (float *)(scratch + round16(p.pairs));
  uint16_t *qlut = (uint16_t *)(scratch + round16(p.pairs) + round16(p.lut));
  topn t = {(cand *)(scratch + round16(p.pairs) + round16(p.lut) + round16(p.qlut)), 0, (size_t)k, 0, {FLT_MAX, 0}};
  t.cap = cap;
  uint64_t *allowed = (uint64_t *)(scratch + total);
  size_t nallowed = 0;
  if (filtered && allow_count) {
    memcpy(allowed, allow, allow_bytes);
    qsort(allowed, allow_count, sizeof *allowed, cmp_u64);
    for (size_t i = 0; i < allow_count; i++)
      if (i == 0 || allowed[i] != allowed[nallowed - 1]) allowed[nallowed++] = allowed[i];
  }
  choose_leaves(ix, query, n, pairs);
  scorer sc;
  prepare(&sc, ix, query, lut, qlut);
  int ah = ix->config.has_ah;
  size_t row = ah ? ix->config.num_subspaces : (size_t)ix->config.embedding_dim * 4;
  for (uint32_t j = 0; j < n; j++) {
    const sl_leaf *leaf = &ix->leaves[pairs[j].leaf];
    if ((s = sl_leaf_locate(ix, (uint32_t)pairs[j].leaf, e))) break;
    if ((s = sl_table_check_block(&ix->table, leaf->block, e))) break;
    size_t items = (size_t)leaf->items;
    if (!filtered) {
      size_t i = 0;
      if (ah) {
        float o[SL_BATCH];
        for (; i + SL_BATCH <= items; i += SL_BATCH) {
          if (sc.qlut == NULL) ah_float_batch(&sc, leaf->data + i * row, row, o);
          else ah_int_batch(&sc, leaf->data + i * row, row, o);
          for (int l = 0; l < SL_BATCH; l++) topn_push(&t, o[l], leaf->first_id + i + (size_t)l);
        }
      }
      for (; i < items; i++) {
        const uint8_t *x = leaf->data + i * row;
        topn_push(&t, ah ? ah_distance(&sc, x) : float_distance(&sc, x, items), leaf->first_id + i);
      }
      continue;
    }
    size_t lo = 0, hi = nallowed;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (allowed[mid] < leaf->first_id) lo = mid + 1;
      else hi = mid;
    }
    for (; lo < nallowed && allowed[lo] - leaf->first_id < items; lo++) {
      const uint8_t *x = leaf->data + (size_t)(allowed[lo] - leaf->first_id) * row;
      topn_push(&t, ah ? ah_distance(&sc, x) : float_distance(&sc, x, items), allowed[lo]);
    }
  }
  if (s == SCANNLITE_OK) {
    if (t.size > t.limit) topn_shrink(&t);
    topn_sort(t.e, t.e + t.size);
    for (size_t i = 0; i < t.size; i++) {
      results[i].id = t.e[i].id;
      results[i].distance = t.e[i].d;
      if ((s = scannlite_metadata(ix, t.e[i].id, &results[i].metadata, &results[i].metadata_size)) != SCANNLITE_OK) {
        sl_fail(e, s == SCANNLITE_ERROR_NOT_FOUND ? SCANNLITE_ERROR_FORMAT : s,
                "corrupt on-device ScaNN index: missing or unreadable key M_%llu", (unsigned long long)t.e[i].id);
        if (s == SCANNLITE_ERROR_NOT_FOUND) s = SCANNLITE_ERROR_FORMAT;
        break;
      }
    }
    if (s == SCANNLITE_OK) *count = (int32_t)t.size;
  }
  free(scratch);
  return s;
}

scannlite_status scannlite_search(const scannlite_index *index, const float *query, size_t dimension, int32_t k,
                                  uint32_t leaves_to_search, scannlite_result *results, int32_t *count, char *err,
                                  size_t err_size) {
  sl_err e = {err, err_size};
  return run(index, query, dimension, k, leaves_to_search, NULL, 0, 0, results, count, &e);
}

scannlite_status scannlite_search_filtered(const scannlite_index *index, const float *query, size_t dimension,
                                           int32_t k, uint32_t leaves_to_search, const uint64_t *allow,
                                           size_t allow_count, scannlite_result *results, int32_t *count, char *err,
                                           size_t err_size) {
  sl_err e = {err, err_size};
  return run(index, query, dimension, k, leaves_to_search, allow, allow_count, 1, results, count, &e);
}

void scannlite_l2_normalize(float *vector, size_t dimension) {
  if (vector == NULL) return;
  float sum = 0.0f;
  for (size_t i = 0; i < dimension; i++) sum = sum + vector[i] * vector[i];
  if (sum == 0.0f) return;
  float inv = 1.0f / sqrtf(sum);
  for (size_t i = 0; i < dimension; i++) vector[i] = vector[i] * inv;
}
