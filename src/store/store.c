/*
 * store.c — the peer's local store on SQLite (contract in store.h; design
 * notes in docs/internals/STORE.md).  This file opens, configures, migrates
 * and closes the database and owns the statement cache, the error path and
 * transactions; store_msg.c holds messages and history queries,
 * store_state.c the sequence counters, outbox, subscriptions and peer cache,
 * store_obatch.c the outbox's batches (deliveries added in a transaction,
 * one row per recipient), store_pend.c the pending message rows (messages
 * put in a transaction, inserted a chunk at a time), store_chain.c the hash
 * chains, checkpoints and anti-entropy queries, store_trust.c the pinned
 * keys and the end-to-end replay windows.
 *
 * Connection: opened READWRITE|CREATE|NOMUTEX with extended result codes,
 * journal_mode=WAL, synchronous=FULL (a commit is on disk when it returns,
 * so an acknowledged message survives a power cut, not only a crash; the
 * fsync is paid once per loop-turn transaction), foreign_keys=ON, a busy
 * timeout, and SQLITE_DBCONFIG_DEFENSIVE.
 *
 * Statements: every fixed statement is prepared once at open (stmt_sql[])
 * and reset after each use.  History queries come in up to 256 shapes (one
 * per combination of filters); each shape's SQL is assembled from constant
 * fragments and prepared on first use, then cached.  User input only ever
 * reaches SQLite through bound parameters.  A callback may call back into
 * the store: when a cached statement is still running further up the stack,
 * a private copy is prepared for the nested call.
 *
 * Query semantics (parley_store_query):
 *   - Filters apply only when set: channel non-NULL and non-empty;
 *     direct_only non-zero (channel starts with '@'; tested with substr, not
 *     LIKE, so no escaping question arises); from non-NULL; since_ms other
 *     than INT64_MIN; until_ms other than INT64_MAX; search holding at least
 *     one word; after_rowid > 0.  A zeroed struct therefore asks for
 *     ts in [0, 0]: start from since_ms = INT64_MIN, until_ms = INT64_MAX.
 *   - Results are oldest first: ORDER BY ts, rowid.
 *   - With a limit, the NEWEST `limit` matches are returned, still oldest
 *     first: `history --limit 10` shows the last ten messages in reading
 *     order.  Paging forward uses after_rowid.
 *   - search: see parley__store_fts_quote (store_int.h); words are ANDed.
 *     Only bodies without PARLEY_MSG_BINARY are indexed.
 *
 * Other choices the header leaves open:
 *   - put_message: stored_ms = 0 means "now" (parley_now_ms()).  Channel is
 *     1..PARLEY_MAX_TOPIC bytes without NUL, body at most PARLEY_MAX_FRAME.
 *     Inside a transaction the row is usually pending (store_pend.c):
 *     inserted before the next statement or the commit, and an insert that
 *     fails then makes the commit fail.
 *   - outbox_add of a msg_rowid that is not stored is PARLEY_ENOTFOUND.  A
 *     new row is due at once (next_try = created = now_ms).  Inside a
 *     transaction a new delivery is batched instead (store_obatch.c) and
 *     becomes a row only if still unacked when due, walked or expired;
 *     there a missing msg_rowid is skipped when the batch becomes rows.
 *     Every outbox call sees batched deliveries as if they were rows; an
 *     ack held in memory is lost by a crash, so that delivery is sent
 *     again (at least once).
 *   - outbox_due / outbox_for take a snapshot of the matching row ids first
 *     and then deliver each row that still exists, so the callback may ack,
 *     reschedule or add rows without disturbing the walk.  A callback
 *     returning non-zero stops the walk and that value is returned (as for
 *     query, get_message and sub_list).
 *   - outbox_reschedule of an unknown id is PARLEY_ENOTFOUND.
 *   - sub_add of a topic already held is a no-op; topics must pass
 *     parley_topic_valid.
 *   - peer_seen: a NULL addr or name keeps the stored one; last_seen only
 *     moves forward.  addr <= PARLEY_MAX_ADDR, name <= PARLEY_MAX_NAME bytes.
 *   - begin inside a transaction and commit outside one are PARLEY_EINVAL;
 *     rollback outside one is a no-op, because SQLite itself rolls back on
 *     some errors (disk full, I/O) and the caller's cleanup must still work.
 *     parley_store_in_tx asks SQLite, so it is right after such a rollback.
 */
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "store/store_int.h"

#define BUSY_TIMEOUT_MS 5000
/* "PRLY" in PRAGMA application_id marks the file as a Parley store. */
#define APPLICATION_ID 0x50524c59

/* ---- Schema and migrations ---------------------------------------------- */

/* Each step runs in its own transaction and ends by setting user_version to
 * its own number.  Steps are append-only: a released step never changes. */
static const char *const migrations[] = {
    /* 1: initial schema. */
    "PRAGMA application_id = 1347570777;\n" /* 0x50524c59 */
    "CREATE TABLE messages (\n"
    "  rowid INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  publisher BLOB NOT NULL CHECK (length(publisher) = 32),\n"
    "  channel TEXT NOT NULL CHECK (length(channel) > 0),\n"
    "  seq INTEGER NOT NULL CHECK (seq >= 0),\n"
    "  ts INTEGER NOT NULL,\n"
    "  flags INTEGER NOT NULL,\n"
    "  body BLOB NOT NULL,\n"
    "  outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),\n"
    "  stored INTEGER NOT NULL,\n"
    "  UNIQUE (publisher, channel, seq)\n"
    ");\n"
    "CREATE INDEX messages_channel_ts ON messages (channel, ts);\n"
    "CREATE INDEX messages_publisher_ts ON messages (publisher, ts);\n"
    "CREATE INDEX messages_ts ON messages (ts);\n"
    /* Only text bodies are indexed: 4 is PARLEY_MSG_BINARY (wire/wire.h),
     * a protocol constant, spelled out because a released migration
     * never changes.
     * Contentless: the text lives in messages.body; FTS keeps only the
     * index, keyed by messages.rowid.  Triggers keep it in step inside the
     * writing statement itself, so it can never disagree with messages. */
    "CREATE VIRTUAL TABLE messages_fts USING fts5 (\n"
    "  body, content = '', tokenize = 'unicode61 remove_diacritics 2'\n"
    ");\n"
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages\n"
    "WHEN (new.flags & 4) = 0 BEGIN\n"
    "  INSERT INTO messages_fts (rowid, body)\n"
    "  VALUES (new.rowid, CAST(new.body AS TEXT));\n"
    "END;\n"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages\n"
    "WHEN (old.flags & 4) = 0 BEGIN\n"
    "  INSERT INTO messages_fts (messages_fts, rowid, body)\n"
    "  VALUES ('delete', old.rowid, CAST(old.body AS TEXT));\n"
    "END;\n"
    "CREATE TABLE outbox (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  msg_rowid INTEGER NOT NULL\n"
    "    REFERENCES messages (rowid) ON DELETE CASCADE,\n"
    "  recipient BLOB NOT NULL CHECK (length(recipient) = 32),\n"
    "  attempts INTEGER NOT NULL DEFAULT 0,\n"
    "  next_try INTEGER NOT NULL,\n"
    "  created INTEGER NOT NULL,\n"
    "  UNIQUE (msg_rowid, recipient)\n"
    ");\n"
    "CREATE INDEX outbox_next_try ON outbox (next_try);\n"
    "CREATE INDEX outbox_recipient ON outbox (recipient);\n"
    "CREATE TABLE seqs (\n"
    "  channel TEXT PRIMARY KEY,\n"
    "  next INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE subs (\n"
    "  topic TEXT PRIMARY KEY,\n"
    "  created INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE peers (\n"
    "  pk BLOB PRIMARY KEY CHECK (length(pk) = 32),\n"
    "  addr TEXT,\n"
    "  name TEXT,\n"
    "  last_seen INTEGER NOT NULL\n"
    ");\n"
    "PRAGMA user_version = 1;\n",
    /* 2: hash chains (crypto/chain.h) for verifiable relaying.  Each
     * message keeps the publisher's chain value after it; seqs keeps this
     * peer's own head (chain_seq says which seq the value belongs to, so a
     * head that fell behind `next` reads as "no value"); chain_sigs keeps
     * signed checkpoints of every publisher, indexed by channel for the
     * anti-entropy summary. */
    "ALTER TABLE messages ADD COLUMN chain BLOB\n"
    "  CHECK (chain IS NULL OR length(chain) = 32);\n"
    "ALTER TABLE seqs ADD COLUMN chain BLOB\n"
    "  CHECK (chain IS NULL OR length(chain) = 32);\n"
    "ALTER TABLE seqs ADD COLUMN chain_seq INTEGER;\n"
    "CREATE TABLE chain_sigs (\n"
    "  publisher BLOB NOT NULL CHECK (length(publisher) = 32),\n"
    "  channel TEXT NOT NULL CHECK (length(channel) > 0),\n"
    "  seq INTEGER NOT NULL CHECK (seq > 0),\n"
    "  hash BLOB NOT NULL CHECK (length(hash) = 32),\n"
    "  sig BLOB NOT NULL CHECK (length(sig) = 64),\n"
    "  PRIMARY KEY (publisher, channel, seq)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX chain_sigs_channel ON chain_sigs (channel, publisher, seq);\n"
    "PRAGMA user_version = 2;\n",
    /* 3: end-to-end direct messages and key verification.  trust keeps the
     * keys the user pinned with `parley trust` (a contact name, if any, is
     * unique: one name, one key) and the address last seen for each;
     * e2e_replay keeps the receiver's replay window (crypto/e2e.h) per
     * (sender, direct channel), written in the transaction that stores
     * the message it accepted. */
    "CREATE TABLE trust (\n"
    "  pk BLOB PRIMARY KEY CHECK (length(pk) = 32),\n"
    "  name TEXT NOT NULL DEFAULT '',\n"
    "  addr TEXT NOT NULL DEFAULT '',\n"
    "  safety TEXT NOT NULL,\n"
    "  since INTEGER NOT NULL\n"
    ");\n"
    "CREATE UNIQUE INDEX trust_name ON trust (name) WHERE name <> '';\n"
    "CREATE TABLE e2e_replay (\n"
    "  publisher BLOB NOT NULL CHECK (length(publisher) = 32),\n"
    "  channel TEXT NOT NULL CHECK (length(channel) > 0),\n"
    "  top INTEGER NOT NULL CHECK (top >= 0),\n"
    "  seen INTEGER NOT NULL,\n"
    "  PRIMARY KEY (publisher, channel)\n"
    ") WITHOUT ROWID;\n"
    "PRAGMA user_version = 3;\n",
    /* 4: private topics.  topic_keys keeps the key blobs this peer
     * received (crypto/groupkey.h: each one sealed to this peer's own key,
     * so the table holds no topic key in the clear), one per (topic,
     * epoch), so that messages of old epochs stay readable after the
     * index has forgotten those blobs. */
    "CREATE TABLE topic_keys (\n"
    "  topic TEXT NOT NULL CHECK (length(topic) > 0),\n"
    "  epoch INTEGER NOT NULL CHECK (epoch >= 1),\n"
    "  blob BLOB NOT NULL CHECK (length(blob) > 0),\n"
    "  stored INTEGER NOT NULL,\n"
    "  PRIMARY KEY (topic, epoch)\n"
    ") WITHOUT ROWID;\n"
    "PRAGMA user_version = 4;\n",
    /* 5: per-topic options.  history = 0 marks a topic without history:
     * its messages are neither stored nor acknowledged as stored, only
     * handed to the application (fire-and-forget fan-out). */
    "CREATE TABLE topic_opts (\n"
    "  topic TEXT PRIMARY KEY CHECK (length(topic) > 0),\n"
    "  history INTEGER NOT NULL CHECK (history IN (0, 1))\n"
    ") WITHOUT ROWID;\n"
    "PRAGMA user_version = 5;\n",
    /* 6: the acknowledged path (profiled in docs/PERFORMANCE.md).  An
     * AUTOINCREMENT key wrote sqlite_sequence on every insert, and the
     * full-text trigger ran a trigger program for every row, binary or
     * not: together about a quarter of an insert.  messages is rebuilt
     * with a plain INTEGER PRIMARY KEY (rowids keep their values; a new
     * row gets the largest rowid plus one, so they still only grow while
     * no message is ever deleted, which is the case: a future retention
     * must keep that true for after_rowid paging) and text bodies are
     * indexed by put_message itself, in the same savepoint as the row.
     * The outbox's uniqueness becomes (recipient, msg_rowid), which also
     * serves the per-recipient walks, so outbox_recipient goes.  Foreign
     * keys are off while steps run (migrate()). */
    "CREATE TABLE messages_v6 (\n"
    "  rowid INTEGER PRIMARY KEY,\n"
    "  publisher BLOB NOT NULL CHECK (length(publisher) = 32),\n"
    "  channel TEXT NOT NULL CHECK (length(channel) > 0),\n"
    "  seq INTEGER NOT NULL CHECK (seq >= 0),\n"
    "  ts INTEGER NOT NULL,\n"
    "  flags INTEGER NOT NULL,\n"
    "  body BLOB NOT NULL,\n"
    "  outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),\n"
    "  stored INTEGER NOT NULL,\n"
    "  chain BLOB CHECK (chain IS NULL OR length(chain) = 32),\n"
    "  UNIQUE (publisher, channel, seq)\n"
    ");\n"
    "INSERT INTO messages_v6 (rowid, publisher, channel, seq, ts, flags,\n"
    "  body, outgoing, stored, chain)\n"
    "  SELECT rowid, publisher, channel, seq, ts, flags, body, outgoing,\n"
    "  stored, chain FROM messages ORDER BY rowid;\n"
    "DROP TABLE messages;\n"
    "ALTER TABLE messages_v6 RENAME TO messages;\n"
    "CREATE INDEX messages_channel_ts ON messages (channel, ts);\n"
    "CREATE INDEX messages_publisher_ts ON messages (publisher, ts);\n"
    "CREATE INDEX messages_ts ON messages (ts);\n"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages\n"
    "WHEN (old.flags & 4) = 0 BEGIN\n"
    "  INSERT INTO messages_fts (messages_fts, rowid, body)\n"
    "  VALUES ('delete', old.rowid, CAST(old.body AS TEXT));\n"
    "END;\n"
    "CREATE TABLE outbox_v6 (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  msg_rowid INTEGER NOT NULL\n"
    "    REFERENCES messages (rowid) ON DELETE CASCADE,\n"
    "  recipient BLOB NOT NULL CHECK (length(recipient) = 32),\n"
    "  attempts INTEGER NOT NULL DEFAULT 0,\n"
    "  next_try INTEGER NOT NULL,\n"
    "  created INTEGER NOT NULL,\n"
    "  UNIQUE (recipient, msg_rowid)\n"
    ");\n"
    "INSERT INTO outbox_v6 SELECT id, msg_rowid, recipient, attempts,\n"
    "  next_try, created FROM outbox ORDER BY id;\n"
    "DROP TABLE outbox;\n"
    "ALTER TABLE outbox_v6 RENAME TO outbox;\n"
    "CREATE INDEX outbox_next_try ON outbox (next_try);\n"
    "PRAGMA user_version = 6;\n",
    /* 7: outbox batches (store_obatch.c): the acked deliveries to one
     * recipient from one transaction as one row, rowids as runs.  Nothing
     * to move: the outbox rows stay as they are. */
    "CREATE TABLE outbox_batch (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  recipient BLOB NOT NULL CHECK (length(recipient) = 32),\n"
    "  rowids BLOB NOT NULL,\n"
    "  next_try INTEGER NOT NULL,\n"
    "  created INTEGER NOT NULL\n"
    ");\n"
    "PRAGMA user_version = 7;\n",
    /* 8: publisher ids (store_pub.c).  The 32-byte key was in every row
     * and in two of its indexes, about a quarter of the bytes written per
     * message; rows now keep an id into publishers, whose rows are never
     * deleted.  No foreign key: it would cost a lookup per insert, and the
     * store writes only ids it has just read or added.  messages is
     * rebuilt as in step 6, rowids kept (the outbox and the full-text
     * index refer to them). */
    "CREATE TABLE publishers (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  pk BLOB NOT NULL UNIQUE CHECK (length(pk) = 32)\n"
    ");\n"
    "INSERT INTO publishers (pk) SELECT publisher FROM messages\n"
    "  GROUP BY publisher ORDER BY min(rowid);\n"
    "CREATE TABLE messages_v8 (\n"
    "  rowid INTEGER PRIMARY KEY,\n"
    "  publisher INTEGER NOT NULL CHECK (publisher > 0),\n"
    "  channel TEXT NOT NULL CHECK (length(channel) > 0),\n"
    "  seq INTEGER NOT NULL CHECK (seq >= 0),\n"
    "  ts INTEGER NOT NULL,\n"
    "  flags INTEGER NOT NULL,\n"
    "  body BLOB NOT NULL,\n"
    "  outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),\n"
    "  stored INTEGER NOT NULL,\n"
    "  chain BLOB CHECK (chain IS NULL OR length(chain) = 32),\n"
    "  UNIQUE (publisher, channel, seq)\n"
    ");\n"
    "INSERT INTO messages_v8 (rowid, publisher, channel, seq, ts, flags,\n"
    "  body, outgoing, stored, chain)\n"
    "  SELECT m.rowid, p.id, m.channel, m.seq, m.ts, m.flags, m.body,\n"
    "  m.outgoing, m.stored, m.chain\n"
    "  FROM messages m JOIN publishers p ON p.pk = m.publisher\n"
    "  ORDER BY m.rowid;\n"
    "DROP TABLE messages;\n"
    "ALTER TABLE messages_v8 RENAME TO messages;\n"
    "CREATE INDEX messages_channel_ts ON messages (channel, ts);\n"
    "CREATE INDEX messages_publisher_ts ON messages (publisher, ts);\n"
    "CREATE INDEX messages_ts ON messages (ts);\n"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages\n"
    "WHEN (old.flags & 4) = 0 BEGIN\n"
    "  INSERT INTO messages_fts (messages_fts, rowid, body)\n"
    "  VALUES ('delete', old.rowid, CAST(old.body AS TEXT));\n"
    "END;\n"
    "PRAGMA user_version = 8;\n",
    /* 9: spans replace the three secondary indexes of messages (one B-tree
     * insert each per message) with one row per run of a publisher's
     * messages on a channel (docs/internals/STORE.md, "Schema version 9").
     * Old rows get one span per (publisher, channel) per 64 rowids. */
    "DROP INDEX messages_channel_ts;\n"
    "DROP INDEX messages_publisher_ts;\n"
    "DROP INDEX messages_ts;\n"
    "CREATE TABLE spans (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  publisher INTEGER NOT NULL,\n"
    "  channel TEXT NOT NULL,\n"
    "  lo INTEGER NOT NULL,\n"
    "  hi INTEGER NOT NULL CHECK (hi >= lo),\n"
    "  ts_lo INTEGER NOT NULL,\n"
    "  ts_hi INTEGER NOT NULL CHECK (ts_hi >= ts_lo)\n"
    ");\n"
    "CREATE INDEX spans_channel_ts ON spans (channel, ts_hi);\n"
    "CREATE INDEX spans_publisher_ts ON spans (publisher, ts_hi);\n"
    "CREATE INDEX spans_ts ON spans (ts_hi);\n"
    "CREATE INDEX spans_extent ON spans (ts_hi - ts_lo);\n"
    "INSERT INTO spans (publisher, channel, lo, hi, ts_lo, ts_hi)\n"
    "  SELECT publisher, channel, min(rowid), max(rowid), min(ts), max(ts)\n"
    "  FROM messages GROUP BY rowid >> 6, publisher, channel\n"
    "  ORDER BY min(rowid);\n"
    "PRAGMA user_version = 9;\n",
};

#define SCHEMA_LATEST ((int)(sizeof migrations / sizeof migrations[0]))

_Static_assert(APPLICATION_ID == 1347570777, "migration 1 spells it out");

/* ---- Fixed statements ---------------------------------------------------- */

static const char *const stmt_sql[ST_COUNT] = {
#define STORE_STMT_SQL(name, sql) sql,
    STORE_STMT_MAP(STORE_STMT_SQL)
#undef STORE_STMT_SQL
};

/* ---- Errors -------------------------------------------------------------- */

static int from_sqlite(int src) {
  switch (src) {
  case SQLITE_CONSTRAINT_UNIQUE:
  case SQLITE_CONSTRAINT_PRIMARYKEY:
    return PARLEY_EEXIST;
  case SQLITE_CONSTRAINT_FOREIGNKEY:
    return PARLEY_ENOTFOUND;
  case SQLITE_CONSTRAINT_CHECK:
  case SQLITE_CONSTRAINT_NOTNULL:
    return PARLEY_EINVAL;
  default:
    return parley_err_from_sqlite(src);
  }
}

int parley__store_fail(struct parley_store *s, int rc, const char *what,
                       const char *text) {
  snprintf(s->errmsg, sizeof s->errmsg, "%s: %s", what, text);
  PARLEY_LOG(s->lg, rc == PARLEY_EINVAL ? PARLEY_LOG_DEBUG : PARLEY_LOG_WARN,
             "store: %s (%s)", s->errmsg, parley_err_name(rc));
  return rc;
}

int parley__store_fail_sql(struct parley_store *s, int src, const char *what) {
  return parley__store_fail(s, from_sqlite(src), what, sqlite3_errmsg(s->db));
}

/* ---- Statement plumbing -------------------------------------------------- */

int parley__store_prepare(struct parley_store *s, const char *sql,
                          sqlite3_stmt **out) {
  int src =
      sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
  if (src != SQLITE_OK) {
    *out = NULL;
    return parley__store_fail_sql(s, src, "prepare");
  }
  return PARLEY_OK;
}

int parley__store_run_start(struct parley_store *s, sqlite3_stmt *cached,
                            struct store_run *r) {
  int rc;

  r->temp = 0;
  r->st = NULL;
  /* Every statement sees the pending rows (store_pend.c). */
  rc = parley__pend_flush(s);
  if (rc < 0)
    return rc;
  r->st = cached;
  if (!sqlite3_stmt_busy(cached))
    return PARLEY_OK;
  r->temp = 1;
  return parley__store_prepare(s, sqlite3_sql(cached), &r->st);
}

void parley__store_run_end(struct store_run *r) {
  if (r->st == NULL)
    return;
  if (r->temp) {
    sqlite3_finalize(r->st);
  } else {
    sqlite3_reset(r->st);
    sqlite3_clear_bindings(r->st);
  }
  r->st = NULL;
}

int parley__store_exec(struct parley_store *s, struct store_run *r,
                       const char *what, int64_t *changes) {
  int src;

  while ((src = sqlite3_step(r->st)) == SQLITE_ROW)
    ;
  if (src != SQLITE_DONE)
    return parley__store_fail_sql(s, src, what);
  if (changes != NULL)
    *changes = sqlite3_changes64(s->db);
  return PARLEY_OK;
}

int parley__store_step_i64(struct parley_store *s, struct store_run *r,
                           const char *what, int64_t *v) {
  int src = sqlite3_step(r->st);

  if (src == SQLITE_DONE)
    return PARLEY_ENOTFOUND;
  if (src != SQLITE_ROW)
    return parley__store_fail_sql(s, src, what);
  *v = sqlite3_column_int64(r->st, 0);
  /* Step to the end: a RETURNING statement did its write in the first step
   * and this completes it; a single-row SELECT just reports DONE. */
  src = sqlite3_step(r->st);
  if (src == SQLITE_ROW)
    return parley__store_fail(s, PARLEY_EINTERNAL, what, "more than one row");
  if (src != SQLITE_DONE)
    return parley__store_fail_sql(s, src, what);
  return PARLEY_OK;
}

int parley__store_read_msg(struct parley_store *s, sqlite3_stmt *st, int c,
                           struct parley_msg *m) {
  static const uint8_t empty[1];

  memset(m, 0, sizeof *m);
  m->rowid = sqlite3_column_int64(st, c);
  m->publisher = sqlite3_column_blob(st, c + 1);
  if (m->publisher == NULL || sqlite3_column_bytes(st, c + 1) != 32)
    return parley__store_fail(s, PARLEY_ESTORE, "read message",
                              "bad publisher column");
  m->channel = (const char *)sqlite3_column_text(st, c + 2);
  if (m->channel == NULL)
    return parley__store_fail(s, PARLEY_ESTORE, "read message",
                              "bad channel column");
  m->channel_len = (size_t)sqlite3_column_bytes(st, c + 2);
  m->seq = (uint64_t)sqlite3_column_int64(st, c + 3);
  m->ts_ms = sqlite3_column_int64(st, c + 4);
  m->flags = (uint32_t)sqlite3_column_int64(st, c + 5);
  m->body = sqlite3_column_blob(st, c + 6);
  m->body_len = (size_t)sqlite3_column_bytes(st, c + 6);
  if (m->body == NULL)
    m->body = empty; /* empty blob: give callers a valid pointer */
  m->outgoing = sqlite3_column_int(st, c + 7) != 0;
  m->stored_ms = sqlite3_column_int64(st, c + 8);
  m->chain = sqlite3_column_blob(st, c + 9);
  if (m->chain != NULL && sqlite3_column_bytes(st, c + 9) != 32)
    return parley__store_fail(s, PARLEY_ESTORE, "read message",
                              "bad chain column");
  return PARLEY_OK;
}

int parley__store_count(struct parley_store *s, enum store_stmt id,
                        const char *what, uint64_t *n) {
  struct store_run r;
  int64_t v = 0;
  int rc = parley__store_run_start(s, s->stmt[id], &r);

  if (rc < 0)
    return rc;
  rc = parley__store_step_i64(s, &r, what, &v);
  parley__store_run_end(&r);
  if (rc == PARLEY_OK)
    *n = (uint64_t)v;
  return rc;
}

/* ---- Validation ---------------------------------------------------------- */

int parley__store_channel_ok(const char *c, size_t n) {
  return c != NULL && n > 0 && n <= PARLEY_MAX_TOPIC &&
         memchr(c, '\0', n) == NULL;
}

/* ---- Open, migrate, close ------------------------------------------------ */

static int exec_sql(struct parley_store *s, const char *sql, const char *what) {
  char *err = NULL;
  int src = sqlite3_exec(s->db, sql, NULL, NULL, &err);
  int rc;

  if (src == SQLITE_OK)
    return PARLEY_OK;
  rc = parley__store_fail(s, from_sqlite(src), what,
                          err != NULL ? err : sqlite3_errstr(src));
  sqlite3_free(err);
  return rc;
}

static int pragma_int(struct parley_store *s, const char *sql, int *out) {
  sqlite3_stmt *st;
  int src, rc;

  rc = parley__store_prepare(s, sql, &st);
  if (rc < 0)
    return rc;
  src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    *out = sqlite3_column_int(st, 0);
    rc = PARLEY_OK;
  } else {
    rc = parley__store_fail_sql(s, src, sql);
  }
  sqlite3_finalize(st);
  return rc;
}

static int configure(struct parley_store *s) {
  sqlite3_stmt *st;
  const unsigned char *mode;
  int rc;

  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
  rc = parley__store_prepare(s, "PRAGMA journal_mode = WAL", &st);
  if (rc < 0)
    return rc;
  if (sqlite3_step(st) == SQLITE_ROW) {
    mode = sqlite3_column_text(st, 0);
    if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
      PARLEY_LOG(s->lg, PARLEY_LOG_WARN, "store: journal_mode is %s, not wal",
                 mode != NULL ? (const char *)mode : "?");
  } else {
    rc = parley__store_fail_sql(s, sqlite3_errcode(s->db), "journal_mode");
  }
  sqlite3_finalize(st);
  if (rc < 0)
    return rc;
  /* Foreign keys are switched on after the migrations (migrate()).
   * temp_store = MEMORY keeps statement journals in memory: the pending
   * rows' multi-row INSERT (store_pend.c) needs one inside a transaction,
   * and as a temporary file it cost an open, an unlink and a pwrite per
   * page it saved on every commit (docs/internals/STORE.md). */
  return exec_sql(s, "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;",
                  "configure");
}

int parley_store_set_sync(struct parley_store *s, int mode) {
  if (mode != PARLEY_STORE_SYNC_FULL && mode != PARLEY_STORE_SYNC_OS)
    return PARLEY_EINVAL;
  return exec_sql(s,
                  mode == PARLEY_STORE_SYNC_FULL ? "PRAGMA synchronous = FULL;"
                                                 : "PRAGMA synchronous = NORMAL;",
                  "set_sync");
}

/* A step may rebuild a table (migration 6), which needs foreign keys off
 * (SQLite cannot switch them inside a transaction, and dropping the old
 * parent would cascade); this checks, before the step commits, that every
 * reference still resolves. */
static int foreign_keys_hold(struct parley_store *s) {
  sqlite3_stmt *st;
  int rc = parley__store_prepare(s, "PRAGMA foreign_key_check", &st), src;

  if (rc < 0)
    return rc;
  src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    rc = parley__store_fail(s, PARLEY_ESTORE, "migrate",
                            "a step left a dangling reference");
  else if (src != SQLITE_DONE)
    rc = parley__store_fail_sql(s, src, "migrate");
  sqlite3_finalize(st);
  return rc;
}

/* Applies the pending migration steps, each in its own transaction, with
 * foreign keys off; switches them on after the last. */
static int migrate(struct parley_store *s) {
  int version = 0, app_id = 0, rc;

  rc = pragma_int(s, "PRAGMA user_version", &version);
  if (rc < 0)
    return rc;
  if (version > SCHEMA_LATEST) {
    char text[96];
    snprintf(text, sizeof text,
             "schema version %d is newer than this build's %d", version,
             SCHEMA_LATEST);
    return parley__store_fail(s, PARLEY_ESTORE, "open", text);
  }
  rc = pragma_int(s, "PRAGMA application_id", &app_id);
  if (rc < 0)
    return rc;
  if (app_id != 0 && app_id != APPLICATION_ID)
    return parley__store_fail(s, PARLEY_ESTORE, "open", "not a Parley store");

  while (version < SCHEMA_LATEST) {
    rc = exec_sql(s, "BEGIN IMMEDIATE", "migrate");
    if (rc < 0)
      return rc;
    /* Another process may have migrated between our read and our lock. */
    rc = pragma_int(s, "PRAGMA user_version", &version);
    if (rc == PARLEY_OK && version < SCHEMA_LATEST) {
      rc = exec_sql(s, migrations[version], "migrate");
      if (rc == PARLEY_OK) {
        int now = 0;
        rc = pragma_int(s, "PRAGMA user_version", &now);
        if (rc == PARLEY_OK && now != version + 1)
          rc = parley__store_fail(s, PARLEY_EINTERNAL, "migrate",
                                  "step did not set user_version");
        version = now;
      }
    }
    if (rc == PARLEY_OK)
      rc = foreign_keys_hold(s);
    if (rc == PARLEY_OK)
      rc = exec_sql(s, "COMMIT", "migrate");
    if (rc < 0) {
      if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
    s->migrations_applied++;
    PARLEY_LOG(s->lg, PARLEY_LOG_INFO, "store: schema migrated to version %d",
               version);
  }
  s->version = version;
  return exec_sql(s, "PRAGMA foreign_keys = ON;", "configure");
}

static void finalize_all(struct parley_store *s) {
  for (int i = 0; i < ST_COUNT; i++) {
    sqlite3_finalize(s->stmt[i]);
    s->stmt[i] = NULL;
  }
  for (int i = 0; i < STORE_QUERY_SHAPES; i++) {
    sqlite3_finalize(s->shape[i]);
    s->shape[i] = NULL;
  }
}

static void store_free(struct parley_store *s) {
  parley__pend_free(s);
  parley__store_pub_free(s);
  parley__store_heads_drop(s);
  parley__ob_drop(s);
  finalize_all(s);
  if (sqlite3_close(s->db) != SQLITE_OK)
    PARLEY_LOG(s->lg, PARLEY_LOG_ERROR, "store: close: %s",
               sqlite3_errmsg(s->db));
  parley_free(s);
}

int parley_store_open(const char *path, const struct parley_log *lg,
                      struct parley_store **out) {
  struct parley_store *s;
  uint64_t seed = 0;
  int src, rc;

  *out = NULL;
  s = parley_calloc(1, sizeof *s);
  if (s == NULL)
    return PARLEY_ENOMEM;
  s->lg = lg;
  sqlite3_randomness(sizeof seed, &seed); /* keys come from other peers */
  parley_map_init(&s->pubs, seed);
  parley_map_init(&s->hwm, seed ^ 0x9e3779b97f4a7c15u);
  src = sqlite3_open_v2(
      path, &s->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (s->db == NULL) { /* SQLite could not even allocate the handle */
    parley_free(s);
    return PARLEY_ENOMEM;
  }
  if (src != SQLITE_OK)
    rc = parley__store_fail_sql(s, src, path);
  else
    rc = configure(s);
  if (rc == PARLEY_OK)
    rc = migrate(s);
  for (int i = 0; rc == PARLEY_OK && i < ST_COUNT; i++)
    rc = parley__store_prepare(s, stmt_sql[i], &s->stmt[i]);
  if (rc == PARLEY_OK)
    rc = parley__ob_load(s); /* batches a crash left: all unacked */
  if (rc < 0) {
    PARLEY_LOG(lg, PARLEY_LOG_ERROR, "store: cannot open %s: %s", path,
               s->errmsg);
    store_free(s);
    return rc;
  }
  *out = s;
  return PARLEY_OK;
}

void parley_store_close(struct parley_store *s) {
  if (s == NULL)
    return;
  if (!sqlite3_get_autocommit(s->db)) {
    int src = parley__pend_flush(s) == PARLEY_OK && !s->pend_failed &&
                      parley__ob_flush(s) == PARLEY_OK &&
                      parley__store_heads_flush(s) == PARLEY_OK
                  ? sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL)
                  : SQLITE_ERROR;
    if (src != SQLITE_OK) {
      (void)parley__store_fail_sql(s, src, "commit at close");
      (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
  }
  /* Keeps the planner's statistics fresh; cheap when nothing changed. */
  (void)sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
  store_free(s);
}

const char *parley_store_errmsg(const struct parley_store *s) {
  return s->errmsg;
}

int parley_store_schema_version(struct parley_store *s) { return s->version; }

int parley__store_migrations_applied(const struct parley_store *s) {
  return s->migrations_applied;
}

int parley__store_schema_latest(void) { return SCHEMA_LATEST; }

/* ---- Transactions -------------------------------------------------------- */

int parley__store_run_simple(struct parley_store *s, enum store_stmt id,
                             const char *what) {
  struct store_run r;
  int rc = parley__store_run_start(s, s->stmt[id], &r);

  if (rc < 0)
    return rc;
  rc = parley__store_exec(s, &r, what, NULL);
  parley__store_run_end(&r);
  return rc;
}

int parley_store_begin(struct parley_store *s) {
  if (!sqlite3_get_autocommit(s->db))
    return parley__store_fail(s, PARLEY_EINVAL, "begin",
                              "a transaction is already open");
  parley__store_pub_rollback(s); /* a transaction that ended on its own */
  return parley__store_run_simple(s, ST_BEGIN, "begin");
}

int parley_store_commit(struct parley_store *s) {
  int rc;

  if (sqlite3_get_autocommit(s->db))
    return parley__store_fail(s, PARLEY_EINVAL, "commit",
                              "no transaction is open");
  rc = parley__pend_flush(s);
  if (rc == PARLEY_OK && s->pend_failed)
    rc = parley__store_fail(s, PARLEY_ESTORE, "commit",
                            "a pending message could not be inserted");
  if (rc == PARLEY_OK)
    rc = parley__ob_flush(s);
  if (rc == PARLEY_OK)
    rc = parley__store_heads_flush(s);
  if (rc < 0)
    return rc;
  rc = parley__store_run_simple(s, ST_COMMIT, "commit");
  if (rc == PARLEY_OK) {
    parley__pend_drop(s);
    parley__store_pub_commit(s);
  }
  return rc;
}

int parley_store_rollback(struct parley_store *s) {
  parley__store_heads_drop(s); /* what they held may be undone */
  parley__pend_drop(s);
  parley__store_pub_rollback(s);
  s->ob_stale = 1;
  if (sqlite3_get_autocommit(s->db))
    return PARLEY_OK;
  return parley__store_run_simple(s, ST_ROLLBACK, "rollback");
}

int parley_store_in_tx(const struct parley_store *s) {
  return !sqlite3_get_autocommit(s->db);
}
