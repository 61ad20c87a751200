/* http.c — one blocking request to parleyd through libcurl. */
#include "apps/cli/http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

struct xfer {
  const struct parley_cli_http_req *req;
  struct parley_cli_http_resp *resp;
  CURL *h;
  int rc; /* why the transfer was aborted from a callback */
};

int parley_cli_http_global_init(void) {
  /* curl allocates through Parley's allocator too. */
  CURLcode cc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, parley_malloc,
                                     parley_free, parley_realloc,
                                     parley_strdup, parley_calloc);
  return cc == CURLE_OK ? PARLEY_OK : PARLEY_ENOMEM;
}

void parley_cli_http_global_close(void) { curl_global_cleanup(); }

void parley_cli_http_resp_close(struct parley_cli_http_resp *resp) {
  parley_buf_close(&resp->body);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud) {
  struct xfer *x = ud;
  size_t n = size * nmemb;
  struct parley_buf *b = &x->resp->body;
  int rc;

  if (x->req->stop != NULL && *x->req->stop) {
    x->rc = PARLEY_ECANCELED;
    return 0;
  }
  if (x->resp->status == 0)
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->resp->status);
  if (x->resp->status >= 200 && x->resp->status < 300) {
    if (x->req->sink != NULL) {
      rc = x->req->sink(x->req->sink_ctx, p, n);
      if (rc < 0) {
        x->rc = rc;
        return 0;
      }
      return n;
    }
  } else if (b->len >= PARLEY_CLI_HTTP_ERRBODY) {
    return n; /* keep the start of an error body, drop the rest */
  } else if (n > PARLEY_CLI_HTTP_ERRBODY - b->len) {
    n = PARLEY_CLI_HTTP_ERRBODY - b->len;
  }
  /* One byte beyond the data stays reserved for the terminating NUL. */
  rc = parley_buf_reserve(b, n + 1);
  if (rc < 0) {
    x->rc = rc;
    return 0;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return size * nmemb;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  struct xfer *x = ud;
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  if (x->req->stop != NULL && *x->req->stop) {
    x->rc = PARLEY_ECANCELED;
    return 1;
  }
  return 0;
}

static int setup(CURL *h, const struct parley_cli_api *api,
                 const struct parley_cli_http_req *req, struct xfer *x,
                 struct curl_slist **hdrs, char *url, size_t urlcap) {
  char auth[sizeof api->token + 32];
  struct curl_slist *l = NULL, *t;
  int ok = 1;

  snprintf(url, urlcap, "http://%s%s", api->addr, req->path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", api->token);
  t = curl_slist_append(l, auth);
  ok &= t != NULL;
  l = t ? t : l;
  /* No "Expect: 100-continue" round trip for larger bodies. */
  t = curl_slist_append(l, "Expect:");
  ok &= t != NULL;
  l = t ? t : l;
  if (req->body != NULL) {
    t = curl_slist_append(l, "Content-Type: application/json");
    ok &= t != NULL;
    l = t ? t : l;
  }
  *hdrs = l;
  if (!ok)
    return PARLEY_ENOMEM;

  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_PROXY, ""); /* ignore http_proxy & co. */
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "parley-cli");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, PARLEY_CLI_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->resp->error);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  if (req->stop != NULL) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
  }
  if (strcmp(req->method, "POST") == 0) {
    const char *body = req->body ? req->body : "";
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  } else if (strcmp(req->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  }
  return PARLEY_OK;
}

int parley_cli_http_do(const struct parley_cli_api *api,
                       const struct parley_cli_http_req *req,
                       struct parley_cli_http_resp *resp) {
  struct curl_slist *hdrs = NULL;
  struct xfer x;
  char url[4096 + sizeof api->addr];
  curl_off_t ct = 0;
  CURLcode cc;
  int rc;
  CURL *h;

  memset(resp, 0, sizeof *resp);
  parley_buf_init(&resp->body, PARLEY_CLI_HTTP_MAXBODY);
  if (strlen(req->path) >= 4096)
    return PARLEY_ETOOBIG;
  h = curl_easy_init();
  if (h == NULL)
    return PARLEY_ENOMEM;
  memset(&x, 0, sizeof x);
  x.req = req;
  x.resp = resp;
  x.h = h;
  rc = setup(h, api, req, &x, &hdrs, url, sizeof url);
  if (rc == PARLEY_OK) {
    if (req->stop != NULL && *req->stop) {
      cc = CURLE_ABORTED_BY_CALLBACK;
      x.rc = PARLEY_ECANCELED;
    } else {
      cc = curl_easy_perform(h);
    }
    resp->curl_rc = (int)cc;
    if (resp->status == 0)
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &ct);
    resp->connected = ct > 0 || resp->status != 0;
    if (cc != CURLE_OK && resp->error[0] == '\0')
      snprintf(resp->error, sizeof resp->error, "%s", curl_easy_strerror(cc));
    if (x.rc < 0)
      rc = x.rc;
    else if (cc != CURLE_OK)
      rc = PARLEY_ECONNECT;
  }
  if (resp->body.data != NULL)
    resp->body.data[resp->body.len] = '\0';
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return rc;
}

int parley_cli_query_add(struct parley_buf *q, const char *key,
                         const char *value) {
  static const char hx[] = "0123456789ABCDEF";
  int first = q->len == 0 || memchr(q->data, '?', q->len) == NULL;
  int rc = parley_buf_appendf(q, "%c%s=", first ? '?' : '&', key);

  for (const unsigned char *p = (const unsigned char *)value;
       rc == PARLEY_OK && *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
        *p == '~')
      rc = parley_buf_appendf(q, "%c", *p);
    else
      rc = parley_buf_appendf(q, "%%%c%c", hx[*p >> 4], hx[*p & 15]);
  }
  return rc;
}
