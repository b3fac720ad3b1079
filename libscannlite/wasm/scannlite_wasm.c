/*
 * The WebAssembly build's only addition to libscannlite: the struct layouts scannlite.mjs
 * reads from wasm memory, checked at compile time so the JS and the C cannot drift apart
 * (docs/web.md), one export that hands those offsets to JS at run time as a second check, and
 * the three WASI functions wasi-libc's stdio would import.
 */
#include <stddef.h>
#include <stdint.h>

#include "scannlite.h"

#if !defined(__wasm32__)
#error "scannlite_wasm.c is for the wasm32 build only (libscannlite/wasm/Makefile)"
#endif

/* wasm32: 4-byte pointers and size_t, 8-byte aligned uint64_t, 4-byte enums. */
_Static_assert(sizeof(void *) == 4 && sizeof(size_t) == 4, "wasm32 pointers");
_Static_assert(offsetof(scannlite_info, dimension) == 0, "info.dimension");
_Static_assert(offsetof(scannlite_info, size) == 8, "info.size");
_Static_assert(offsetof(scannlite_info, num_leaves) == 16, "info.num_leaves");
_Static_assert(offsetof(scannlite_info, leaves_to_search) == 20, "info.leaves_to_search");
_Static_assert(offsetof(scannlite_info, distance) == 24 && sizeof(scannlite_distance) == 4, "info.distance");
_Static_assert(offsetof(scannlite_info, lookup) == 28 && sizeof(scannlite_lookup) == 4, "info.lookup");
_Static_assert(offsetof(scannlite_info, num_subspaces) == 32, "info.num_subspaces");
_Static_assert(sizeof(scannlite_info) == 40, "sizeof info");
_Static_assert(offsetof(scannlite_result, id) == 0, "result.id");
_Static_assert(offsetof(scannlite_result, distance) == 8, "result.distance");
_Static_assert(offsetof(scannlite_result, metadata) == 12, "result.metadata");
_Static_assert(offsetof(scannlite_result, metadata_size) == 16, "result.metadata_size");
_Static_assert(sizeof(scannlite_result) == 24, "sizeof result");

/* The layout above as JS sees it: sizeof(info), sizeof(result), then a version of this table.
 * scannlite.mjs refuses a module whose answer differs from the layout it was written for. */
__attribute__((export_name("scannlite_wasm_layout"))) uint32_t scannlite_wasm_layout(void) {
  return (uint32_t)sizeof(scannlite_info) | ((uint32_t)sizeof(scannlite_result) << 8) | (1u << 16);
}

/* The library does no I/O, but snprintf (its error messages) links wasi-libc's vfprintf, which
 * refers to stderr, whose FILE refers to the WASI calls below. Defining wasi-libc's import
 * symbols here resolves them inside the module, so scannlite.wasm imports nothing and runs on
 * any host; never called, they answer ENOSYS. (With another libc whose import names differ,
 * the imports come back and scannlite.mjs supplies the same ENOSYS stubs from JS.) */
#define WASI_ENOSYS 52
int32_t __imported_wasi_snapshot_preview1_fd_write(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t nwritten) {
  (void)fd, (void)iovs, (void)iovs_len, (void)nwritten;
  return WASI_ENOSYS;
}
int32_t __imported_wasi_snapshot_preview1_fd_seek(int32_t fd, int64_t offset, int32_t whence, int32_t newoffset) {
  (void)fd, (void)offset, (void)whence, (void)newoffset;
  return WASI_ENOSYS;
}
int32_t __imported_wasi_snapshot_preview1_fd_close(int32_t fd) {
  (void)fd;
  return WASI_ENOSYS;
}
