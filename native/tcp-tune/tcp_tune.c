/*
 * tcp_tune: the TCP socket options Node cannot set (TCP_USER_TIMEOUT,
 * TCP_KEEPINTVL, TCP_KEEPCNT), so that the kernel gives up on a dead path
 * within the same bounded time as the wire's failure detector.
 *
 *   tune(fd, userTimeoutMs, keepIdleS, keepIntvlS, keepCnt) -> 0 or errno
 *   get(fd) -> [userTimeoutMs, keepIdleS, keepIntvlS, keepCnt] (for tests)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <sys/socket.h>

static int set_int(int fd, int opt, int v) {
  return setsockopt(fd, IPPROTO_TCP, opt, &v, sizeof v) == 0 ? 0 : errno;
}

static napi_value tune(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t a[5] = {0};
  napi_value result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "tune(fd, userTimeoutMs, keepIdleS, keepIntvlS, keepCnt)");
    return NULL;
  }
  for (int i = 0; i < 5; i++) {
    if (napi_get_value_int32(env, argv[i], &a[i]) != napi_ok || a[i] < 0) {
      napi_throw_type_error(env, NULL, "tune: arguments must be non-negative integers");
      return NULL;
    }
  }
  int err = set_int(a[0], TCP_USER_TIMEOUT, a[1]);
  if (!err) err = set_int(a[0], TCP_KEEPIDLE, a[2]);
  if (!err) err = set_int(a[0], TCP_KEEPINTVL, a[3]);
  if (!err) err = set_int(a[0], TCP_KEEPCNT, a[4]);
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value get(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_value arr;
  const int opts[4] = {TCP_USER_TIMEOUT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT};
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "get(fd)");
    return NULL;
  }
  napi_create_array_with_length(env, 4, &arr);
  for (uint32_t i = 0; i < 4; i++) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, IPPROTO_TCP, opts[i], &v, &len) != 0) v = -errno;
    napi_value x;
    napi_create_int32(env, v, &x);
    napi_set_element(env, arr, i, x);
  }
  return arr;
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "tune", NAPI_AUTO_LENGTH, tune, NULL, &f);
  napi_set_named_property(env, exports, "tune", f);
  napi_create_function(env, "get", NAPI_AUTO_LENGTH, get, NULL, &f);
  napi_set_named_property(env, exports, "get", f);
  return exports;
}
