/* Errors, varints, CRC32C and a bounds-checked Snappy decoder. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

scannlite_status sl_fail(sl_err *e, scannlite_status code, const char *fmt, ...) {
  if (e != NULL && e->buf != NULL && e->size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->buf, e->size, fmt, ap);
    va_end(ap);
    /* One printable ASCII line whatever a file put into it (names of zip entries, say). */
    for (char *c = e->buf; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?';
  }
  return code;
}

int sl_varint(const uint8_t *buf, size_t limit, size_t *pos, unsigned max_bits, uint64_t *out) {
  uint64_t result = 0;
  unsigned shift = 0;
  size_t p = *pos;
  while (shift < max_bits + 7 && shift < 64) {
    if (p >= limit) return 0;
    uint8_t byte = buf[p++];
    result |= (uint64_t)(byte & 0x7F) << shift;
    if (!(byte & 0x80)) {
      if (max_bits < 64 && (result >> max_bits) != 0) return 0;
      if (shift == 63 && byte > 1) return 0;
      *pos = p;
      *out = result;
      return 1;
    }
    shift += 7;
  }
  return 0;
}

void sl_crc32c_init(sl_crc_tables *t) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    t->t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) t->t[s][i] = (t->t[s - 1][i] >> 8) ^ t->t[0][t->t[s - 1][i] & 0xFF];
}

uint32_t sl_crc32c(const sl_crc_tables *t, uint32_t crc, const uint8_t *p, size_t n) {
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo = c ^ sl_u32(p), hi = sl_u32(p + 4);
    c = t->t[7][lo & 0xFF] ^ t->t[6][(lo >> 8) & 0xFF] ^ t->t[5][(lo >> 16) & 0xFF] ^ t->t[4][lo >> 24] ^
        t->t[3][hi & 0xFF] ^ t->t[2][(hi >> 8) & 0xFF] ^ t->t[1][(hi >> 16) & 0xFF] ^ t->t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t->t[0][(c ^ *p++) & 0xFF];
  return ~c;
}

int sl_snappy_length(const uint8_t *in, size_t n, size_t *out_len) {
  size_t pos = 0;
  uint64_t len;
  if (!sl_varint(in, n, &pos, 32, &len)) return 0;
  /* No Snappy element expands more than 64 times: a longer declared length is a lie. */
  if (len > (uint64_t)64 * n) return 0;
  *out_len = (size_t)len;
  return 1;
}

int sl_snappy_decode(const uint8_t *in, size_t n, uint8_t *out, size_t out_len) {
  size_t pos = 0, o = 0;
  uint64_t declared;
  if (!sl_varint(in, n, &pos, 32, &declared) || declared != out_len) return 0;
  while (pos < n) {
    uint8_t tag = in[pos++];
    size_t len, offset;
    switch (tag & 3) {
      case 0: {
        len = (size_t)(tag >> 2) + 1;
        if (len > 60) {
          size_t extra = len - 60; /* 1..4 bytes of length - 1 */
          if (n - pos < extra) return 0;
          len = 0;
          for (size_t i = 0; i < extra; i++) len |= (size_t)in[pos + i] << (8 * i);
          len += 1;
          pos += extra;
          if (len == 0) return 0;
        }
        if (n - pos < len || out_len - o < len) return 0;
        memcpy(out + o, in + pos, len);
        pos += len;
        o += len;
        continue;
      }
      case 1:
        if (n - pos < 1) return 0;
        len = 4 + ((tag >> 2) & 7);
        offset = ((size_t)(tag >> 5) << 8) | in[pos];
        pos += 1;
        break;
      case 2:
        if (n - pos < 2) return 0;
        len = (size_t)(tag >> 2) + 1;
        offset = sl_u16(in + pos);
        pos += 2;
        break;
      default:
        if (n - pos < 4) return 0;
        len = (size_t)(tag >> 2) + 1;
        offset = sl_u32(in + pos);
        pos += 4;
        break;
    }
    if (offset == 0 || offset > o || out_len - o < len) return 0;
    for (size_t i = 0; i < len; i++, o++) out[o] = out[o - offset]; /* may overlap */
  }
  return o == out_len;
}
