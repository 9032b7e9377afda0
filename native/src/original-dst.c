/*
 * originalDst(fd) returns the destination a connection had before iptables REDIRECT/DNAT
 * rewrote it: getsockopt(SO_ORIGINAL_DST) for IPv4, getsockopt(IP6T_SO_ORIGINAL_DST) for IPv6.
 * Returns { address, port } or undefined when the socket was not redirected (ENOENT) or is
 * not an IP socket; throws on other errors.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>; both are 80. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static napi_value make_result(napi_env env, const char *address, unsigned port) {
  napi_value obj, addr, p;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &addr));
  CHECK(napi_create_uint32(env, port, &p));
  CHECK(napi_set_named_property(env, obj, "address", addr));
  CHECK(napi_set_named_property(env, obj, "port", p));
  return obj;
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, err == EBADF ? "EBADF" : "ERR_ORIGINAL_DST", msg);
  return NULL;
}

napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], undef;
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_undefined(env, &undef));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "originalDst(fd): fd must be a non-negative integer");
    return NULL;
  }

  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return throw_errno(env, "getsockname", errno);

  char text[INET6_ADDRSTRLEN];
  if (local.ss_family == AF_INET) {
    struct sockaddr_in dst;
    len = sizeof dst;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
      if (errno == ENOENT || errno == ENOPROTOOPT) return undef;
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
    }
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    return make_result(env, text, ntohs(dst.sin_port));
  }
  if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    len = sizeof dst;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) == 0) {
      inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
      /* A dual-stack socket reports IPv4 connections as ::ffff:a.b.c.d, as Node does. */
      return make_result(env, text, ntohs(dst.sin6_port));
    }
    if (errno != ENOENT && errno != ENOPROTOOPT) return throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
    /* An IPv4 connection accepted on a dual-stack IPv6 socket is tracked by the IPv4 table. */
    struct sockaddr_in dst4;
    len = sizeof dst4;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst4, &len) != 0) {
      if (errno == ENOENT || errno == ENOPROTOOPT) return undef;
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
    }
    inet_ntop(AF_INET, &dst4.sin_addr, text, sizeof text);
    return make_result(env, text, ntohs(dst4.sin_port));
  }
  return undef;
}
