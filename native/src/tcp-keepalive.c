/*
 * tcpKeepalive(fd, time, interval, probes) turns SO_KEEPALIVE on and sets TCP_KEEPIDLE,
 * TCP_KEEPINTVL and TCP_KEEPCNT to the values given; 0 leaves that one at the kernel's default
 * (Envoy's upstream_connection_options.tcp_keepalive). Node's setKeepAlive cannot do this: with a
 * delay, libuv also forces a 1 s interval and 10 probes. Returns the settings now in effect
 * { time, interval, probes }, read back from the socket; throws on an error.
 */
#include "addon.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, err == EBADF ? "EBADF" : "ERR_TCP_KEEPALIVE", msg);
  return NULL;
}

static const struct {
  int opt;
  const char *name;
} OPTIONS[] = {{TCP_KEEPIDLE, "time"}, {TCP_KEEPINTVL, "interval"}, {TCP_KEEPCNT, "probes"}};

napi_value tcp_keepalive(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out, v;
  int32_t fd;
  uint32_t values[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "tcpKeepalive(fd, time, interval, probes): fd must be a non-negative integer");
    return NULL;
  }
  for (int i = 0; i < 3; i++) {
    if (napi_get_value_uint32(env, argv[i + 1], &values[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "tcpKeepalive(fd, time, interval, probes): time, interval and probes must be non-negative integers");
      return NULL;
    }
  }
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0) return throw_errno(env, "setsockopt(SO_KEEPALIVE)", errno);
  CHECK(napi_create_object(env, &out));
  for (int i = 0; i < 3; i++) {
    int value = (int)values[i];
    if (value > 0 && setsockopt(fd, IPPROTO_TCP, OPTIONS[i].opt, &value, sizeof value) != 0) {
      char what[64];
      snprintf(what, sizeof what, "setsockopt(%s=%d)", OPTIONS[i].name, value);
      return throw_errno(env, what, errno);
    }
    socklen_t len = sizeof value;
    if (getsockopt(fd, IPPROTO_TCP, OPTIONS[i].opt, &value, &len) != 0) return throw_errno(env, "getsockopt", errno);
    CHECK(napi_create_uint32(env, (uint32_t)value, &v));
    CHECK(napi_set_named_property(env, out, OPTIONS[i].name, v));
  }
  return out;
}
