/*
 * stopLoopIdleTime() turns off libuv's idle-time accounting (UV_METRICS_IDLE_TIME) on this
 * process's event loop. Node turns it on at start-up for performance.eventLoopUtilization();
 * with it, libuv precedes every blocking epoll_wait with a non-blocking one, so that it can time
 * the wait: one more system call and loop turn for each wake-up. libuv has no call to turn it
 * off, so this clears the flag where libuv keeps it: the first field (`unsigned int flags`) of
 * the loop's internal fields, the layout of libuv 1.39 and later in the 1.x series. It does so
 * only when the version is in that range and the field holds exactly that flag; otherwise it
 * leaves the loop as it is and returns false.
 */
#include "addon.h"

#include <uv.h>

napi_value stop_loop_idle_time(napi_env env, napi_callback_info info) {
  (void)info;
  uv_loop_t *loop;
  napi_value result;
  CHECK(napi_get_uv_event_loop(env, &loop));
  unsigned int version = uv_version();
  unsigned int major = version >> 16, minor = (version >> 8) & 0xff;
  int stopped = 0;
  if (major == 1 && minor >= 39 && loop->internal_fields != NULL) {
    unsigned int *flags = (unsigned int *)loop->internal_fields;
    if (*flags == (unsigned int)UV_METRICS_IDLE_TIME) {
      *flags = 0;
      stopped = 1;
    }
  }
  CHECK(napi_get_boolean(env, stopped, &result));
  return result;
}
