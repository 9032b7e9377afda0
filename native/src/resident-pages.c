/*
 * dropResidentPages(start, length) removes a range of this process's own mappings from its page
 * tables: madvise(MADV_DONTNEED). For a read-only file mapping that was never written (the node
 * executable's code and read-only data) nothing is lost: the pages stay in the page cache, and
 * those the process touches again fault back in from there. The caller picks the ranges (see
 * src/proxy/resident-trim.ts); a writable or copied-on-write range would lose its contents.
 *
 * releaseFreeMalloc() returns the free memory inside glibc's malloc arenas to the OS
 * (malloc_trim(0)): V8's compiler threads and libuv's threads each get an arena, and what they
 * free stays resident, fragmented, until trimmed. Returns whether anything was released; false
 * without glibc.
 *
 * mallocStats() reads glibc's malloc totals over every arena (mallinfo2): bytes in use, free
 * inside the arenas, and in chunks mmapped on their own. undefined without glibc.
 */
#include "addon.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

napi_value drop_resident_pages(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double start, length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  long page = sysconf(_SC_PAGESIZE);
  if (argc < 2 || napi_get_value_double(env, argv[0], &start) != napi_ok || napi_get_value_double(env, argv[1], &length) != napi_ok ||
      start < 0 || length <= 0 || (uint64_t)start % page != 0 || (uint64_t)length % page != 0) {
    napi_throw_type_error(env, NULL, "dropResidentPages(start, length): page-aligned non-negative numbers expected");
    return NULL;
  }
  if (madvise((void *)(uintptr_t)start, (size_t)length, MADV_DONTNEED) != 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "madvise(MADV_DONTNEED): %s", strerror(errno));
    napi_throw_error(env, "ERR_MADVISE", msg);
    return NULL;
  }
  napi_value undef;
  CHECK(napi_get_undefined(env, &undef));
  return undef;
}

napi_value release_free_malloc(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  napi_value result;
  CHECK(napi_get_boolean(env, released != 0, &result));
  return result;
}

napi_value malloc_totals(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  const struct { const char *name; size_t value; } fields[] = {
      {"arenaBytes", mi.arena}, {"inUseBytes", mi.uordblks}, {"freeBytes", mi.fordblks}, {"mmappedBytes", mi.hblkhd}};
  CHECK(napi_create_object(env, &result));
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    napi_value v;
    CHECK(napi_create_double(env, (double)fields[i].value, &v));
    CHECK(napi_set_named_property(env, result, fields[i].name, v));
  }
#else
  CHECK(napi_get_undefined(env, &result));
#endif
  return result;
}
