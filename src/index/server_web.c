/* server_web.c — the dashboard's static files (web/dashboard/dist) under
 * /dashboard/.  Public (no token): the page asks for one and sends it with
 * its data requests.  Only plain names below the directory are served:
 * [A-Za-z0-9._-] segments, none empty or starting with a dot, no symlink
 * as the last component, regular files only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "index/server_int.h"

#define WEB_MAX_FILE (16u * 1024u * 1024u)
#define WEB_MAX_PATH 256

/* Strict enough for the built page (no inline script or style). */
#define WEB_CSP "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"

static int has_index(const char *dir) {
  char p[4096];
  struct stat st;
  if ((size_t)snprintf(p, sizeof p, "%s/index.html", dir) >= sizeof p)
    return 0;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* dirname(path) into out; 0 if it does not fit. */
static int parent_of(const char *path, char *out, size_t cap) {
  const char *slash = strrchr(path, '/');
  size_t n = slash != NULL ? (size_t)(slash - path) : 0;
  if (n == 0 || n >= cap)
    return 0;
  memcpy(out, path, n);
  out[n] = '\0';
  return 1;
}

/* a + b into out; 0 if it does not fit. */
static int join(char *out, size_t cap, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  if (na + nb + 1 > cap)
    return 0;
  memcpy(out, a, na);
  memcpy(out + na, b, nb + 1);
  return 1;
}

int parley__index_web_start(struct parley_index *idx,
                            const struct parley_index_config *cfg) {
  char exe[4096], dir[4096], cand[3][4096], src[4096];
  const char *pick = NULL;
  size_t ncand = 0;
  ssize_t n;

  if (cfg->web_dir != NULL) {
    char *abs = realpath(cfg->web_dir, NULL);
    idx->web_dir = parley_strdup(abs != NULL ? abs : cfg->web_dir);
    free(abs); /* from realpath */
    if (idx->web_dir == NULL)
      return PARLEY_ENOMEM;
    if (!has_index(idx->web_dir))
      PARLEY_LOG(idx->log, PARLEY_LOG_WARN,
                 "dashboard: no index.html in --web %s (build it with "
                 "scripts/build-web.sh)",
                 idx->web_dir);
    return PARLEY_OK;
  }
  /* Next to the binary: BUILD/../web/dashboard/dist (a build directory
   * inside the source tree) or PREFIX/bin/../share/parley/dashboard. */
  n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    if (parent_of(exe, dir, sizeof dir)) {
      if (join(cand[ncand], sizeof cand[0], dir, "/../web/dashboard/dist"))
        ncand++;
      if (join(cand[ncand], sizeof cand[0], dir,
               "/../share/parley/dashboard"))
        ncand++;
    }
  }
  /* Where it was built: this file is SRC/src/index/server_web.c. */
  snprintf(src, sizeof src, "%s", __FILE__);
  if (strstr(src, "/src/index/server_web.c") != NULL) {
    *strstr(src, "/src/index/server_web.c") = '\0';
    if (join(cand[ncand], sizeof cand[0], src, "/web/dashboard/dist"))
      ncand++;
  }
  for (size_t i = 0; i < ncand && pick == NULL; i++)
    if (has_index(cand[i]))
      pick = cand[i];
  if (pick == NULL && ncand > 0)
    pick = cand[ncand - 1]; /* may be built later */
  if (pick == NULL)
    return PARLEY_OK;
  {
    char *abs = realpath(pick, NULL);
    idx->web_dir = parley_strdup(abs != NULL ? abs : pick);
    free(abs); /* from realpath */
  }
  if (idx->web_dir == NULL)
    return PARLEY_ENOMEM;
  PARLEY_LOG(idx->log, has_index(idx->web_dir) ? PARLEY_LOG_INFO
                                               : PARLEY_LOG_WARN,
             "dashboard: serving %s%s", idx->web_dir,
             has_index(idx->web_dir)
                 ? ""
                 : " (not built yet: scripts/build-web.sh)");
  return PARLEY_OK;
}

static const char *mime_of(const char *name) {
  static const char *const map[][2] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
      {".webmanifest", "application/manifest+json"},
  };
  const char *dot = strrchr(name, '.');
  if (dot != NULL)
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
      if (strcmp(dot, map[i][0]) == 0)
        return map[i][1];
  return "application/octet-stream";
}

/* 1 if rel (below /dashboard/) is a plain relative name. */
static int rel_ok(const char *rel) {
  size_t n = strlen(rel), seg = 0;

  if (n == 0 || n > WEB_MAX_PATH)
    return 0;
  for (size_t i = 0; i <= n; i++) {
    char c = rel[i];
    if (c == '/' || c == '\0') {
      if (seg == 0)
        return 0; /* empty segment: "//" or a trailing slash */
      seg = 0;
      continue;
    }
    if (seg == 0 && c == '.')
      return 0; /* ".", "..", dot files */
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
    seg++;
  }
  return 1;
}

static void not_found(struct parley_http_req *r, const char *why) {
  parley__index_respond_error(r, 404, PARLEY_ENOTFOUND, why, NULL);
}

void parley__index_web_serve(struct parley_index *idx,
                             struct parley_http_req *r) {
  static const char *const allow[] = {"Allow", "GET, HEAD", NULL};
  const char *method = parley_http_method(r);
  const char *path = parley_http_path(r);
  const char *rel, *cache;
  char file[4096];
  struct stat st;
  char *body;
  size_t got = 0;
  int fd;

  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    parley__index_respond_error(r, 405, PARLEY_EINVAL, "method not allowed",
                                allow);
    return;
  }
  if (strcmp(path, "/dashboard") == 0) {
    static const char *const loc[] = {"Location", "/dashboard/", NULL};
    static const char moved[] = "moved to /dashboard/\n";
    parley_http_respond(r, 301, "text/plain; charset=utf-8", moved,
                        sizeof moved - 1, loc);
    return;
  }
  rel = path + strlen("/dashboard/");
  if (*rel == '\0')
    rel = "index.html";
  if (!rel_ok(rel)) {
    not_found(r, "no such file");
    return;
  }
  if (idx->web_dir == NULL || !has_index(idx->web_dir)) {
    not_found(r, "the dashboard is not built: run scripts/build-web.sh "
                 "(or start parley-index with --web DIR)");
    return;
  }
  if ((size_t)snprintf(file, sizeof file, "%s/%s", idx->web_dir, rel) >=
      sizeof file) {
    not_found(r, "no such file");
    return;
  }
  fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    not_found(r, "no such file");
    return;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
      (uint64_t)st.st_size > WEB_MAX_FILE) {
    close(fd);
    not_found(r, "no such file");
    return;
  }
  body = parley_malloc((size_t)st.st_size + 1);
  if (body == NULL) {
    close(fd);
    parley__index_respond_error(r, 500, PARLEY_ENOMEM, "out of memory", NULL);
    return;
  }
  while (got < (size_t)st.st_size) {
    ssize_t k = read(fd, body + got, (size_t)st.st_size - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    got += (size_t)k;
  }
  close(fd);
  if (got != (size_t)st.st_size) {
    parley_free(body);
    parley__index_respond_error(r, 500, PARLEY_EIO, "cannot read the file",
                                NULL);
    return;
  }
  /* Vite puts content-hashed names under assets/: cache them forever;
   * index.html and the rest are revalidated. */
  cache = strncmp(rel, "assets/", 7) == 0
              ? "public, max-age=31536000, immutable"
              : "no-cache";
  {
    const char *const hdrs[] = {"Cache-Control", cache,
                                "X-Content-Type-Options", "nosniff",
                                "Content-Security-Policy", WEB_CSP,
                                "Referrer-Policy", "no-referrer",
                                "X-Frame-Options", "DENY",
                                NULL};
    parley_http_respond(r, 200, mime_of(rel), body, got, hdrs);
  }
  parley_free(body);
}
