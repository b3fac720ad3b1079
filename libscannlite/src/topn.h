/* libstdc++'s std::nth_element and std::sort (introselect / introsort, median-of-three
 * pivots, heap fallback, insertion sort below 16 elements), step for step, so that equal
 * distances come out in the order the Task Library's TopNAmortizedConstant and Partitioner
 * leave them. Instantiated by defining SL_T (element type), SL_LESS(a, b) and SL_NAME(x). The
 * "unguarded" loops carry a bounds guard that never fires for a consistent ordering. */
#include <stddef.h>

#ifndef SL_MAYBE_UNUSED
#if defined(__GNUC__) || defined(__clang__)
#define SL_MAYBE_UNUSED __attribute__((unused))
#else
#define SL_MAYBE_UNUSED
#endif
#endif

static void SL_NAME(swap)(SL_T *a, SL_T *b) {
  SL_T t = *a;
  *a = *b;
  *b = t;
}

static void SL_NAME(move_median_to_first)(SL_T *result, SL_T *a, SL_T *b, SL_T *c) {
  if (SL_LESS(*a, *b)) {
    if (SL_LESS(*b, *c)) SL_NAME(swap)(result, b);
    else if (SL_LESS(*a, *c)) SL_NAME(swap)(result, c);
    else SL_NAME(swap)(result, a);
  } else if (SL_LESS(*a, *c)) {
    SL_NAME(swap)(result, a);
  } else if (SL_LESS(*b, *c)) {
    SL_NAME(swap)(result, c);
  } else {
    SL_NAME(swap)(result, b);
  }
}

static SL_T *SL_NAME(unguarded_partition)(SL_T *first, SL_T *last, SL_T *pivot) {
  SL_T *lo = first, *hi = last;
  while (1) {
    while (first < hi && SL_LESS(*first, *pivot)) ++first;
    --last;
    while (last > lo && SL_LESS(*pivot, *last)) --last;
    if (!(first < last)) return first;
    SL_NAME(swap)(first, last);
    ++first;
  }
}

static SL_T *SL_NAME(partition_pivot)(SL_T *first, SL_T *last) {
  SL_T *mid = first + (last - first) / 2;
  SL_NAME(move_median_to_first)(first, first + 1, mid, last - 1);
  return SL_NAME(unguarded_partition)(first + 1, last, first);
}

static void SL_NAME(unguarded_linear_insert)(SL_T *lo, SL_T *last) {
  SL_T val = *last;
  while (last > lo && SL_LESS(val, *(last - 1))) {
    *last = *(last - 1);
    --last;
  }
  *last = val;
}

static void SL_NAME(insertion_sort)(SL_T *first, SL_T *last) {
  if (first == last) return;
  for (SL_T *i = first + 1; i != last; ++i) {
    if (SL_LESS(*i, *first)) {
      SL_T val = *i;
      for (SL_T *p = i; p != first; --p) *p = *(p - 1);
      *first = val;
    } else {
      SL_NAME(unguarded_linear_insert)(first, i);
    }
  }
}

static void SL_NAME(push_heap)(SL_T *first, ptrdiff_t hole, ptrdiff_t top, SL_T value) {
  ptrdiff_t parent = (hole - 1) / 2;
  while (hole > top && SL_LESS(first[parent], value)) {
    first[hole] = first[parent];
    hole = parent;
    parent = (hole - 1) / 2;
  }
  first[hole] = value;
}

static void SL_NAME(adjust_heap)(SL_T *first, ptrdiff_t hole, ptrdiff_t len, SL_T value) {
  const ptrdiff_t top = hole;
  ptrdiff_t child = hole;
  while (child < (len - 1) / 2) {
    child = 2 * (child + 1);
    if (SL_LESS(first[child], first[child - 1])) child--;
    first[hole] = first[child];
    hole = child;
  }
  if ((len & 1) == 0 && child == (len - 2) / 2) {
    child = 2 * (child + 1);
    first[hole] = first[child - 1];
    hole = child - 1;
  }
  SL_NAME(push_heap)(first, hole, top, value);
}

static void SL_NAME(make_heap)(SL_T *first, SL_T *last) {
  ptrdiff_t len = last - first;
  if (len < 2) return;
  ptrdiff_t parent = (len - 2) / 2;
  while (1) {
    SL_NAME(adjust_heap)(first, parent, len, first[parent]);
    if (parent == 0) return;
    parent--;
  }
}

static void SL_NAME(pop_heap)(SL_T *first, SL_T *last, SL_T *result) {
  SL_T value = *result;
  *result = *first;
  SL_NAME(adjust_heap)(first, 0, last - first, value);
}

static void SL_NAME(heap_select)(SL_T *first, SL_T *middle, SL_T *last) {
  SL_NAME(make_heap)(first, middle);
  for (SL_T *i = middle; i < last; ++i)
    if (SL_LESS(*i, *first)) SL_NAME(pop_heap)(first, middle, i);
}

static int SL_NAME(lg)(ptrdiff_t n) {
  int r = 0;
  while (n > 1) {
    n >>= 1;
    r++;
  }
  return r;
}

static void SL_NAME(nth_element)(SL_T *first, SL_T *nth, SL_T *last) {
  if (first == last || nth == last) return;
  int depth = SL_NAME(lg)(last - first) * 2;
  while (last - first > 3) {
    if (depth == 0) {
      SL_NAME(heap_select)(first, nth + 1, last);
      SL_NAME(swap)(first, nth);
      return;
    }
    --depth;
    SL_T *cut = SL_NAME(partition_pivot)(first, last);
    if (cut <= nth) first = cut;
    else last = cut;
  }
  SL_NAME(insertion_sort)(first, last);
}

static void SL_NAME(introsort_loop)(SL_T *first, SL_T *last, int depth) {
  while (last - first > 16) {
    if (depth == 0) {
      SL_NAME(heap_select)(first, last, last);
      while (last - first > 1) {
        --last;
        SL_NAME(pop_heap)(first, last, last);
      }
      return;
    }
    --depth;
    SL_T *cut = SL_NAME(partition_pivot)(first, last);
    SL_NAME(introsort_loop)(cut, last, depth);
    last = cut;
  }
}

SL_MAYBE_UNUSED static void SL_NAME(sort)(SL_T *first, SL_T *last) {
  if (first == last) return;
  SL_NAME(introsort_loop)(first, last, SL_NAME(lg)(last - first) * 2);
  if (last - first > 16) {
    SL_NAME(insertion_sort)(first, first + 16);
    for (SL_T *i = first + 16; i != last; ++i) SL_NAME(unguarded_linear_insert)(first, i);
  } else {
    SL_NAME(insertion_sort)(first, last);
  }
}
