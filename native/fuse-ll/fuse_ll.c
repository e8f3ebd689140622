/*
 * fuse_ll: libfuse 2.9's low-level (inode) API for Node, with answers sent
 * from the JavaScript thread and kernel cache invalidation.
 *
 * Why not fuse-native's path API: there, every request crosses four thread
 * wakeups (kernel -> FUSE thread -> JS thread -> FUSE thread -> kernel), the
 * FUSE thread waits for each answer, and the kernel may cache nothing that
 * another host can change, since the path API cannot invalidate. Here:
 *  - one session thread reads /dev/fuse and only queues each request for JS
 *    (a thread-safe function, drained in batches on the JS thread);
 *  - JS answers with fuse_reply_* directly (a write(2) to /dev/fuse from the
 *    JS thread), so an answer wakes the caller at once;
 *  - inodes are the filesystem's own numbers (the kernel's node ids), so an
 *    entry or attribute the kernel caches can be invalidated by number;
 *  - invalidations go through their own thread: the kernel takes the
 *    parent's inode lock for an entry invalidation, and that lock may be
 *    held by a request that waits for the JS thread to answer.
 *
 * JS API (all numbers are doubles; a request is its fuse_req_t pointer as a
 * double, exact since user-space pointers are below 2^47):
 *   mount(mountpoint, options, dispatch) -> handle | throws
 *       dispatch(op, req, ino, uid, gid, pid, a, b, c, d) per request;
 *       op 0 (ENDED) once the kernel connection is gone.
 *   close(handle)  after ENDED: joins the threads, frees the session
 *   exit(handle)   asks the session loop to stop (it stops at the next request)
 *   replyErr(req, errno)  (0: success without data)
 *   replyEntry(req, stat, attrTimeout, entryTimeout)   stat: Float64Array(15)
 *   replyCreate(req, stat, attrTimeout, entryTimeout, fh, openFlags)
 *   replyAttr(req, stat, attrTimeout)
 *   replyOpen(req, fh, openFlags)   openFlags: 1 direct_io, 2 keep_cache, 4 nonseekable
 *   replyWrite(req, count)
 *   replyBuf(req, buffer)
 *   replyReadlink(req, target)
 *   replyStatfs(req, Float64Array(9))
 *   replyXattrSize(req, size)
 *   replyDir(req, size, first, names[], inos[], modes[]) -> entries packed
 *   invalInode(handle, ino, off, len), invalEntry(handle, parent, name)
 *   barrier(handle, n)  once every invalidation queued before it is done,
 *                  dispatch(OP_NOTICED, 0, 0, 0, 0, 0, n) (never when the
 *                  session closed first: no kernel cache is left then)
 *   unref(handle)  the session no longer keeps Node's event loop alive
 *                  (unmounted, but open files still hold the connection)
 *   fd(handle) -> the /dev/fuse descriptor (tests)
 * stat layout: ino, mode, nlink, uid, gid, rdev, size, blocks, blksize,
 *   atime s, ns, mtime s, ns, ctime s, ns.
 */
#define FUSE_USE_VERSION 29
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

enum {
  OP_ENDED = 0, OP_LOOKUP, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK,
  OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE,
  OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR,
  OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_CREATE, OP_ACCESS,
  /* not a request: the notice thread reached a barrier (n[0]: its number) */
  OP_NOTICED
};

/* One request on its way to JS. Strings and data live in `tail`. */
typedef struct {
  int op;
  fuse_req_t req;
  uint64_t ino;
  uint32_t uid, gid, pid;
  /* up to four arguments: numbers, or strings / data (kinds per op) */
  double n[4];
  const char *s[2];
  const char *data;
  size_t len;
  char tail[];
} call_t;

typedef struct notice {
  struct notice *next;
  int entry; /* 1: entry (parent, name), 0: inode (ino, off, len), 2: barrier (number in ino) */
  uint64_t ino;
  int64_t off, len;
  char name[];
} notice_t;

typedef struct {
  struct fuse_session *se;
  struct fuse_chan *ch;
  char *mountpoint;
  napi_threadsafe_function tsfn;
  pthread_t loop_thread, notice_thread;
  int loop_started, notice_started;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  notice_t *head, *tail_notice;
  int stopping;
  int closed;
} session_t;

/* ---------- session thread: requests to JS ---------- */

static call_t *new_call(int op, fuse_req_t req, uint64_t ino, const char *s0, const char *s1, const char *data, size_t len) {
  size_t l0 = s0 ? strlen(s0) + 1 : 0, l1 = s1 ? strlen(s1) + 1 : 0;
  call_t *c = malloc(sizeof(call_t) + l0 + l1 + len);
  if (!c) return NULL;
  memset(c, 0, sizeof(call_t));
  c->op = op;
  c->req = req;
  c->ino = ino;
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  c->uid = ctx->uid;
  c->gid = ctx->gid;
  c->pid = ctx->pid;
  char *p = c->tail;
  if (s0) { memcpy(p, s0, l0); c->s[0] = p; p += l0; }
  if (s1) { memcpy(p, s1, l1); c->s[1] = p; p += l1; }
  if (data) { memcpy(p, data, len); c->data = p; c->len = len; }
  return c;
}

static void send_call(fuse_req_t req, call_t *c) {
  session_t *s = fuse_req_userdata(req);
  if (!c || napi_call_threadsafe_function(s->tsfn, c, napi_tsfn_nonblocking) != napi_ok) {
    free(c);
    fuse_reply_err(req, c ? EIO : ENOMEM);
  }
}

/* A request with optional strings or data and up to three numbers. */
static void send_req(int op, fuse_req_t req, fuse_ino_t ino, const char *s0, const char *s1, const char *data, size_t len,
                     double a, double b, double c) {
  call_t *call = new_call(op, req, ino, s0, s1, data, len);
  if (call) { call->n[0] = a; call->n[1] = b; call->n[2] = c; }
  send_call(req, call);
}

#define FH(fi) ((fi) ? (double)(fi)->fh : 0.0)

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  send_req(OP_LOOKUP, req, parent, name, NULL, NULL, 0, 0, 0, 0);
}
static void ll_forget(fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  /* inode numbers are never reused and the model frees unlinked files by its
   * own open counts, so the kernel's lookup counts need no bookkeeping */
  fuse_reply_none(req);
}
static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  fuse_reply_none(req);
}
static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  send_req(OP_GETATTR, req, ino, NULL, NULL, NULL, 0, FH(fi), 0, 0);
}
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set, struct fuse_file_info *fi) {
  /* data: mode, uid, gid, size, atime s, ns, mtime s, ns */
  double v[8] = { a->st_mode, a->st_uid, a->st_gid, (double)a->st_size,
    (double)a->st_atim.tv_sec, (double)a->st_atim.tv_nsec, (double)a->st_mtim.tv_sec, (double)a->st_mtim.tv_nsec };
  send_req(OP_SETATTR, req, ino, NULL, NULL, (const char *)v, sizeof v, to_set, FH(fi), 0);
}
static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  send_req(OP_READLINK, req, ino, NULL, NULL, NULL, 0, 0, 0, 0);
}
static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  send_req(OP_MKNOD, req, parent, name, NULL, NULL, 0, mode, rdev, 0);
}
static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  send_req(OP_MKDIR, req, parent, name, NULL, NULL, 0, mode, 0, 0);
}
static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  send_req(OP_UNLINK, req, parent, name, NULL, NULL, 0, 0, 0, 0);
}
static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  send_req(OP_RMDIR, req, parent, name, NULL, NULL, 0, 0, 0, 0);
}
static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  send_req(OP_SYMLINK, req, parent, name, link, NULL, 0, 0, 0, 0);
}
static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname) {
  send_req(OP_RENAME, req, parent, name, newname, NULL, 0, newparent, 0, 0);
}
static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  send_req(OP_LINK, req, ino, newname, NULL, NULL, 0, newparent, 0, 0);
}
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  send_req(OP_OPEN, req, ino, NULL, NULL, NULL, 0, fi->flags, 0, 0);
}
static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  send_req(OP_READ, req, ino, NULL, NULL, NULL, 0, fi->fh, size, off);
}
static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  send_req(OP_WRITE, req, ino, NULL, NULL, buf, size, fi->fh, off, 0);
}
static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  send_req(OP_FLUSH, req, ino, NULL, NULL, NULL, 0, fi->fh, 0, 0);
}
static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  send_req(OP_RELEASE, req, ino, NULL, NULL, NULL, 0, fi->fh, 0, 0);
}
static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  send_req(OP_FSYNC, req, ino, NULL, NULL, NULL, 0, fi->fh, datasync, 0);
}
static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  send_req(OP_OPENDIR, req, ino, NULL, NULL, NULL, 0, fi->flags, 0, 0);
}
static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  send_req(OP_READDIR, req, ino, NULL, NULL, NULL, 0, fi->fh, size, off);
}
static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  send_req(OP_RELEASEDIR, req, ino, NULL, NULL, NULL, 0, fi->fh, 0, 0);
}
static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  send_req(OP_FSYNCDIR, req, ino, NULL, NULL, NULL, 0, fi->fh, datasync, 0);
}
static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  send_req(OP_STATFS, req, ino, NULL, NULL, NULL, 0, 0, 0, 0);
}
static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  send_req(OP_SETXATTR, req, ino, name, NULL, value, size, flags, 0, 0);
}
static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  send_req(OP_GETXATTR, req, ino, name, NULL, NULL, 0, size, 0, 0);
}
static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  send_req(OP_LISTXATTR, req, ino, NULL, NULL, NULL, 0, size, 0, 0);
}
static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  send_req(OP_REMOVEXATTR, req, ino, name, NULL, NULL, 0, 0, 0, 0);
}
static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  send_req(OP_ACCESS, req, ino, NULL, NULL, NULL, 0, mask, 0, 0);
}
static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  send_req(OP_CREATE, req, parent, name, NULL, NULL, 0, mode, fi->flags, 0);
}

static const struct fuse_lowlevel_ops ll_ops = {
  .lookup = ll_lookup, .forget = ll_forget, .forget_multi = ll_forget_multi, .getattr = ll_getattr,
  .setattr = ll_setattr, .readlink = ll_readlink, .mknod = ll_mknod, .mkdir = ll_mkdir,
  .unlink = ll_unlink, .rmdir = ll_rmdir, .symlink = ll_symlink, .rename = ll_rename, .link = ll_link,
  .open = ll_open, .read = ll_read, .write = ll_write, .flush = ll_flush, .release = ll_release,
  .fsync = ll_fsync, .opendir = ll_opendir, .readdir = ll_readdir, .releasedir = ll_releasedir,
  .fsyncdir = ll_fsyncdir, .statfs = ll_statfs, .setxattr = ll_setxattr, .getxattr = ll_getxattr,
  .listxattr = ll_listxattr, .removexattr = ll_removexattr, .access = ll_access, .create = ll_create,
};

static void *loop_main(void *arg) {
  session_t *s = arg;
  fuse_session_loop(s->se);
  call_t *c = calloc(1, sizeof(call_t));
  if (c) {
    c->op = OP_ENDED;
    if (napi_call_threadsafe_function(s->tsfn, c, napi_tsfn_blocking) != napi_ok) free(c);
  }
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return NULL;
}

/* ---------- notice thread: kernel cache invalidation ---------- */

static void *notice_main(void *arg) {
  session_t *s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (!s->head && !s->stopping) pthread_cond_wait(&s->cond, &s->lock);
    if (!s->head) break;
    notice_t *n = s->head;
    s->head = n->next;
    if (!s->head) s->tail_notice = NULL;
    pthread_mutex_unlock(&s->lock);
    /* ENOENT: the kernel does not hold that inode or name; nothing to drop */
    if (n->entry == 1) fuse_lowlevel_notify_inval_entry(s->ch, n->ino, n->name, strlen(n->name));
    else if (n->entry == 0) fuse_lowlevel_notify_inval_inode(s->ch, n->ino, n->off, n->len);
    else {
      /* every notice queued before this one is done: tell JS */
      call_t *c = calloc(1, sizeof(call_t));
      if (c) {
        c->op = OP_NOTICED;
        c->n[0] = (double)n->ino;
        if (napi_call_threadsafe_function(s->tsfn, c, napi_tsfn_blocking) != napi_ok) free(c);
      }
    }
    free(n);
    pthread_mutex_lock(&s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return NULL;
}

static void push_notice(session_t *s, notice_t *n) {
  pthread_mutex_lock(&s->lock);
  if (s->stopping) {
    free(n);
  } else {
    n->next = NULL;
    if (s->tail_notice) s->tail_notice->next = n; else s->head = n;
    s->tail_notice = n;
    pthread_cond_signal(&s->cond);
  }
  pthread_mutex_unlock(&s->lock);
}

/* ---------- JS side ---------- */

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "fuse_ll: " #call " failed"); return NULL; } } while (0)

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static napi_value str(napi_env env, const char *p) {
  napi_value r;
  if (!p) { napi_get_null(env, &r); return r; }
  napi_create_string_utf8(env, p, NAPI_AUTO_LENGTH, &r);
  return r;
}

static napi_value buf_copy(napi_env env, const char *p, size_t len) {
  napi_value r;
  void *dst;
  napi_create_buffer_copy(env, len, p, &dst, &r);
  return r;
}

static void call_js(napi_env env, napi_value dispatch, void *context, void *data) {
  call_t *c = data;
  if (env == NULL) {
    /* the environment is going away: no one can answer any more */
    if (c->op != OP_ENDED && c->op != OP_NOTICED) fuse_reply_err(c->req, EIO);
    free(c);
    return;
  }
  napi_value argv[10], undef;
  napi_get_undefined(env, &undef);
  for (int i = 0; i < 10; i++) argv[i] = undef;
  argv[0] = num(env, c->op);
  argv[1] = num(env, (double)(uintptr_t)c->req);
  argv[2] = num(env, (double)c->ino);
  argv[3] = num(env, c->uid);
  argv[4] = num(env, c->gid);
  argv[5] = num(env, c->pid);
  switch (c->op) {
    case OP_NOTICED:
      argv[6] = num(env, c->n[0]);
      break;
    case OP_LOOKUP: case OP_UNLINK: case OP_RMDIR: case OP_READLINK: case OP_STATFS: case OP_REMOVEXATTR:
      argv[6] = str(env, c->s[0]);
      break;
    case OP_MKNOD: case OP_MKDIR: case OP_CREATE:
      argv[6] = str(env, c->s[0]);
      argv[7] = num(env, c->n[0]);
      argv[8] = num(env, c->n[1]);
      break;
    case OP_SYMLINK:
      argv[6] = str(env, c->s[0]);
      argv[7] = str(env, c->s[1]);
      break;
    case OP_RENAME:
      argv[6] = str(env, c->s[0]);
      argv[7] = num(env, c->n[0]);
      argv[8] = str(env, c->s[1]);
      break;
    case OP_LINK:
      argv[6] = num(env, c->n[0]);
      argv[7] = str(env, c->s[0]);
      break;
    case OP_SETATTR: {
      napi_value arr;
      const double *v = (const double *)c->data;
      napi_create_array_with_length(env, 8, &arr);
      for (uint32_t i = 0; i < 8; i++) napi_set_element(env, arr, i, num(env, v[i]));
      argv[6] = num(env, c->n[0]);
      argv[7] = arr;
      argv[8] = num(env, c->n[1]);
      break;
    }
    case OP_WRITE:
      argv[6] = num(env, c->n[0]);
      argv[7] = buf_copy(env, c->data, c->len);
      argv[8] = num(env, c->n[1]);
      break;
    case OP_SETXATTR:
      argv[6] = str(env, c->s[0]);
      argv[7] = buf_copy(env, c->data, c->len);
      argv[8] = num(env, c->n[0]);
      break;
    case OP_GETXATTR:
      argv[6] = str(env, c->s[0]);
      argv[7] = num(env, c->n[0]);
      break;
    default:
      for (int i = 0; i < 4; i++) argv[6 + i] = num(env, c->n[i]);
  }
  free(c);
  napi_value global;
  napi_get_global(env, &global);
  napi_call_function(env, global, dispatch, 10, argv, NULL);
  /* an exception thrown by dispatch is a bug in the JS layer: let Node report it */
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

static void session_finalize(napi_env env, void *data, void *hint) {
  /* the handle object was collected; the session was closed before (or the
   * process is exiting with the mount still up, and the kernel cleans up) */
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) { napi_throw_type_error(env, NULL, "mount(mountpoint, options, dispatch)"); return NULL; }
  char mnt[4096], opts[8192];
  size_t l;
  if (napi_get_value_string_utf8(env, argv[0], mnt, sizeof mnt, &l) != napi_ok || l >= sizeof mnt - 1) {
    napi_throw_type_error(env, NULL, "mount: mountpoint must be a string");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[1], opts, sizeof opts, &l) != napi_ok || l >= sizeof opts - 1) {
    napi_throw_type_error(env, NULL, "mount: options must be a string");
    return NULL;
  }
  session_t *s = calloc(1, sizeof(session_t));
  if (!s) { napi_throw_error(env, "ENOMEM", "mount: out of memory"); return NULL; }
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cond, NULL);
  s->mountpoint = strdup(mnt);

  napi_value name;
  napi_create_string_utf8(env, "fuse_ll", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, s, call_js, &s->tsfn) != napi_ok) {
    free(s->mountpoint);
    free(s);
    napi_throw_error(env, NULL, "mount: cannot create the dispatch function");
    return NULL;
  }

  char *args_v[4] = { "walkenfs", NULL, NULL, NULL };
  int args_c = 1;
  if (opts[0]) { args_v[1] = "-o"; args_v[2] = opts; args_c = 3; }
  struct fuse_args args = FUSE_ARGS_INIT(args_c, args_v);
  s->ch = fuse_mount(s->mountpoint, &args);
  if (!s->ch) {
    fuse_opt_free_args(&args);
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    free(s->mountpoint);
    free(s);
    napi_throw_error(env, NULL, "fuse_mount failed (see the message above)");
    return NULL;
  }
  /* children (fusermount, rrdtool, ...) must not keep the connection open */
  int fd = fuse_chan_fd(s->ch);
  fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  s->se = fuse_lowlevel_new(&args, &ll_ops, sizeof ll_ops, s);
  fuse_opt_free_args(&args);
  if (!s->se) {
    fuse_unmount(s->mountpoint, s->ch);
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    free(s->mountpoint);
    free(s);
    napi_throw_error(env, NULL, "fuse_lowlevel_new failed (an unknown option? see the message above); unmounted again");
    return NULL;
  }
  fuse_session_add_chan(s->se, s->ch);
  /* the notice thread calls JS too (barriers): it holds its own reference, released when it ends */
  if (napi_acquire_threadsafe_function(s->tsfn) == napi_ok) {
    if (pthread_create(&s->notice_thread, NULL, notice_main, s) == 0) s->notice_started = 1;
    else napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  }
  if (pthread_create(&s->loop_thread, NULL, loop_main, s) == 0) s->loop_started = 1;
  if (!s->loop_started || !s->notice_started) {
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->notice_started) pthread_join(s->notice_thread, NULL);
    fuse_session_remove_chan(s->ch);
    fuse_session_destroy(s->se);
    fuse_unmount(s->mountpoint, s->ch);
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    free(s->mountpoint);
    free(s);
    napi_throw_error(env, NULL, "mount: cannot start the session threads; unmounted again");
    return NULL;
  }
  napi_value handle;
  CHECK(napi_create_external(env, s, session_finalize, NULL, &handle));
  return handle;
}

static session_t *get_session(napi_env env, napi_value v) {
  session_t *s = NULL;
  if (napi_get_value_external(env, v, (void **)&s) != napi_ok || !s) {
    napi_throw_type_error(env, NULL, "not a fuse_ll session");
    return NULL;
  }
  return s;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = get_session(env, argv[0]);
  if (!s || s->closed) return NULL;
  s->closed = 1;
  pthread_join(s->loop_thread, NULL);
  pthread_mutex_lock(&s->lock);
  s->stopping = 1;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->notice_thread, NULL);
  while (s->head) { notice_t *n = s->head; s->head = n->next; free(n); }
  fuse_session_remove_chan(s->ch);
  fuse_session_destroy(s->se);
  /* the kernel connection is gone already; this closes the descriptor */
  fuse_chan_destroy(s->ch);
  free(s->mountpoint);
  /* `s` itself stays allocated: the handle object may still point at it */
  return NULL;
}

static napi_value js_exit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = get_session(env, argv[0]);
  if (s && !s->closed) fuse_session_exit(s->se);
  return NULL;
}

static napi_value js_unref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = get_session(env, argv[0]);
  if (s && !s->closed) napi_unref_threadsafe_function(env, s->tsfn);
  return NULL;
}

static napi_value js_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  return num(env, s->closed ? -1 : fuse_chan_fd(s->ch));
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "fuse_ll: too few arguments");
    return 0;
  }
  return 1;
}

static fuse_req_t get_req(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return (fuse_req_t)(uintptr_t)d;
}

static double get_num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

static int get_f64(napi_env env, napi_value v, size_t want, double **out) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array || length < want) {
    napi_throw_type_error(env, NULL, "fuse_ll: expected a Float64Array");
    return 0;
  }
  *out = data;
  return 1;
}

static void fill_stat(struct stat *st, const double *v) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)v[0];
  st->st_mode = (mode_t)v[1];
  st->st_nlink = (nlink_t)v[2];
  st->st_uid = (uid_t)v[3];
  st->st_gid = (gid_t)v[4];
  st->st_rdev = (dev_t)v[5];
  st->st_size = (off_t)v[6];
  st->st_blocks = (blkcnt_t)v[7];
  st->st_blksize = (blksize_t)v[8];
  st->st_atim.tv_sec = (time_t)v[9];
  st->st_atim.tv_nsec = (long)v[10];
  st->st_mtim.tv_sec = (time_t)v[11];
  st->st_mtim.tv_nsec = (long)v[12];
  st->st_ctim.tv_sec = (time_t)v[13];
  st->st_ctim.tv_nsec = (long)v[14];
}

static napi_value answer(napi_env env, int r) {
  /* fuse_reply_* fail with -ENOENT when the request was interrupted: not ours to report */
  return num(env, r);
}

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  napi_value a[2];
  if (!get_args(env, info, 2, a)) return NULL;
  return answer(env, fuse_reply_err(get_req(env, a[0]), (int)get_num(env, a[1])));
}

static int fill_entry(napi_env env, napi_value *a, struct fuse_entry_param *e) {
  double *v;
  if (!get_f64(env, a[1], 15, &v)) return 0;
  memset(e, 0, sizeof *e);
  fill_stat(&e->attr, v);
  e->ino = (fuse_ino_t)v[0];
  e->generation = 0;
  e->attr_timeout = get_num(env, a[2]);
  e->entry_timeout = get_num(env, a[3]);
  return 1;
}

static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  napi_value a[4];
  struct fuse_entry_param e;
  if (!get_args(env, info, 4, a) || !fill_entry(env, a, &e)) return NULL;
  return answer(env, fuse_reply_entry(get_req(env, a[0]), &e));
}

static void fill_fi(struct fuse_file_info *fi, double fh, int flags) {
  memset(fi, 0, sizeof *fi);
  fi->fh = (uint64_t)fh;
  fi->direct_io = (flags & 1) != 0;
  fi->keep_cache = (flags & 2) != 0;
  fi->nonseekable = (flags & 4) != 0;
}

static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  napi_value a[6];
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  if (!get_args(env, info, 6, a) || !fill_entry(env, a, &e)) return NULL;
  fill_fi(&fi, get_num(env, a[4]), (int)get_num(env, a[5]));
  return answer(env, fuse_reply_create(get_req(env, a[0]), &e, &fi));
}

static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  napi_value a[3];
  double *v;
  struct stat st;
  if (!get_args(env, info, 3, a) || !get_f64(env, a[1], 15, &v)) return NULL;
  fill_stat(&st, v);
  return answer(env, fuse_reply_attr(get_req(env, a[0]), &st, get_num(env, a[2])));
}

static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  napi_value a[3];
  struct fuse_file_info fi;
  if (!get_args(env, info, 3, a)) return NULL;
  fill_fi(&fi, get_num(env, a[1]), (int)get_num(env, a[2]));
  return answer(env, fuse_reply_open(get_req(env, a[0]), &fi));
}

static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  napi_value a[2];
  if (!get_args(env, info, 2, a)) return NULL;
  return answer(env, fuse_reply_write(get_req(env, a[0]), (size_t)get_num(env, a[1])));
}

static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  napi_value a[2];
  void *data = NULL;
  size_t len = 0;
  if (!get_args(env, info, 2, a)) return NULL;
  if (napi_get_buffer_info(env, a[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "replyBuf: expected a Buffer");
    return NULL;
  }
  return answer(env, fuse_reply_buf(get_req(env, a[0]), data, len));
}

static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  napi_value a[2];
  size_t len;
  if (!get_args(env, info, 2, a)) return NULL;
  if (napi_get_value_string_utf8(env, a[1], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "replyReadlink: expected a string");
    return NULL;
  }
  char *p = malloc(len + 1);
  if (!p) return answer(env, fuse_reply_err(get_req(env, a[0]), ENOMEM));
  napi_get_value_string_utf8(env, a[1], p, len + 1, &len);
  int r = fuse_reply_readlink(get_req(env, a[0]), p);
  free(p);
  return answer(env, r);
}

static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  napi_value a[2];
  double *v;
  struct statvfs st;
  if (!get_args(env, info, 2, a) || !get_f64(env, a[1], 9, &v)) return NULL;
  memset(&st, 0, sizeof st);
  st.f_bsize = (unsigned long)v[0];
  st.f_frsize = (unsigned long)v[1];
  st.f_blocks = (fsblkcnt_t)v[2];
  st.f_bfree = (fsblkcnt_t)v[3];
  st.f_bavail = (fsblkcnt_t)v[4];
  st.f_files = (fsfilcnt_t)v[5];
  st.f_ffree = (fsfilcnt_t)v[6];
  st.f_favail = (fsfilcnt_t)v[7];
  st.f_namemax = (unsigned long)v[8];
  return answer(env, fuse_reply_statfs(get_req(env, a[0]), &st));
}

static napi_value js_reply_xattr_size(napi_env env, napi_callback_info info) {
  napi_value a[2];
  if (!get_args(env, info, 2, a)) return NULL;
  return answer(env, fuse_reply_xattr(get_req(env, a[0]), (size_t)get_num(env, a[1])));
}

/* replyDir(req, size, first, names, inos, modes): entries from index
 * `first` on, as many as fit in `size` bytes; each entry's offset is its
 * index + 1, so the kernel's next readdir starts after it. */
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  napi_value a[6];
  if (!get_args(env, info, 6, a)) return NULL;
  fuse_req_t req = get_req(env, a[0]);
  size_t size = (size_t)get_num(env, a[1]);
  uint32_t first = (uint32_t)get_num(env, a[2]), count = 0;
  napi_get_array_length(env, a[3], &count);
  char *buf = malloc(size ? size : 1);
  if (!buf) return answer(env, fuse_reply_err(req, ENOMEM));
  size_t used = 0;
  char name[1024];
  for (uint32_t i = first; i < count; i++) {
    napi_value vn, vi, vm;
    size_t nl;
    napi_get_element(env, a[3], i, &vn);
    napi_get_element(env, a[4], i, &vi);
    napi_get_element(env, a[5], i, &vm);
    if (napi_get_value_string_utf8(env, vn, name, sizeof name, &nl) != napi_ok) break;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = (ino_t)get_num(env, vi);
    st.st_mode = (mode_t)get_num(env, vm);
    size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)i + 1);
    if (need > size - used) break;
    used += need;
  }
  int r = fuse_reply_buf(req, buf, used);
  free(buf);
  return answer(env, r);
}

static napi_value js_inval_inode(napi_env env, napi_callback_info info) {
  napi_value a[4];
  if (!get_args(env, info, 4, a)) return NULL;
  session_t *s = get_session(env, a[0]);
  if (!s || s->closed) return NULL;
  notice_t *n = malloc(sizeof(notice_t));
  if (!n) return NULL;
  n->entry = 0;
  n->ino = (uint64_t)get_num(env, a[1]);
  n->off = (int64_t)get_num(env, a[2]);
  n->len = (int64_t)get_num(env, a[3]);
  push_notice(s, n);
  return NULL;
}

static napi_value js_inval_entry(napi_env env, napi_callback_info info) {
  napi_value a[3];
  size_t len;
  if (!get_args(env, info, 3, a)) return NULL;
  session_t *s = get_session(env, a[0]);
  if (!s || s->closed) return NULL;
  if (napi_get_value_string_utf8(env, a[2], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "invalEntry: name must be a string");
    return NULL;
  }
  notice_t *n = malloc(sizeof(notice_t) + len + 1);
  if (!n) return NULL;
  n->entry = 1;
  n->ino = (uint64_t)get_num(env, a[1]);
  n->off = n->len = 0;
  napi_get_value_string_utf8(env, a[2], n->name, len + 1, &len);
  push_notice(s, n);
  return NULL;
}

static napi_value js_barrier(napi_env env, napi_callback_info info) {
  napi_value a[2];
  if (!get_args(env, info, 2, a)) return NULL;
  session_t *s = get_session(env, a[0]);
  if (!s || s->closed) return NULL;
  notice_t *n = malloc(sizeof(notice_t));
  if (!n) return NULL;
  n->entry = 2;
  n->ino = (uint64_t)get_num(env, a[1]);
  n->off = n->len = 0;
  push_notice(s, n);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const struct { const char *name; napi_callback fn; } fns[] = {
    { "mount", js_mount }, { "close", js_close }, { "exit", js_exit }, { "unref", js_unref }, { "fd", js_fd },
    { "replyErr", js_reply_err }, { "replyEntry", js_reply_entry }, { "replyCreate", js_reply_create },
    { "replyAttr", js_reply_attr }, { "replyOpen", js_reply_open }, { "replyWrite", js_reply_write },
    { "replyBuf", js_reply_buf }, { "replyReadlink", js_reply_readlink }, { "replyStatfs", js_reply_statfs },
    { "replyXattrSize", js_reply_xattr_size }, { "replyDir", js_reply_dir },
    { "invalInode", js_inval_inode }, { "invalEntry", js_inval_entry }, { "barrier", js_barrier },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
