/* The LevelDB table ("SSTable") reader: footer, index block, data blocks, restart points,
 * masked CRC32C, Snappy. Zero copy except Snappy blocks, decompressed once, on first use.
 * Layout: LevelDB table_format.md; every length and offset is checked. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FOOTER_SIZE 48
#define TRAILER_SIZE 5
#define MAGIC 0xdb4775248b80fb57ull
#define MAX_KEY 1024

static const char CORRUPT[] = "corrupt on-device ScaNN index";

static uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* Bounds of the stored block at offset/size (and its trailer) in the table: reads nothing. */
static scannlite_status block_bounds(const sl_table *t, uint64_t offset, uint64_t size, const char *what, sl_err *e) {
  uint64_t end = t->size - FOOTER_SIZE;
  if (offset > end || size > end - offset || TRAILER_SIZE > end - offset - size)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: %s at offset %llu (size %llu) runs past the end of the table",
                   CORRUPT, what, (unsigned long long)offset, (unsigned long long)size);
  return SCANNLITE_OK;
}

/* Check the stored block at offset/size: bounds, trailer CRC (if check), and compression type. */
static scannlite_status raw_block(const sl_table *t, uint64_t offset, uint64_t size, int check, const char *what,
                                  sl_span *raw, uint8_t *ctype, sl_err *e) {
  scannlite_status s = block_bounds(t, offset, size, what, e);
  if (s) return s;
  raw->p = t->data + offset;
  raw->n = (size_t)size;
  *ctype = raw->p[size];
  if (check) {
    uint32_t crc = sl_crc32c(&t->crc, 0, raw->p, raw->n);
    crc = sl_crc32c(&t->crc, crc, raw->p + size, 1);
    if (mask_crc(crc) != sl_u32(raw->p + size + 1))
      return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: checksum mismatch in %s at offset %llu", CORRUPT, what,
                     (unsigned long long)offset);
  }
  if (*ctype > 1)
    return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: unsupported compression type %u in %s at offset %llu",
                   CORRUPT, *ctype, what, (unsigned long long)offset);
  return SCANNLITE_OK;
}

/* Contents of a block: its CRC checked, and decompressed into *owned if Snappy. */
static scannlite_status read_block(const sl_table *t, uint64_t offset, uint64_t size, const char *what,
                                   sl_span *out, uint8_t **owned, sl_err *e) {
  sl_span raw;
  uint8_t ctype;
  scannlite_status s = raw_block(t, offset, size, 1, what, &raw, &ctype, e);
  if (s) return s;
  *owned = NULL;
  if (ctype == 0) {
    *out = raw;
    return SCANNLITE_OK;
  }
  size_t len;
  if (!sl_snappy_length(raw.p, raw.n, &len))
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad snappy length in %s at offset %llu", CORRUPT, what,
                   (unsigned long long)offset);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory decompressing a %zu-byte block", len);
  if (!sl_snappy_decode(raw.p, raw.n, buf, len)) {
    free(buf);
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad snappy data in %s at offset %llu", CORRUPT, what,
                   (unsigned long long)offset);
  }
  *owned = buf;
  out->p = buf;
  out->n = len;
  return SCANNLITE_OK;
}

/* A parsed block: where its entries end and its restart array. */
typedef struct blk {
  const uint8_t *p;
  size_t limit;
  uint32_t restarts;
} blk;

static scannlite_status blk_init(blk *b, sl_span c, const char *what, sl_err *e) {
  if (c.n < 4) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: %s is too small (%zu bytes)", CORRUPT, what, c.n);
  uint32_t n = sl_u32(c.p + c.n - 4);
  if (n > (c.n - 4) / 4)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: %s claims %u restart points", CORRUPT, what, n);
  b->p = c.p;
  b->limit = c.n - 4 - 4 * (size_t)n;
  b->restarts = n;
  if (b->limit > 0 && n == 0)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: %s has entries but no restart points", CORRUPT, what);
  return SCANNLITE_OK;
}

/* Decode the entry at *pos: key into kbuf (prefix-shared with the previous one). */
static scannlite_status blk_entry(const blk *b, size_t *pos, uint8_t *kbuf, size_t *klen, sl_span *value,
                                  const char *what, sl_err *e) {
  uint64_t shared, unshared, vlen;
  size_t p = *pos;
  if (b->limit - p >= 3 && (b->p[p] | b->p[p + 1] | b->p[p + 2]) < 0x80) { /* three one-byte varints */
    shared = b->p[p];
    unshared = b->p[p + 1];
    vlen = b->p[p + 2];
    p += 3;
  } else if (!sl_varint(b->p, b->limit, &p, 32, &shared) || !sl_varint(b->p, b->limit, &p, 32, &unshared) ||
             !sl_varint(b->p, b->limit, &p, 32, &vlen)) {
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: truncated entry in %s", CORRUPT, what);
  }
  if (shared > *klen)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: %s shares %llu key bytes with a %zu-byte previous key", CORRUPT,
                   what, (unsigned long long)shared, *klen);
  if (unshared > b->limit - p || vlen > b->limit - p - unshared)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: an entry runs past the end of %s", CORRUPT, what);
  if (shared + unshared > MAX_KEY)
    return sl_fail(e, SCANNLITE_ERROR_UNSUPPORTED, "%s: a key of %s is longer than %d bytes", CORRUPT, what, MAX_KEY);
  memcpy(kbuf + shared, b->p + p, (size_t)unshared);
  *klen = (size_t)(shared + unshared);
  value->p = b->p + p + unshared;
  value->n = (size_t)vlen;
  *pos = p + (size_t)unshared + (size_t)vlen;
  return SCANNLITE_OK;
}

static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

/* LevelDB's Block::Iter::Seek: the first entry whose key >= target; *found = 0 if none. */
static scannlite_status blk_seek(const blk *b, const uint8_t *key, size_t key_len, int *found, uint8_t *kbuf,
                                 size_t *klen, sl_span *value, const char *what, sl_err *e) {
  *found = 0;
  if (b->limit == 0) return SCANNLITE_OK;
  uint32_t left = 0, right = b->restarts - 1;
  while (left < right) {
    uint32_t mid = left + (right - left + 1) / 2;
    size_t pos = sl_u32(b->p + b->limit + 4 * (size_t)mid), kl = 0;
    if (pos >= b->limit) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: a restart point of %s is past its entries", CORRUPT, what);
    sl_span v;
    scannlite_status s = blk_entry(b, &pos, kbuf, &kl, &v, what, e);
    if (s) return s;
    if (key_cmp(kbuf, kl, key, key_len) < 0) left = mid;
    else right = mid - 1;
  }
  size_t pos = sl_u32(b->p + b->limit + 4 * (size_t)left);
  if (pos >= b->limit) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: a restart point of %s is past its entries", CORRUPT, what);
  *klen = 0;
  while (pos < b->limit) {
    scannlite_status s = blk_entry(b, &pos, kbuf, klen, value, what, e);
    if (s) return s;
    if (key_cmp(kbuf, *klen, key, key_len) >= 0) {
      *found = 1;
      return SCANNLITE_OK;
    }
  }
  return SCANNLITE_OK;
}

static scannlite_status decode_handle(sl_span v, uint64_t *off, uint64_t *size, sl_err *e) {
  size_t pos = 0;
  if (!sl_varint(v.p, v.n, &pos, 64, off) || !sl_varint(v.p, v.n, &pos, 64, size))
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad block handle", CORRUPT);
  return SCANNLITE_OK;
}

scannlite_status sl_table_open(sl_table *t, const uint8_t *data, size_t size, sl_err *e) {
  memset(t, 0, sizeof *t);
  sl_crc32c_init(&t->crc);
  t->data = data;
  t->size = size;
  if (size == 0) return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not an on-device ScaNN index: the file is empty");
  if (size < FOOTER_SIZE)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT,
                   "not an on-device ScaNN index: %zu bytes is too short for an SSTable (the footer alone is %d)", size,
                   FOOTER_SIZE);
  if (sl_u64(data + size - 8) != MAGIC)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "not an on-device ScaNN index: bad SSTable magic number");
  size_t pos = size - FOOTER_SIZE;
  uint64_t moff, msize, ioff, isize;
  if (!sl_varint(data, size - 8, &pos, 64, &moff) || !sl_varint(data, size - 8, &pos, 64, &msize) ||
      !sl_varint(data, size - 8, &pos, 64, &ioff) || !sl_varint(data, size - 8, &pos, 64, &isize))
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: bad block handle in the footer", CORRUPT);
  sl_span meta;
  uint8_t *meta_owned = NULL;
  scannlite_status s = read_block(t, moff, msize, "the metaindex block", &meta, &meta_owned, e);
  free(meta_owned);
  if (s) return s;
  s = read_block(t, ioff, isize, "the index block", &t->index, &t->index_owned, e);
  if (s) return s;
  blk ib;
  s = blk_init(&ib, t->index, "the index block", e);
  if (s) return s;
  /* Count, then record, the data blocks. */
  uint8_t kbuf[MAX_KEY];
  size_t count = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t p = 0, klen = 0, i = 0;
    uint8_t prev[MAX_KEY];
    size_t prev_len = 0;
    while (p < ib.limit) {
      sl_span v;
      s = blk_entry(&ib, &p, kbuf, &klen, &v, "the index block", e);
      if (s) return s;
      if (pass == 0) {
        if (i > 0 && key_cmp(kbuf, klen, prev, prev_len) <= 0)
          return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: index block keys are not in ascending order", CORRUPT);
        memcpy(prev, kbuf, klen);
        prev_len = klen;
        i++;
        count++;
        continue;
      }
      sl_block *b = &t->blocks[i];
      s = decode_handle(v, &b->offset, &b->size, e);
      if (s) return s;
      if (i > 0 && b->offset < t->blocks[i - 1].offset + t->blocks[i - 1].size + TRAILER_SIZE)
        return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: data block %zu overlaps or precedes the one before", CORRUPT, i);
      /* Bounds only: the block's trailer is read on first use (sl_table_block), so opening
       * touches no page of the data blocks (docs/native.md, Memory). */
      s = block_bounds(t, b->offset, b->size, "a data block", e);
      if (s) return s;
      i++;
    }
    if (pass == 0) {
      if (count > 0) {
        t->blocks = calloc(count, sizeof *t->blocks);
        if (t->blocks == NULL) return sl_fail(e, SCANNLITE_ERROR_MEMORY, "out of memory for %zu blocks", count);
      }
      t->nblocks = count;
    }
  }
  return SCANNLITE_OK;
}

void sl_table_close(sl_table *t) {
  if (t->blocks)
    for (size_t i = 0; i < t->nblocks; i++) free(t->blocks[i].owned);
  free(t->blocks);
  free(t->index_owned);
  memset(t, 0, sizeof *t);
}

/* The first use of a block: its trailer read, contents located (or Snappy decompressed, its
 * CRC always checked then, as LevelDB does), published with release order. One thread does
 * it while others wait; a failure leaves the block untouched, so every later use fails too. */
static scannlite_status resolve_block(sl_block *b, const sl_table *t, int check, sl_err *e) {
  for (;;) {
    unsigned char st = atomic_load_explicit(&b->state, memory_order_acquire);
    if (st >= 2) return SCANNLITE_OK;
    if (st == 0 && atomic_compare_exchange_weak_explicit(&b->state, &st, 1, memory_order_acquire,
                                                          memory_order_relaxed))
      break;
  }
  sl_span raw;
  uint8_t ctype;
  scannlite_status s = raw_block(t, b->offset, b->size, check, "a data block", &raw, &ctype, e);
  if (!s && ctype == 1) {
    sl_span c;
    s = read_block(t, b->offset, b->size, "a data block", &c, &b->owned, e);
    if (!s) {
      b->contents = c.p;
      b->length = c.n;
      check = 1;
    }
  } else if (!s) {
    b->contents = raw.p;
    b->length = raw.n;
  }
  if (s) {
    atomic_store_explicit(&b->state, 0, memory_order_release);
    return s;
  }
  b->compressed = ctype;
  atomic_store_explicit(&b->state, check ? 3 : 2, memory_order_release);
  return SCANNLITE_OK;
}

scannlite_status sl_table_block(const sl_table *t, size_t block, int check, sl_err *e) {
  sl_block *b = &((sl_table *)t)->blocks[block];
  unsigned char st = atomic_load_explicit(&b->state, memory_order_acquire);
  if (st == 3 || (st == 2 && !check)) return SCANNLITE_OK;
  if (st < 2) return resolve_block(b, t, check, e);
  /* Contents known, CRC not yet checked: the check reads only, so threads may race to store 3. */
  sl_span raw;
  uint8_t ctype;
  scannlite_status s = raw_block(t, b->offset, b->size, 1, "a data block", &raw, &ctype, e);
  if (s) return s;
  atomic_store_explicit(&b->state, 3, memory_order_release);
  return SCANNLITE_OK;
}

scannlite_status sl_table_check_block(const sl_table *t, size_t block, sl_err *e) {
  return sl_table_block(t, block, 1, e);
}

scannlite_status sl_table_find_block(const sl_table *t, const uint8_t *key, size_t key_len, int *found, size_t *block,
                                     sl_err *e) {
  *found = 0;
  blk ib;
  scannlite_status s = blk_init(&ib, t->index, "the index block", e);
  if (s) return s;
  uint8_t kbuf[MAX_KEY];
  size_t klen;
  sl_span handle;
  int f;
  s = blk_seek(&ib, key, key_len, &f, kbuf, &klen, &handle, "the index block", e);
  if (s || !f) return s;
  uint64_t off, size;
  s = decode_handle(handle, &off, &size, e);
  if (s) return s;
  size_t lo = 0, hi = t->nblocks;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->blocks[mid].offset < off) lo = mid + 1;
    else hi = mid;
  }
  if (lo == t->nblocks || t->blocks[lo].offset != off || t->blocks[lo].size != size)
    return sl_fail(e, SCANNLITE_ERROR_FORMAT, "%s: the index block points at no data block", CORRUPT);
  *found = 1;
  *block = lo;
  return SCANNLITE_OK;
}

scannlite_status sl_table_get(const sl_table *t, const uint8_t *key, size_t key_len, int check, int *found,
                              sl_span *value, size_t *block, sl_err *e) {
  size_t lo;
  int f;
  scannlite_status s = sl_table_find_block(t, key, key_len, &f, &lo, e);
  *found = 0;
  if (s || !f) return s;
  if ((s = sl_table_block(t, lo, check, e)) != SCANNLITE_OK) return s;
  blk db;
  uint8_t kbuf[MAX_KEY];
  size_t klen;
  sl_span c = {t->blocks[lo].contents, t->blocks[lo].length};
  s = blk_init(&db, c, "a data block", e);
  if (s) return s;
  s = blk_seek(&db, key, key_len, &f, kbuf, &klen, value, "a data block", e);
  if (s) return s;
  if (f && key_cmp(kbuf, klen, key, key_len) == 0) {
    *found = 1;
    *block = lo;
  }
  return SCANNLITE_OK;
}
