/*
 * store_int.h — internals shared by the store's .c files and its unit test.
 *
 * store.c opens, migrates and closes the database, owns the statement
 * cache, the error path and transactions; store_msg.c stores and queries
 * messages; store_state.c keeps the small tables (sequence counters, outbox,
 * subscriptions, peer cache); store_chain.c the hash chains; store_trust.c
 * pinned keys and replay windows; store_obatch.c outbox batches;
 * store_pend.c pending message rows; store_pub.c publisher ids.  Nothing
 * outside src/store/ and the store's unit tests includes this header; the
 * contract is store.h.
 */
#ifndef PARLEY_STORE_STORE_INT_H
#define PARLEY_STORE_STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"
#include "core/map.h"
#include "store/store.h"

/* Longest search text parley_store_query accepts (bytes); longer is
 * PARLEY_ETOOBIG.  Keeps the quoted FTS5 query and its parse small. */
#define PARLEY_STORE_MAX_SEARCH 1024u

/* A message row keeps its publisher as an id into publishers (schema 8):
 * PUB_ID turns a bound key into that id (NULL, matching nothing, for a key
 * never stored), PUB_KEY an id column back into the key. */
#define PUB_ID(param) "(SELECT id FROM publishers WHERE pk = " param ")"
#define PUB_KEY(col) "(SELECT pk FROM publishers WHERE id = " col ")"

/* The columns of a message row, in the order parley__store_read_msg reads;
 * STORE_MSG_COLS_OF("m.") names them for a table called m. */
#define STORE_MSG_COLS_OF(t)                                                   \
  t "rowid, " PUB_KEY(t "publisher") ", " t "channel, " t "seq, " t "ts, " t   \
  "flags, " t "body, " t "outgoing, " t "stored, " t "chain"
#define STORE_MSG_COLS STORE_MSG_COLS_OF("")
#define STORE_MSG_NCOLS 10

/* Every fixed statement, prepared once at open and reused.  SQL text is
 * constant; values are bound.  */
/* X(name, sql) */
#define STORE_STMT_MAP(X)                                                      \
  X(BEGIN, "BEGIN IMMEDIATE")                                                  \
  X(COMMIT, "COMMIT")                                                          \
  X(ROLLBACK, "ROLLBACK")                                                      \
  X(PUT, "INSERT INTO messages (publisher, channel, seq, ts, flags, body,"     \
         " outgoing, stored, chain)"                                           \
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"                        \
         " ON CONFLICT (publisher, channel, seq) DO NOTHING")                  \
  X(FTS_PUT, "INSERT INTO messages_fts (rowid, body)"                         \
             " VALUES (?1, CAST(?2 AS TEXT))")                                 \
  X(PUT_BEGIN, "SAVEPOINT put_one")                                            \
  X(PUT_END, "RELEASE put_one")                                                \
  X(PUT_UNDO, "ROLLBACK TO put_one")                                           \
  X(SPAN_PUT, "INSERT INTO spans (publisher, channel, lo, hi, ts_lo, ts_hi)"   \
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                              \
  X(SPAN_ROWS, "SELECT rowid, ts FROM messages NOT INDEXED"                   \
               " WHERE rowid BETWEEN ?1 AND ?2"                                \
               " AND publisher = ?3 AND channel = ?4 AND ts BETWEEN ?5 AND ?6" \
               " AND rowid > ?7")                                              \
  X(EMIT_ROWS, "SELECT " STORE_MSG_COLS_OF("m.")                              \
               " FROM json_each(?1) j JOIN messages m ON m.rowid = j.value"    \
               " ORDER BY j.key")                                              \
  X(GET, "SELECT " STORE_MSG_COLS " FROM messages"                             \
         " WHERE publisher = " PUB_ID("?1") " AND channel = ?2 AND seq = ?3")  \
  X(COUNT_MSG, "SELECT count(*) FROM messages")                                \
  X(PUB_GET, "SELECT id FROM publishers WHERE pk = ?1")                        \
  X(PUB_ADD, "INSERT INTO publishers (pk) VALUES (?1) RETURNING id")          \
  X(ROWID_TOP, "SELECT coalesce(max(rowid), 0) FROM messages")                 \
  X(SEQ_TOP, "SELECT coalesce(max(seq), -1) FROM messages"                     \
             " WHERE publisher = " PUB_ID("?1") " AND channel = ?2")           \
  X(NEXT_SEQ, "INSERT INTO seqs (channel, next) VALUES (?1, 2)"                \
              " ON CONFLICT (channel) DO UPDATE SET next = next + 1"           \
              " WHERE next < 9223372036854775807 RETURNING next - 1")          \
  X(OB_ADD, "INSERT INTO outbox (msg_rowid, recipient, attempts, next_try,"    \
            " created) VALUES (?1, ?2, 0, ?3, ?3)"                             \
            " ON CONFLICT (recipient, msg_rowid) DO NOTHING")                  \
  X(OB_ACK, "DELETE FROM outbox WHERE recipient = ?1 AND msg_rowid ="          \
            " (SELECT rowid FROM messages"                                     \
            "  WHERE publisher = " PUB_ID("?2") " AND channel = ?3"            \
            "  AND seq = ?4)")                                                 \
  X(OB_ACK_ROW, "DELETE FROM outbox WHERE recipient = ?1 AND msg_rowid = ?2") \
  X(OB_DUE_IDS, "SELECT id FROM outbox WHERE next_try <= ?1"                   \
                " ORDER BY next_try, id LIMIT ?2")                             \
  X(OB_FOR_IDS, "SELECT id FROM outbox WHERE recipient = ?1 ORDER BY id")      \
  X(OB_ROW, "SELECT o.id, o.msg_rowid, o.recipient, o.attempts, o.next_try,"   \
            " o.created, " STORE_MSG_COLS_OF("m.")                             \
            " FROM outbox o JOIN messages m ON m.rowid = o.msg_rowid"          \
            " WHERE o.id = ?1")                                                \
  X(OB_RESCHED, "UPDATE outbox SET attempts = ?2, next_try = ?3"               \
                " WHERE id = ?1")                                              \
  X(OB_EXPIRE, "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o"     \
               " LEFT JOIN peers p ON p.pk = o.recipient"                      \
               " WHERE coalesce(p.last_seen, o.created) < ?1)")                \
  X(OB_COUNT, "SELECT count(*) FROM outbox")                                   \
  X(OB_PUT, "INSERT INTO outbox (msg_rowid, recipient, attempts, next_try,"    \
            " created) SELECT rowid, ?2, 0, ?3, ?4 FROM messages"              \
            " WHERE rowid = ?1 ON CONFLICT (recipient, msg_rowid) DO NOTHING") \
  X(OB_FLOOR, "SELECT coalesce(max(msg_rowid), 0) FROM outbox")                \
  X(OBB_PUT, "INSERT INTO outbox_batch (recipient, rowids, next_try, created)" \
             " VALUES (?1, ?2, ?3, ?4)")                                       \
  X(OBB_DEL, "DELETE FROM outbox_batch WHERE id = ?1")                         \
  X(OBB_SET, "UPDATE outbox_batch SET rowids = ?2 WHERE id = ?1")              \
  X(OBB_ALL, "SELECT id, recipient, rowids, next_try, created"                 \
             " FROM outbox_batch ORDER BY id")                                 \
  X(MSG_ROWID, "SELECT rowid FROM messages WHERE publisher = " PUB_ID("?1")   \
               " AND channel = ?2 AND seq = ?3")                               \
  X(SUB_ADD, "INSERT INTO subs (topic, created) VALUES (?1, ?2)"               \
             " ON CONFLICT (topic) DO NOTHING")                                \
  X(SUB_DEL, "DELETE FROM subs WHERE topic = ?1")                              \
  X(SUB_LIST, "SELECT topic FROM subs ORDER BY topic")                         \
  X(PEER_SEEN, "INSERT INTO peers (pk, addr, name, last_seen)"                 \
               " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pk) DO UPDATE SET"       \
               " addr = coalesce(excluded.addr, addr),"                        \
               " name = coalesce(excluded.name, name),"                        \
               " last_seen = max(last_seen, excluded.last_seen)")              \
  X(PEER_GET, "SELECT addr, name, last_seen FROM peers WHERE pk = ?1")        \
  X(CHAIN_HEAD, "SELECT next - 1, CASE WHEN chain_seq = next - 1 THEN chain"   \
                " END FROM seqs WHERE channel = ?1")                           \
  X(CHAIN_PUT, "INSERT INTO seqs (channel, next, chain, chain_seq)"            \
               " VALUES (?1, ?2 + 1, ?3, ?2) ON CONFLICT (channel) DO UPDATE"  \
               " SET next = excluded.next, chain = excluded.chain,"            \
               " chain_seq = excluded.chain_seq")                              \
  X(CHAIN_HEADS, "SELECT channel, chain_seq, chain FROM seqs"                  \
                 " WHERE chain IS NOT NULL AND chain_seq = next - 1"           \
                 " ORDER BY channel")                                          \
  X(CHAIN_AT_MSG, "SELECT chain FROM messages WHERE publisher = "             \
                  PUB_ID("?1") " AND channel = ?2 AND seq = ?3")               \
  X(CP_AT, "SELECT hash FROM chain_sigs"                                       \
           " WHERE publisher = ?1 AND channel = ?2 AND seq = ?3")              \
  X(CP_PUT, "INSERT INTO chain_sigs (publisher, channel, seq, hash, sig)"      \
            " VALUES (?1, ?2, ?3, ?4, ?5)"                                     \
            " ON CONFLICT (publisher, channel, seq) DO NOTHING")               \
  X(CP_FIRST, "SELECT seq, hash, sig FROM chain_sigs WHERE publisher = ?1"     \
              " AND channel = ?2 AND seq >= ?3 AND seq <= ?4"                  \
              " ORDER BY seq LIMIT 1")                                         \
  X(CP_LAST, "SELECT seq, hash, sig FROM chain_sigs WHERE publisher = ?1"      \
             " AND channel = ?2 AND seq >= ?3 AND seq <= ?4"                   \
             " ORDER BY seq DESC LIMIT 1")                                     \
  X(SUMMARY, "SELECT c.publisher, max(c.seq), coalesce((SELECT max(m.seq)"     \
             " FROM messages m WHERE m.publisher = " PUB_ID("c.publisher")     \
             " AND m.channel = ?1), 0) FROM chain_sigs c WHERE c.channel = ?1" \
             " GROUP BY c.publisher ORDER BY c.publisher LIMIT ?2")            \
  X(SEQ_HELD, "SELECT 1 FROM messages WHERE publisher = " PUB_ID("?1")        \
              " AND channel = ?2 AND seq = ?3")                                \
  X(SEQ_GAP, "SELECT m.seq + 1 FROM messages m WHERE m.publisher = "          \
             PUB_ID("?1") " AND m.channel = ?2 AND m.seq >= ?3 AND m.seq < ?4" \
             " AND NOT EXISTS (SELECT 1 FROM messages x"                       \
             "  WHERE x.publisher = m.publisher AND x.channel = ?2"            \
             "  AND x.seq = m.seq + 1) ORDER BY m.seq LIMIT 1")                \
  X(SEQ_NEXT, "SELECT min(seq) FROM messages WHERE publisher = " PUB_ID("?1") \
              " AND channel = ?2 AND seq > ?3 AND seq <= ?4")                  \
  X(SEQ_RANGE, "SELECT " STORE_MSG_COLS " FROM messages"                       \
               " WHERE publisher = " PUB_ID("?1") " AND channel = ?2"          \
               " AND seq >= ?3"                                                \
               " AND seq <= ?4 ORDER BY seq LIMIT ?5")                         \
  X(PIN_PUT, "INSERT INTO trust (pk, name, addr, safety, since)"               \
             " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (pk) DO UPDATE SET"     \
             " name = excluded.name, addr = excluded.addr,"                    \
             " safety = excluded.safety")                                      \
  X(PIN_DEL, "DELETE FROM trust WHERE pk = ?1")                                \
  X(PIN_ADDR, "UPDATE trust SET addr = ?2 WHERE pk = ?1")                      \
  X(PIN_LIST, "SELECT pk, name, addr, safety, since FROM trust"                \
              " ORDER BY since, pk")                                           \
  X(REPLAY_GET, "SELECT top, seen FROM e2e_replay"                             \
                " WHERE publisher = ?1 AND channel = ?2")                      \
  X(REPLAY_PUT, "INSERT INTO e2e_replay (publisher, channel, top, seen)"       \
                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (publisher, channel)"    \
                " DO UPDATE SET top = excluded.top, seen = excluded.seen")     \
  X(OB_BY_RCPT, "SELECT recipient, count(*) FROM outbox GROUP BY recipient")  \
  X(TKEY_PUT, "INSERT INTO topic_keys (topic, epoch, blob, stored)"            \
              " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (topic, epoch)"            \
              " DO UPDATE SET blob = excluded.blob, stored = excluded.stored") \
  X(TKEY_LIST, "SELECT topic, epoch, blob FROM topic_keys"                     \
               " ORDER BY topic, epoch")                                       \
  X(TOPT_PUT, "INSERT INTO topic_opts (topic, history) VALUES (?1, ?2)"        \
              " ON CONFLICT (topic) DO UPDATE SET history = excluded.history") \
  X(TOPT_LIST, "SELECT topic, history FROM topic_opts ORDER BY topic")

enum store_stmt {
#define STORE_STMT_ENUM(name, sql) ST_##name,
  STORE_STMT_MAP(STORE_STMT_ENUM)
#undef STORE_STMT_ENUM
      ST_COUNT
};

/* One history query shape per combination of the 8 optional filters. */
#define STORE_QUERY_SHAPES 256

/* This peer's chain head of one channel, as the seqs table has it or as
 * the open transaction advanced it (store_chain.c). */
struct store_head;
/* Acknowledged deliveries to one recipient from one transaction, and the
 * recipient's batches (store_obatch.c). */
struct ob_batch;

struct parley_store {
  sqlite3 *db;
  const struct parley_log *lg; /* borrowed, may be NULL */
  int version;                 /* schema version after open */
  int migrations_applied;      /* by the last open */
  sqlite3_stmt *stmt[ST_COUNT];
  sqlite3_stmt *shape[STORE_QUERY_SHAPES]; /* prepared on first use */
  /* Chain heads read or advanced, by channel; the ones advanced in the
   * open transaction are written to seqs once, at commit. */
  struct parley_map heads; /* channel -> struct store_head* */
  size_t ndirty;           /* heads advanced in the open transaction */
  /* Outbox batches (store_obatch.c): by recipient, and all of them oldest
   * first; ob_left counts their deliveries not acked yet.  ob_stale: a
   * rollback may have undone what memory says, reload before use.
   * ob_dirty: written batches acked in part in the open transaction (their
   * rows are rewritten at commit). */
  struct parley_map ob;    /* recipient (32) -> struct ob_rcpt* */
  struct ob_batch *ob_first, *ob_last;
  uint64_t ob_left;
  int64_t ob_floor;        /* highest msg_rowid in outbox rows at load */
  int ob_stale;
  size_t ob_dirty;
  /* Pending rows (store_pend.c): messages put in the open transaction and
   * not inserted yet, their bytes (channels and bodies) in pend_bytes. */
  struct pend_row *pend;
  size_t npend, pend_cap;
  uint8_t *pend_bytes;
  size_t pend_len, pend_bytes_cap;
  int64_t pend_next;       /* rowid of the next pending row; 0: not read */
  int pend_flushing;       /* inserting them: no flush from run_start */
  int pend_failed;         /* an insert failed: the commit must fail */
  sqlite3_stmt *pend_st[2]; /* one row, a chunk of rows */
  struct parley_map hwm;   /* publisher (32) + channel -> struct pend_hwm* */
  /* Publisher ids (store_pub.c): key (32) -> int64_t*, the entry found
   * last, and whether the open transaction added a publisher (a rollback
   * then forgets them all). */
  struct parley_map pubs;
  struct parley_map_memo pub_memo;
  int pub_unsure;
  char errmsg[256];
};

/* A statement checked out for one call: the cached one, or a private copy
 * when the cached one is still running further up the stack (a callback
 * calling back into the store). */
struct store_run {
  sqlite3_stmt *st;
  int temp; /* 1: finalize when done, 0: reset and clear */
};

/* Records "what: text" as the store's last error (parley_store_errmsg),
 * logs it and returns rc. */
int parley__store_fail(struct parley_store *s, int rc, const char *what,
                       const char *text) PARLEY_NONNULL(1, 3, 4);
/* An SQLite failure: records SQLite's message and returns the Parley code
 * for src (unique conflict EEXIST, foreign key ENOTFOUND, CHECK / NOT NULL
 * EINVAL, otherwise parley_err_from_sqlite). */
int parley__store_fail_sql(struct parley_store *s, int src, const char *what)
    PARLEY_NONNULL(1, 3);

/* Prepares sql (persistent).  OUT: *out, NULL on failure. */
PARLEY_NODISCARD int parley__store_prepare(struct parley_store *s,
                                           const char *sql, sqlite3_stmt **out)
    PARLEY_NONNULL(1, 2, 3);
/* Checks out cached for one call (see struct store_run).  Always pair with
 * parley__store_run_end, which resets or finalizes. */
PARLEY_NODISCARD int parley__store_run_start(struct parley_store *s,
                                             sqlite3_stmt *cached,
                                             struct store_run *r)
    PARLEY_NONNULL(1, 2, 3);
void parley__store_run_end(struct store_run *r) PARLEY_NONNULL(1);

/* Runs fixed statement id, which takes no values (BEGIN, COMMIT, the
 * savepoints), to completion. */
int parley__store_run_simple(struct parley_store *s, enum store_stmt id,
                             const char *what) PARLEY_NONNULL(1, 3);
/* Steps r to completion, ignoring rows.  OUT: *changes (may be NULL). */
PARLEY_NODISCARD int parley__store_exec(struct parley_store *s,
                                        struct store_run *r, const char *what,
                                        int64_t *changes)
    PARLEY_NONNULL(1, 2, 3);
/* One step that must yield an integer row: OUT: *v; PARLEY_ENOTFOUND when
 * the statement returned no row. */
PARLEY_NODISCARD int parley__store_step_i64(struct parley_store *s,
                                            struct store_run *r,
                                            const char *what, int64_t *v)
    PARLEY_NONNULL(1, 2, 3, 4);
/* Chain-head cache (store_chain.c): writes the heads the open transaction
 * advanced (before COMMIT and before anything reads seqs); forgets one
 * channel's head or all of them (after a rollback, at close). */
PARLEY_NODISCARD int parley__store_heads_flush(struct parley_store *s)
    PARLEY_NONNULL(1);
void parley__store_heads_forget(struct parley_store *s, const char *channel)
    PARLEY_NONNULL(1, 2);
void parley__store_heads_drop(struct parley_store *s) PARLEY_NONNULL(1);
/* Runs a fixed count(*) statement.  OUT: *n. */
PARLEY_NODISCARD int parley__store_count(struct parley_store *s,
                                         enum store_stmt id, const char *what,
                                         uint64_t *n) PARLEY_NONNULL(1, 3, 4);
/* Fills *m from columns [c, c + STORE_MSG_NCOLS) of the current row
 * (STORE_MSG_COLS).
 * The pointers are SQLite's, valid until the next step or reset. */
PARLEY_NODISCARD int parley__store_read_msg(struct parley_store *s,
                                            sqlite3_stmt *st, int c,
                                            struct parley_msg *m)
    PARLEY_NONNULL(1, 2, 4);
/* 1 if c[0..n) is an acceptable channel: 1..PARLEY_MAX_TOPIC bytes, no
 * NUL. */
int parley__store_channel_ok(const char *c, size_t n);

/* Bind helpers: each passes on an earlier failure (src) or returns its own,
 * so a run of binds is checked once at the end. */
static inline int bind_i64(int src, sqlite3_stmt *st, int i, int64_t v) {
  return src != SQLITE_OK ? src : sqlite3_bind_int64(st, i, v);
}

static inline int bind_blob(int src, sqlite3_stmt *st, int i, const void *p,
                            size_t n) {
  if (src != SQLITE_OK)
    return src;
  if (n == 0) /* a NULL pointer would bind SQL NULL, not an empty blob */
    return sqlite3_bind_zeroblob(st, i, 0);
  return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC);
}

/* A NULL p binds SQL NULL. */
static inline int bind_text(int src, sqlite3_stmt *st, int i, const char *p,
                            size_t n) {
  if (src != SQLITE_OK)
    return src;
  if (p == NULL)
    return sqlite3_bind_null(st, i);
  return sqlite3_bind_text(st, i, p, (int)n, SQLITE_STATIC);
}

/* Outbox batches (store_obatch.c).  Each entry point reloads them first
 * if a rollback left them stale. */
/* Takes (rowid, recipient) into the recipient's batch of the open
 * transaction: 1 if taken, 0 if the caller writes an outbox row instead (no
 * transaction open, or a rowid not above the recipient's latest). */
PARLEY_NODISCARD int parley__ob_add(struct parley_store *s, int64_t rowid,
                                    const uint8_t recipient[32],
                                    int64_t now_ms) PARLEY_NONNULL(1, 3);
/* Marks (recipient, rowid) acked: 1 if it was in a batch, 0 if not (look in
 * the outbox table), PARLEY_ENOTFOUND if it was acked already. */
PARLEY_NODISCARD int parley__ob_ack(struct parley_store *s,
                                    const uint8_t recipient[32],
                                    int64_t rowid) PARLEY_NONNULL(1, 2);
/* 1 if recipient has batches (acks by name must look up the rowid). */
int parley__ob_has(struct parley_store *s, const uint8_t recipient[32])
    PARLEY_NONNULL(1, 2);
/* Turns the unacked deliveries of the matching batches into outbox rows and
 * drops the batches: those due by now_ms (INT64_MAX: all), those of
 * recipient (when not NULL), those created before created_before. */
PARLEY_NODISCARD int parley__ob_expand(struct parley_store *s, int64_t now_ms,
                                       const uint8_t *recipient,
                                       int64_t created_before)
    PARLEY_NONNULL(1);
/* Deliveries waiting in batches. */
PARLEY_NODISCARD int parley__ob_left(struct parley_store *s, uint64_t *n)
    PARLEY_NONNULL(1, 2);
/* Writes the open transaction's batches and the unacked rest of the
 * written ones it acked in part (before COMMIT). */
PARLEY_NODISCARD int parley__ob_flush(struct parley_store *s)
    PARLEY_NONNULL(1);
/* Reads the batch rows into memory (at open). */
PARLEY_NODISCARD int parley__ob_load(struct parley_store *s)
    PARLEY_NONNULL(1);
/* Frees what memory holds of them. */
void parley__ob_drop(struct parley_store *s) PARLEY_NONNULL(1);

/* ---- store_pub.c: publisher ids ---- */

/* The id of publisher key pk in publishers, added when new.  OUT: *id. */
PARLEY_NODISCARD int parley__store_pub_id(struct parley_store *s,
                                          const uint8_t pk[32], int64_t *id)
    PARLEY_NONNULL(1, 2, 3);
/* Transaction hooks: a commit keeps the ids learnt, a rollback (or a
 * transaction SQLite ended on its own, seen at the next begin) forgets
 * them if the transaction added any. */
void parley__store_pub_commit(struct parley_store *s) PARLEY_NONNULL(1);
void parley__store_pub_rollback(struct parley_store *s) PARLEY_NONNULL(1);
void parley__store_pub_free(struct parley_store *s) PARLEY_NONNULL(1);

/* ---- store_pend.c: pending message rows ---- */

/* Keeps m (put inside a transaction) as a pending row.  OUT: *rowid, the
 * rowid it will have.  PARLEY_EAGAIN: m may be stored already (its seq is
 * not above the publisher's mark for the channel) or memory is short:
 * take the ordinary path.  Other errors come from reading the marks. */
PARLEY_NODISCARD int parley__pend_put(struct parley_store *s,
                                      const struct parley_msg *m,
                                      int64_t *rowid) PARLEY_NONNULL(1, 2, 3);
/* Inserts the pending rows; a failure also sets pend_failed. */
int parley__pend_flush(struct parley_store *s) PARLEY_NONNULL(1);
/* After an ordinary insert of m as rowid: keeps the marks and the next
 * rowid right. */
void parley__pend_stored(struct parley_store *s, const struct parley_msg *m,
                         int64_t rowid) PARLEY_NONNULL(1, 2);
void parley__pend_drop(struct parley_store *s) PARLEY_NONNULL(1);
void parley__pend_free(struct parley_store *s) PARLEY_NONNULL(1);
/* store_msg.c: m's body into the full-text index under rowid id. */
PARLEY_NODISCARD int parley__store_put_text(struct parley_store *s, int64_t id,
                                            const struct parley_msg *m)
    PARLEY_NONNULL(1, 3);
/* store_msg.c: a span (schema 9): the rows lo..hi (rowids) from publisher
 * id pub on channel ch[0..chlen) include every message of that publisher
 * on that channel in the range, with ts in ts_lo..ts_hi.  Rows of others
 * may lie between them. */
PARLEY_NODISCARD int parley__store_span_put(struct parley_store *s,
                                            int64_t pub, const char *ch,
                                            size_t chlen, int64_t lo,
                                            int64_t hi, int64_t ts_lo,
                                            int64_t ts_hi)
    PARLEY_NONNULL(1, 3);

/* The rowids column of outbox_batch: runs of consecutive rowids, each
 * PARLEY_OB_RUN bytes: the first (int64, little-endian, > 0) and the count
 * (uint32, little-endian, >= 1); runs ascending, not touching.  At most
 * PARLEY_OB_BATCH_MAX rowids in all. */
#define PARLEY_OB_RUN 12u
#define PARLEY_OB_BATCH_MAX 65536u
/* Encodes v[0..n) (strictly ascending, > 0).  Returns the bytes written to
 * out, which needs PARLEY_OB_RUN * n bytes at most. */
size_t parley__ob_encode(const int64_t *v, size_t n, uint8_t *out);
/* Decodes b[0..len) into out[0..cap).  OUT: *n.  PARLEY_EPROTO if b is not
 * a valid encoding, PARLEY_ETOOBIG if it holds more than cap rowids. */
PARLEY_NODISCARD int parley__ob_decode(const uint8_t *b, size_t len,
                                       int64_t *out, size_t cap, size_t *n);

/* ---- For tests ---- */

/* Turns user text into an FTS5 query that is never FTS syntax: the text is
 * split on ASCII whitespace, every word is wrapped in double quotes (inner
 * quotes doubled) and the words are joined by single spaces, which FTS5
 * reads as AND.  OUT: *out, NUL-terminated, caller frees with parley_free;
 * NULL when the text holds no word.  PARLEY_ETOOBIG if in is longer than
 * PARLEY_STORE_MAX_SEARCH, PARLEY_ENOMEM. */
PARLEY_NODISCARD int parley__store_fts_quote(const char *in, char **out)
    PARLEY_NONNULL(1, 2);

/* Number of migration steps the last parley_store_open applied (0 when the
 * database was already current). */
int parley__store_migrations_applied(const struct parley_store *s)
    PARLEY_NONNULL(1);

/* The schema version this build migrates to. */
int parley__store_schema_latest(void);

#endif
