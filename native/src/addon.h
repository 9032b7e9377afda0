/* Rigging's native addon (Node-API, ABI-stable across Node versions): what Node has no API for. */
#ifndef RIG_ADDON_H
#define RIG_ADDON_H

#include <node_api.h>

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error(env, NULL, "rig_native: Node-API call failed: " #call);   \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

napi_value original_dst(napi_env env, napi_callback_info info);
napi_value drop_resident_pages(napi_env env, napi_callback_info info);
napi_value release_free_malloc(napi_env env, napi_callback_info info);
napi_value malloc_totals(napi_env env, napi_callback_info info);
napi_value tcp_keepalive(napi_env env, napi_callback_info info);

#endif
