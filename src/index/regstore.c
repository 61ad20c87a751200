/*
 * regstore.c — single-node durability for the registry (regstore.h):
 * DIR/registry.snap plus the append-only DIR/registry.log.
 *
 * Byte layouts (big-endian):
 *
 *   registry.snap   "PRSN"  u32 version (1)  u64 folded  u32 crc32  u32 len
 *                   then len bytes of parley_registry_snapshot output.
 *                   crc32 covers those len bytes only.  folded is how many
 *                   records at the head of registry.log the snapshot
 *                   already contains (normally 0; see compaction below).
 *   registry.log    records back to back: u32 len, u32 crc32(payload),
 *                   payload = parley_reg_cmd_encode output (44..577 bytes).
 *
 * The checksum is CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, init and
 * final xor 0xFFFFFFFF: crc32("123456789") = 0xCBF43926), computed with a
 * 16-entry nibble table: small, and fast enough for records of a few
 * hundred bytes and snapshots of a few megabytes.
 *
 * Compaction, and why folded exists.  The steps are
 *   1. write and fdatasync the pending appends (the log now holds N),
 *   2. write registry.snap.tmp with folded = N, fsync, rename it over
 *      registry.snap, fsync the directory,
 *   3. truncate registry.log to 0 bytes and fsync it,
 *   4. overwrite folded with 0 in place (8 bytes at offset 8) and
 *      fdatasync.
 * A crash between 2 and 3 leaves a snapshot that contains the N records
 * still in the log: open skips them instead of applying them twice.  A
 * crash between 3 and 4 leaves folded = N over an empty log; open skips
 * min(folded, records) = 0.  No record is appended before step 4 is
 * durable, so a non-zero folded never sits over records it did not fold.
 * Whenever open finds folded != 0 it compacts again to get back to the
 * steady state (folded = 0).  folded is outside the checksum because
 * step 4 rewrites it.
 *
 * I/O errors.  A failed write leaves the log truncated back to its last
 * whole record and the appends pending (sync may be retried).  A failed
 * fsync, or any failure after the rename in step 2, puts the store in a
 * failed state: after an fsync error the kernel may have dropped the dirty
 * pages, so the only safe answer is to refuse further writes (PARLEY_EIO)
 * until the process reopens the store.
 */
#include "index/regstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "index/registry_int.h"

#define SNAP_MAGIC "PRSN"
#define SNAP_VERSION 1u
#define SNAP_HDR 24u       /* magic, version, folded, crc, len */
#define SNAP_FOLDED_OFF 8u /* offset of folded in the header */
#define REC_HDR 8u         /* u32 len, u32 crc */
#define REC_MAX (REC_HDR + PARLEY__REG_CMD_MAX)
/* Appends buffered between two syncs; the server syncs every loop turn. */
#define PENDING_CAP (64u * 1024u * 1024u)
/* Storage the append buffer keeps after a sync. */
#define PENDING_KEEP (64u * 1024u)
/* The snapshot's length field is a u32. */
#define SNAP_CAP ((size_t)UINT32_MAX)
#define READ_CHUNK (64u * 1024u)

struct parley_regstore {
  struct parley_registry *reg; /* borrowed */
  struct parley_log log;       /* copy of the caller's sink (may be empty) */
  char *snap_path, *tmp_path, *log_path; /* owned */
  int dirfd, logfd;
  uint64_t log_size; /* bytes of whole records in registry.log */
  uint64_t entries;  /* records in registry.log */
  uint64_t npending; /* records in pending */
  struct parley_buf pending;
  int failed; /* an fsync or post-rename step failed: refuse writes */
};

/* CRC-32 (IEEE) ------------------------------------------------------------ */

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  static const uint32_t nibble[16] = {
      0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
      0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
      0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
      0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
  };
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    c = (c >> 4) ^ nibble[c & 0xf];
    c = (c >> 4) ^ nibble[c & 0xf];
  }
  return c ^ 0xffffffffu;
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* File helpers ------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return PARLEY_EIO;
    }
    p += w;
    n -= (size_t)w;
  }
  return PARLEY_OK;
}

/* Reads up to n bytes at off; *got < n only at end of file. */
static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = pread(fd, p + *got, n - *got, (off_t)(off + *got));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return PARLEY_EIO;
    }
    if (r == 0)
      break;
    *got += (size_t)r;
  }
  return PARLEY_OK;
}

static char *join(const char *dir, const char *file) {
  size_t ld = strlen(dir), lf = strlen(file);
  char *s = parley_malloc(ld + 1 + lf + 1);
  if (s == NULL)
    return NULL;
  memcpy(s, dir, ld);
  s[ld] = '/';
  memcpy(s + ld + 1, file, lf + 1);
  return s;
}

/* Snapshot file
 * ---------------------------------------------------------------- */

/* Restores the registry from registry.snap (or to empty if there is none).
 * OUT: *folded from the header. */
static int load_snapshot(struct parley_regstore *rs, uint64_t *folded) {
  uint8_t hdr[SNAP_HDR], *body = NULL;
  struct stat st;
  size_t got;
  uint32_t len;
  int fd, rc;

  *folded = 0;
  fd = open(rs->snap_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) {
      PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "%s: %s", rs->snap_path,
                 strerror(errno));
      return PARLEY_EIO;
    }
    /* No snapshot yet: start from the empty state. */
    return parley_registry_restore(rs->reg,
                                   (const uint8_t *)PARLEY__REG_SNAP_EMPTY,
                                   PARLEY__REG_SNAP_EMPTY_LEN);
  }
  rc = fstat(fd, &st) < 0 ? PARLEY_EIO : PARLEY_OK;
  if (rc == 0)
    rc = pread_all(fd, hdr, SNAP_HDR, 0, &got);
  if (rc < 0)
    goto out;
  rc = PARLEY_ESTORE;
  if (got < SNAP_HDR || memcmp(hdr, SNAP_MAGIC, 4) != 0) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "%s: not a registry snapshot",
               rs->snap_path);
    goto out;
  }
  if (get_u32(hdr + 4) != SNAP_VERSION) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "%s: unsupported version %u",
               rs->snap_path, (unsigned)get_u32(hdr + 4));
    rc = PARLEY_EVERSION;
    goto out;
  }
  *folded = (uint64_t)get_u32(hdr + 8) << 32 | get_u32(hdr + 12);
  len = get_u32(hdr + 20);
  if ((uint64_t)st.st_size != (uint64_t)SNAP_HDR + len) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR,
               "%s: size %lld does not match header length %u", rs->snap_path,
               (long long)st.st_size, (unsigned)len);
    goto out;
  }
  body = parley_malloc(len ? len : 1);
  if (body == NULL) {
    rc = PARLEY_ENOMEM;
    goto out;
  }
  rc = pread_all(fd, body, len, SNAP_HDR, &got);
  if (rc < 0)
    goto out;
  if (got != len || crc32_ieee(body, len) != get_u32(hdr + 16)) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "%s: checksum mismatch",
               rs->snap_path);
    rc = PARLEY_ESTORE;
    goto out;
  }
  rc = parley_registry_restore(rs->reg, body, len);
  if (rc < 0) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "%s: unusable snapshot: %s",
               rs->snap_path, parley_strerror(rc));
    if (rc == PARLEY_EPROTO)
      rc = PARLEY_ESTORE;
  }
out:
  parley_free(body);
  close(fd);
  return rc;
}

/* Log replay --------------------------------------------------------------- */

/* A forward reader over the log with a fixed window. */
struct log_reader {
  int fd;
  uint8_t *buf; /* READ_CHUNK bytes */
  size_t have, pos;
  uint64_t off; /* file offset of buf[0] */
};

/* Makes n bytes available at buf + pos; *ok = 0 if the file ends first. */
static int lr_need(struct log_reader *lr, size_t n, int *ok) {
  size_t got;
  int rc;

  *ok = 1;
  if (lr->have - lr->pos >= n)
    return PARLEY_OK;
  memmove(lr->buf, lr->buf + lr->pos, lr->have - lr->pos);
  lr->off += lr->pos;
  lr->have -= lr->pos;
  lr->pos = 0;
  rc = pread_all(lr->fd, lr->buf + lr->have, READ_CHUNK - lr->have,
                 lr->off + lr->have, &got);
  if (rc < 0)
    return rc;
  lr->have += got;
  *ok = lr->have >= n;
  return PARLEY_OK;
}

/* Reads every whole record, applying those after the first skip, and cuts
 * the file after the last good record. */
static int replay_log(struct parley_regstore *rs, uint64_t skip) {
  struct log_reader lr = {rs->logfd, NULL, 0, 0, 0};
  struct parley_reg_cmd *cmd;
  const char *why = NULL;
  uint64_t n = 0, good = 0;
  struct stat st;
  int rc = PARLEY_OK, ok;

  lr.buf = parley_malloc(READ_CHUNK);
  cmd = parley_malloc(sizeof *cmd);
  if (lr.buf == NULL || cmd == NULL) {
    rc = PARLEY_ENOMEM;
    goto out;
  }
  for (;;) {
    uint32_t len;
    const uint8_t *rec;

    if ((rc = lr_need(&lr, REC_HDR, &ok)) < 0)
      goto out;
    if (!ok) {
      if (lr.have > lr.pos)
        why = "torn record header";
      break;
    }
    rec = lr.buf + lr.pos;
    len = get_u32(rec);
    if (len < PARLEY__REG_CMD_MIN || len > PARLEY__REG_CMD_MAX) {
      why = "bad record length";
      break;
    }
    if ((rc = lr_need(&lr, REC_HDR + len, &ok)) < 0)
      goto out;
    if (!ok) {
      why = "torn record";
      break;
    }
    rec = lr.buf + lr.pos;
    if (crc32_ieee(rec + REC_HDR, len) != get_u32(rec + 4)) {
      why = "checksum mismatch";
      break;
    }
    if (parley_reg_cmd_decode(rec + REC_HDR, len, cmd) < 0) {
      why = "undecodable command";
      break;
    }
    n++;
    if (n > skip) {
      /* A refused command is a deterministic no-op; only running out of
       * memory would make this replica diverge. */
      rc = parley_registry_apply(rs->reg, cmd);
      if (rc == PARLEY_ENOMEM)
        goto out;
      if (rc < 0)
        PARLEY_LOG(&rs->log, PARLEY_LOG_DEBUG,
                   "registry.log record %llu refused: %s",
                   (unsigned long long)n, parley_strerror(rc));
    }
    lr.pos += REC_HDR + len;
    good = lr.off + lr.pos;
  }
  if (why != NULL) {
    if (fstat(rs->logfd, &st) < 0) {
      rc = PARLEY_EIO;
      goto out;
    }
    PARLEY_LOG(&rs->log, PARLEY_LOG_WARN,
               "%s: %s at offset %llu: truncating %llu tail bytes",
               rs->log_path, why, (unsigned long long)good,
               (unsigned long long)((uint64_t)st.st_size - good));
    if (ftruncate(rs->logfd, (off_t)good) < 0 || fsync(rs->logfd) < 0) {
      rc = PARLEY_EIO;
      goto out;
    }
  }
  if (skip > n)
    PARLEY_LOG(&rs->log, PARLEY_LOG_WARN,
               "%s: snapshot folds %llu records but the log holds %llu",
               rs->log_path, (unsigned long long)skip, (unsigned long long)n);
  rs->entries = n;
  rs->log_size = good;
out:
  parley_free(cmd);
  parley_free(lr.buf);
  return rc;
}

/* Public API --------------------------------------------------------------- */

int parley_regstore_open(const char *dir, struct parley_registry *reg,
                         const struct parley_log *lg,
                         struct parley_regstore **out) {
  struct parley_regstore *rs;
  uint64_t folded;
  int rc;

  *out = NULL;
  rs = parley_calloc(1, sizeof *rs);
  if (rs == NULL)
    return PARLEY_ENOMEM;
  rs->reg = reg;
  if (lg != NULL)
    rs->log = *lg;
  rs->dirfd = -1;
  rs->logfd = -1;
  parley_buf_init(&rs->pending, PENDING_CAP);
  rs->snap_path = join(dir, "registry.snap");
  rs->tmp_path = join(dir, "registry.snap.tmp");
  rs->log_path = join(dir, "registry.log");
  if (rs->snap_path == NULL || rs->tmp_path == NULL || rs->log_path == NULL) {
    rc = PARLEY_ENOMEM;
    goto fail;
  }
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "mkdir %s: %s", dir,
               strerror(errno));
    rc = PARLEY_EIO;
    goto fail;
  }
  rs->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rs->dirfd < 0) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "open %s: %s", dir, strerror(errno));
    rc = PARLEY_EIO;
    goto fail;
  }
  /* A leftover temp file is a compaction that never reached its rename. */
  if (unlink(rs->tmp_path) < 0 && errno != ENOENT) {
    rc = PARLEY_EIO;
    goto fail;
  }
  rc = load_snapshot(rs, &folded);
  if (rc < 0)
    goto fail;
  rs->logfd = open(rs->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (rs->logfd < 0) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "open %s: %s", rs->log_path,
               strerror(errno));
    rc = PARLEY_EIO;
    goto fail;
  }
  /* Make the log's directory entry durable before anything relies on it. */
  if (fsync(rs->dirfd) < 0) {
    rc = PARLEY_EIO;
    goto fail;
  }
  rc = replay_log(rs, folded);
  if (rc < 0)
    goto fail;
  if (folded != 0) {
    /* A compaction stopped before its last step: finish the job. */
    PARLEY_LOG(&rs->log, PARLEY_LOG_INFO,
               "%s: completing an interrupted compaction", rs->snap_path);
    rc = parley_regstore_compact(rs);
    if (rc < 0)
      goto fail;
  }
  *out = rs;
  return PARLEY_OK;
fail:
  rs->failed = 1; /* close must not try to sync */
  parley_regstore_close(rs);
  return rc;
}

void parley_regstore_close(struct parley_regstore *rs) {
  if (rs == NULL)
    return;
  if (rs->pending.len > 0) {
    int rc = rs->failed ? PARLEY_EIO : parley_regstore_sync(rs, 0);
    if (rc < 0)
      PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR,
                 "%s: %llu appends lost at close: %s", rs->log_path,
                 (unsigned long long)rs->npending, parley_strerror(rc));
  }
  if (rs->logfd >= 0)
    close(rs->logfd);
  if (rs->dirfd >= 0)
    close(rs->dirfd);
  parley_buf_close(&rs->pending);
  parley_free(rs->snap_path);
  parley_free(rs->tmp_path);
  parley_free(rs->log_path);
  parley_free(rs);
}

int parley_regstore_append(struct parley_regstore *rs,
                           const struct parley_reg_cmd *c) {
  uint8_t rec[REC_MAX];
  size_t n;
  int rc;

  if (rs->failed)
    return PARLEY_EIO;
  rc = parley_reg_cmd_encode(c, rec + REC_HDR, sizeof rec - REC_HDR, &n);
  if (rc < 0)
    return rc;
  put_u32(rec, (uint32_t)n);
  put_u32(rec + 4, crc32_ieee(rec + REC_HDR, n));
  rc = parley_buf_append(&rs->pending, rec, REC_HDR + n);
  if (rc < 0)
    return rc;
  rs->npending++;
  return PARLEY_OK;
}

/* Writes and fdatasyncs the pending records. */
static int flush_pending(struct parley_regstore *rs) {
  int rc;

  if (rs->pending.len == 0)
    return PARLEY_OK;
  rc = write_all(rs->logfd, rs->pending.data, rs->pending.len);
  if (rc < 0) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "write %s: %s", rs->log_path,
               strerror(errno));
    /* Drop any partial record so that a retry appends whole records. */
    if (ftruncate(rs->logfd, (off_t)rs->log_size) < 0)
      rs->failed = 1;
    return PARLEY_EIO;
  }
  if (fdatasync(rs->logfd) < 0) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "fdatasync %s: %s", rs->log_path,
               strerror(errno));
    rs->failed = 1;
    return PARLEY_EIO;
  }
  rs->log_size += rs->pending.len;
  rs->entries += rs->npending;
  rs->npending = 0;
  parley_buf_reset(&rs->pending);
  /* A burst (thousands of REGISTERs in one turn) grows the buffer; the
   * index should not hold that much for good. */
  if (rs->pending.alloc > PENDING_KEEP)
    parley_buf_close(&rs->pending); /* keeps the cap */
  return PARLEY_OK;
}

int parley_regstore_sync(struct parley_regstore *rs, uint32_t compact_after) {
  int rc;

  if (rs->failed)
    return PARLEY_EIO;
  rc = flush_pending(rs);
  if (rc < 0)
    return rc;
  if (compact_after != 0 && rs->entries > compact_after)
    return parley_regstore_compact(rs);
  return PARLEY_OK;
}

/* Steps 2-4 of the compaction described at the top of the file. */
int parley_regstore_compact(struct parley_regstore *rs) {
  static const uint8_t zero[8];
  struct parley_buf b;
  uint64_t folded;
  int fd = -1, rc;

  if (rs->failed)
    return PARLEY_EIO;
  rc = flush_pending(rs);
  if (rc < 0)
    return rc;
  folded = rs->entries;
  parley_buf_init(&b, SNAP_HDR + SNAP_CAP);
  rc = parley_buf_reserve(&b, SNAP_HDR);
  if (rc < 0)
    goto out;
  b.len = SNAP_HDR;
  rc = parley_registry_snapshot(rs->reg, &b);
  if (rc < 0)
    goto out;
  memcpy(b.data, SNAP_MAGIC, 4);
  put_u32(b.data + 4, SNAP_VERSION);
  put_u32(b.data + 8, (uint32_t)(folded >> 32));
  put_u32(b.data + 12, (uint32_t)folded);
  put_u32(b.data + 16, crc32_ieee(b.data + SNAP_HDR, b.len - SNAP_HDR));
  put_u32(b.data + 20, (uint32_t)(b.len - SNAP_HDR));

  rc = PARLEY_EIO;
  fd = open(rs->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0 ||
      rename(rs->tmp_path, rs->snap_path) < 0) {
    PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "writing %s: %s", rs->tmp_path,
               strerror(errno));
    unlink(rs->tmp_path);
    goto out; /* the old snapshot and the log are still intact */
  }
  /* From here on the new snapshot is live; a failure leaves consistent
   * files (see the top of the file) but this handle stops writing. */
  if (fsync(rs->dirfd) < 0)
    goto post_rename_fail;
  if (folded != 0) {
    if (ftruncate(rs->logfd, 0) < 0 || fsync(rs->logfd) < 0)
      goto post_rename_fail;
    if (pwrite(fd, zero, sizeof zero, SNAP_FOLDED_OFF) !=
            (ssize_t)sizeof zero ||
        fdatasync(fd) < 0)
      goto post_rename_fail;
  }
  rs->entries = 0;
  rs->log_size = 0;
  rc = PARLEY_OK;
  PARLEY_LOG(&rs->log, PARLEY_LOG_DEBUG,
             "%s: compacted %llu log records into %zu bytes", rs->snap_path,
             (unsigned long long)folded, b.len);
  goto out;
post_rename_fail:
  PARLEY_LOG(&rs->log, PARLEY_LOG_ERROR, "compacting %s: %s", rs->snap_path,
             strerror(errno));
  rs->failed = 1;
  rc = PARLEY_EIO;
out:
  if (fd >= 0)
    close(fd);
  parley_buf_close(&b);
  return rc;
}

uint64_t parley_regstore_log_entries(const struct parley_regstore *rs) {
  return rs->entries + rs->npending;
}
