#include "addon.h"

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  CHECK(napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, original_dst, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "originalDst", fn));
  CHECK(napi_create_function(env, "dropResidentPages", NAPI_AUTO_LENGTH, drop_resident_pages, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "dropResidentPages", fn));
  CHECK(napi_create_function(env, "releaseFreeMalloc", NAPI_AUTO_LENGTH, release_free_malloc, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "releaseFreeMalloc", fn));
  CHECK(napi_create_function(env, "mallocStats", NAPI_AUTO_LENGTH, malloc_totals, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "mallocStats", fn));
  CHECK(napi_create_function(env, "tcpKeepalive", NAPI_AUTO_LENGTH, tcp_keepalive, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "tcpKeepalive", fn));
  return exports;
}
