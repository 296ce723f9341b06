/* wigeon test support: servers, clients and seed data for the integration tests (see the header).
 */
#include "support/server_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arrow/array.h"

int wg_fx_tmpdir(char *out, size_t size) {
  snprintf(out, size, "/tmp/wigeon-test-XXXXXX");
  return mkdtemp(out) == NULL ? errno : 0;
}

void wg_fx_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* The registry: values (not the caller's structs, which may be gone with a failed test's stack). */
struct fx_entry {
  struct wg_server *server; /* or */
  pid_t pid;
  int generation;
  pid_t owner; /* a forked child (which inherits the registry) never releases its parent's */
};
static pthread_mutex_t fx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fx_entry fx_live[256];
static int fx_count, fx_generation, fx_atexit_done;

static void fx_release_all(void);

static void fx_register(struct wg_server *server, pid_t pid) {
  pthread_mutex_lock(&fx_lock);
  if (!fx_atexit_done) {
    atexit(fx_release_all);
    fx_atexit_done = 1;
  }
  if (fx_count < (int)(sizeof(fx_live) / sizeof(fx_live[0])))
    fx_live[fx_count++] = (struct fx_entry){server, pid, fx_generation, getpid()};
  else
    fprintf(stderr, "server fixture: more than %d live fixtures, not registered\n", fx_count);
  pthread_mutex_unlock(&fx_lock);
}

static void fx_unregister(struct wg_server *server, pid_t pid) {
  pthread_mutex_lock(&fx_lock);
  for (int i = 0; i < fx_count; i++) {
    if ((server != NULL && fx_live[i].server == server) || (pid > 0 && fx_live[i].pid == pid)) {
      fx_live[i] = fx_live[--fx_count];
      break;
    }
  }
  pthread_mutex_unlock(&fx_lock);
}

/* Releases (and unregisters) the entries of generation >= from: processes first (SIGKILL, reaped),
 * then servers. */
static void fx_release_from(int from) {
  struct fx_entry take[256];
  int n = 0;
  pthread_mutex_lock(&fx_lock);
  for (int i = 0; i < fx_count;) {
    if (fx_live[i].generation >= from && fx_live[i].owner == getpid()) {
      take[n++] = fx_live[i];
      fx_live[i] = fx_live[--fx_count];
    } else {
      i++;
    }
  }
  pthread_mutex_unlock(&fx_lock);
  for (int i = 0; i < n; i++) {
    /* not ours (any more): reaped by the test itself, or the child of another process */
    if (take[i].pid > 0 && waitpid(take[i].pid, NULL, WNOHANG) == 0) {
      fprintf(stderr, "  server fixture: killing server process %d left by the test\n",
              (int)take[i].pid);
      kill(take[i].pid, SIGKILL);
      waitpid(take[i].pid, NULL, 0);
    }
  }
  for (int i = 0; i < n; i++) {
    if (take[i].server != NULL) {
      fprintf(stderr, "  server fixture: stopping a server left by the test\n");
      struct wg_error err;
      if (wg_server_stop(take[i].server, &err) != 0)
        fprintf(stderr, "server stop: %s\n", err.message);
    }
  }
}

static void fx_release_all(void) {
  fx_release_from(0);
}

void wg_test_fixtures_begin(void) {
  pthread_mutex_lock(&fx_lock);
  fx_generation++;
  pthread_mutex_unlock(&fx_lock);
}

void wg_test_fixtures_end(int failed) {
  pthread_mutex_lock(&fx_lock);
  int from = fx_generation;
  fx_generation++; /* what starts after the test (in main) belongs to no test */
  pthread_mutex_unlock(&fx_lock);
  if (failed) fx_release_from(from);
}

int wg_test_fixtures_live(void) {
  pthread_mutex_lock(&fx_lock);
  int n = fx_count;
  pthread_mutex_unlock(&fx_lock);
  return n;
}

int wg_fx_server_start(struct wg_fx_server *fx, const struct wg_server_options *o) {
  struct wg_server_options opts = *o;
  if (opts.listen == NULL) opts.listen = "127.0.0.1:0";
  if (opts.db_path == NULL) opts.db_path = ":memory:";
  struct wg_error err = {""};
  int rc = wg_server_start(&fx->server, &opts, &fx->port, &err);
  if (rc != 0) {
    fprintf(stderr, "server start: %s\n", err.message);
    return rc;
  }
  snprintf(fx->uri, sizeof(fx->uri), "127.0.0.1:%d", fx->port);
  fx_register(fx->server, 0);
  return 0;
}

void wg_fx_server_stop(struct wg_fx_server *fx) {
  struct wg_error err;
  if (fx->server != NULL) fx_unregister(fx->server, 0);
  if (wg_server_stop(fx->server, &err) != 0) fprintf(stderr, "server stop: %s\n", err.message);
  fx->server = NULL;
}

int wg_fx_process_start(struct wg_fx_process *p, const char *const *args) {
  return wg_fx_process_start_nofile(p, args, 0);
}

static int process_start(struct wg_fx_process *p, const char *const *args, int nofile,
                         int64_t as_bytes);

int wg_fx_process_start_nofile(struct wg_fx_process *p, const char *const *args, int nofile) {
  return process_start(p, args, nofile, 0);
}

int wg_fx_process_start_as(struct wg_fx_process *p, const char *const *args, int64_t as_bytes) {
  return process_start(p, args, 0, as_bytes);
}

static int process_start(struct wg_fx_process *p, const char *const *args, int nofile,
                         int64_t as_bytes) {
  const char *build = getenv("WG_BUILD_DIR");
  char bin[1024];
  snprintf(bin, sizeof(bin), "%s/wigeon", build ? build : "build");
  int fds[2];
  if (pipe(fds) != 0) return errno;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    /* A test that fails half-way must not leave its server behind (ctest would wait for it). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (nofile > 0) {
      struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
    }
    if (as_bytes > 0) {
      struct rlimit rl = {(rlim_t)as_bytes, (rlim_t)as_bytes};
      if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(126);
    }
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const char *argv[64] = {bin, "serve", "--listen", "127.0.0.1:0"};
    int n = 4;
    for (int i = 0; args != NULL && args[i] != NULL && n < 63; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  p->pid = pid;
  p->port = 0;
  FILE *f = fdopen(fds[0], "r");
  char line[256];
  while (fgets(line, sizeof(line), f) != NULL) {
    const char *at = strstr(line, "listening on grpc://");
    if (at != NULL) {
      const char *colon = strrchr(line, ':');
      p->port = atoi(colon + 1);
      break;
    }
  }
  fclose(f); /* the child may still write: its stdout is a closed pipe then, which is fine */
  if (p->port <= 0) {
    int st;
    waitpid(pid, &st, 0);
    return EIO;
  }
  snprintf(p->uri, sizeof(p->uri), "127.0.0.1:%d", p->port);
  fx_register(NULL, pid);
  return 0;
}

int wg_fx_process_stop(struct wg_fx_process *p, int sig) {
  if (p->pid <= 0) return -1;
  kill(p->pid, sig);
  int st = 0;
  for (int i = 0; i < 600; i++) { /* up to 60 s */
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      fx_unregister(NULL, p->pid);
      p->pid = 0;
      return st;
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(p->pid, SIGKILL);
  waitpid(p->pid, &st, 0);
  fx_unregister(NULL, p->pid);
  p->pid = 0;
  return -1;
}

int64_t wg_fx_process_kib(pid_t pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  int64_t v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, field, fl) == 0 && line[fl] == ':') v = atoll(line + fl + 1);
  fclose(f);
  return v;
}

/* ---- seed data ---- */

static const char *categories[] = {"alpha", "beta", "gamma", "delta", "epsilon"};

static void free_block(void *p) {
  free(p);
}

int wg_fx_seed_batch(int64_t batch_id, int64_t n, bool kv, struct ArrowSchema *schema,
                     struct ArrowArray *out) {
  /* All buffers live in one malloc'ed block owned by the holder. */
  size_t ts_len = 19; /* "2026-11-21 10:00:00" */
  size_t bytes = (size_t)n * 8 * 2 + (size_t)(n + 1) * 4 * 2 + (size_t)n * (ts_len + 8) + 64;
  uint8_t *block = calloc(1, bytes);
  if (block == NULL) return ENOMEM;
  struct wg_shared *holder = wg_shared_wrap(block, (int64_t)bytes, free_block, block);
  int64_t *ids = (int64_t *)block;
  double *values = (double *)(block + n * 8);
  int32_t *ts_off = (int32_t *)(block + n * 16);
  int32_t *cat_off = ts_off + (n + 1);
  char *ts_data = (char *)(cat_off + (n + 1));
  char *cat_data = ts_data + n * ts_len;
  int32_t cpos = 0;
  for (int64_t i = 0; i < n; i++) {
    ids[i] = kv ? batch_id * n + i : batch_id;
    values[i] = (double)(i % 1000) * 0.5;
    ts_off[i] = (int32_t)(i * (int64_t)ts_len);
    snprintf(ts_data + i * ts_len, ts_len + 1, "2026-11-21 10:%02d:%02d", (int)(i / 60 % 60),
             (int)(i % 60));
    const char *cat = categories[i % 5];
    cat_off[i] = cpos;
    memcpy(cat_data + cpos, cat, strlen(cat));
    cpos += (int32_t)strlen(cat);
  }
  ts_off[n] = (int32_t)(n * (int64_t)ts_len);
  cat_off[n] = cpos;
  int ncol = kv ? 2 : 4;
  wg_array_node_init(out, 1, ncol, holder);
  out->length = n;
  struct ArrowArray *c = out->children[0];
  wg_array_node_init(c, 2, 0, holder);
  c->length = n;
  c->buffers[1] = ids;
  if (kv) {
    c = out->children[1];
    wg_array_node_init(c, 2, 0, holder);
    c->length = n;
    c->buffers[1] = values;
  } else {
    c = out->children[1];
    wg_array_node_init(c, 3, 0, holder);
    c->length = n;
    c->buffers[1] = ts_off;
    c->buffers[2] = ts_data;
    c = out->children[2];
    wg_array_node_init(c, 2, 0, holder);
    c->length = n;
    c->buffers[1] = values;
    c = out->children[3];
    wg_array_node_init(c, 3, 0, holder);
    c->length = n;
    c->buffers[1] = cat_off;
    c->buffers[2] = cat_data;
  }
  wg_shared_unref(holder);
  if (schema != NULL) {
    wg_schema_node_init(schema, "+s", ncol, NULL);
    schema->flags = 0;
    const char *names[4] = {kv ? "id" : "batch_id", kv ? "value" : "timestamp", "value",
                            "category"};
    const char *formats[4] = {"l", kv ? "g" : "u", "g", "u"};
    for (int i = 0; i < ncol; i++) {
      wg_schema_node_init(schema->children[i], formats[i], 0, NULL);
      wg_schema_set_name(schema->children[i], names[i]);
    }
  }
  return 0;
}

struct seed_stream {
  int64_t next, end, rows;
  bool kv;
};

static int seed_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct seed_stream *st = s->private_data;
  struct ArrowArray a;
  int rc = wg_fx_seed_batch(0, 1, st->kv, out, &a);
  if (rc == 0) wg_array_release(&a);
  return rc;
}

static int seed_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct seed_stream *st = s->private_data;
  out->release = NULL;
  if (st->next >= st->end) return 0;
  return wg_fx_seed_batch(st->next++, st->rows, st->kv, NULL, out);
}

static const char *seed_last_error(struct ArrowArrayStream *s) {
  return NULL;
}

static void seed_release(struct ArrowArrayStream *s) {
  free(s->private_data);
  s->release = NULL;
}

int wg_fx_seed_stream(int64_t first_batch_id, int64_t count, int64_t rows, bool kv,
                      struct ArrowArrayStream *out) {
  struct seed_stream *st = calloc(1, sizeof(*st));
  if (st == NULL) return ENOMEM;
  st->next = first_batch_id;
  st->end = first_batch_id + count;
  st->rows = rows;
  st->kv = kv;
  out->get_schema = seed_get_schema;
  out->get_next = seed_get_next;
  out->get_last_error = seed_last_error;
  out->release = seed_release;
  out->private_data = st;
  return 0;
}

/* ---- queries ---- */

static int64_t load_int(const char *format, const struct ArrowArray *a, int64_t i) {
  const uint8_t *p = a->buffers[1];
  i += a->offset;
  switch (format[0]) {
  case 'c':
    return ((const int8_t *)p)[i];
  case 's':
    return ((const int16_t *)p)[i];
  case 'i':
    return ((const int32_t *)p)[i];
  case 'd': { /* decimal128: low 64 bits (counts fit) */
    int64_t v;
    memcpy(&v, p + 16 * i, 8);
    return v;
  }
  default: {
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return v;
  }
  }
}

int wg_fx_connect(struct wg_client **out, const char *uri, struct wg_status *st) {
  return wg_fx_connect_timeout(out, uri, 0, st);
}

int wg_fx_connect_timeout(struct wg_client **out, const char *uri, int64_t timeout_ms,
                          struct wg_status *st) {
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.lazy_connect = true;
  o.timeout_ms = timeout_ms;
  return wg_connect(uri, &o, out, st);
}

int wg_fx_action(struct wg_client *c, const char *type, const void *body, size_t len,
                 struct wg_buf *out, struct wg_status *st) {
  struct wg_action_result r;
  int rc = wg_fx_errno(wg_action(c, type, body, len, out != NULL ? &r : NULL, st), st);
  if (rc != 0 || out == NULL) return rc;
  for (int64_t i = 0; rc == 0 && i < r.n; i++) {
    if (wg_buf_append(out, r.bodies[i].data, (int64_t)r.bodies[i].size) != 0) rc = ENOMEM;
  }
  wg_action_result_reset(&r);
  if (rc == 0 && wg_buf_append(out, "", 1) != 0) rc = ENOMEM;
  if (rc != 0) {
    st->code = WG_STATUS_RESOURCE_EXHAUSTED;
    st->sys_errno = ENOMEM;
    snprintf(st->message, sizeof(st->message), "out of memory for an action result");
    return rc;
  }
  out->size--;
  return 0;
}

int wg_fx_stream_failed(struct ArrowArrayStream *s, int rc, struct wg_status *st) {
  if (wg_stream_status(s, st) == 0) { /* not ours: cannot happen for a wg_query stream */
    st->code = WG_STATUS_INTERNAL;
    st->sys_errno = rc;
    snprintf(st->message, sizeof(st->message), "%s",
             s->get_last_error(s) ? s->get_last_error(s) : "query failed");
  }
  return rc;
}

int wg_fx_query_i64(struct wg_client *c, const char *sql, int64_t *out,
                    struct wg_status *status) {
  struct ArrowArrayStream st;
  *out = 0;
  if (wg_query(c, sql, &st, status) != 0) return status->sys_errno;
  struct ArrowSchema schema = {0};
  int rc = st.get_schema(&st, &schema);
  struct ArrowArray a = {0};
  while (rc == 0) {
    rc = st.get_next(&st, &a);
    if (rc != 0 || a.release == NULL || a.length > 0) break;
    wg_array_release(&a);
  }
  if (rc != 0) {
    rc = wg_fx_stream_failed(&st, rc, status);
  } else if (a.release != NULL && a.length > 0 && a.n_children > 0) {
    *out = load_int(schema.children[0]->format, a.children[0], 0);
  }
  wg_array_release(&a);
  if (schema.release) wg_schema_release(&schema);
  /* drain */
  while (rc == 0) {
    struct ArrowArray b;
    if (st.get_next(&st, &b) != 0 || b.release == NULL) break;
    wg_array_release(&b);
  }
  wg_stream_release(&st);
  return rc;
}

int wg_fx_query_count(struct wg_client *c, const char *sql, int64_t *rows, int64_t *batches,
                      struct wg_status *status) {
  struct ArrowArrayStream st;
  *rows = 0;
  if (batches) *batches = 0;
  if (wg_query(c, sql, &st, status) != 0) return status->sys_errno;
  int rc = 0;
  for (;;) {
    struct ArrowArray a;
    rc = st.get_next(&st, &a);
    if (rc != 0) {
      rc = wg_fx_stream_failed(&st, rc, status);
      break;
    }
    if (a.release == NULL) break;
    *rows += a.length;
    if (batches) (*batches)++;
    wg_array_release(&a);
  }
  wg_stream_release(&st);
  return rc;
}
