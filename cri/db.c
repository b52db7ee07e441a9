/* berthd's metadata in SQLite.
 *
 * One connection, opened SQLITE_OPEN_FULLMUTEX, and on top of it our own recursive mutex: SQLite
 * serializes single calls, but a cached statement goes through bind, step and reset, and those
 * must not interleave between threads. db_begin takes the mutex and keeps it until db_commit or
 * db_rollback, so a transaction holds the connection and another thread's writes cannot land
 * in it by accident (they wait; transactions are short).
 *
 * Every value is bound to a prepared statement; no SQL is ever built from text. */
#include "cri/db.h"

#include "base/cleanup.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The schema, one migration per version; a migration only ever appends to this array. */
static const char *const migrations[] = {
	/* 1: the first schema. States are checked in C rather than with CHECK constraints, so a
	 * new state never needs SQLite's table rebuild. */
	"CREATE TABLE pods ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  name TEXT NOT NULL, namespace TEXT NOT NULL, uid TEXT NOT NULL,"
	"  attempt INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  created_ns INTEGER NOT NULL,"
	"  config_json TEXT NOT NULL,"
	"  labels_json TEXT, annotations_json TEXT, network_json TEXT,"
	"  UNIQUE (name, namespace, uid, attempt)"
	") STRICT;"
	"CREATE TABLE containers ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  pod_id TEXT NOT NULL REFERENCES pods(id),"
	"  name TEXT NOT NULL,"
	"  attempt INTEGER NOT NULL,"
	"  image TEXT NOT NULL, image_id TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  created_ns INTEGER NOT NULL, started_ns INTEGER NOT NULL, finished_ns INTEGER NOT NULL,"
	"  exit_code INTEGER NOT NULL, signal INTEGER NOT NULL, oom_killed INTEGER NOT NULL,"
	"  reason TEXT, message TEXT, log_path TEXT,"
	"  config_json TEXT NOT NULL,"
	"  labels_json TEXT, annotations_json TEXT,"
	"  UNIQUE (pod_id, name, attempt)"
	") STRICT;"
	/* The foreign key's lookups (a pod's containers, the check on pod delete) by pod alone. */
	"CREATE INDEX containers_pod_id ON containers (pod_id);"
	"CREATE TABLE images ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  id TEXT NOT NULL,"
	"  repo_digest TEXT,"
	"  size INTEGER NOT NULL,"
	"  pulled_ns INTEGER NOT NULL"
	") STRICT;"
	"CREATE INDEX images_id ON images (id);",
};

const int db_schema_latest = (int)ARRAY_SIZE(migrations);

#define POD_COLUMNS                                                                                \
	"id, name, namespace, uid, attempt, state, created_ns, config_json, labels_json, "         \
	"annotations_json, network_json"
#define CONTAINER_COLUMNS                                                                          \
	"id, pod_id, name, attempt, image, image_id, state, created_ns, started_ns, finished_ns, " \
	"exit_code, signal, oom_killed, reason, message, log_path, config_json, labels_json, "     \
	"annotations_json"
#define IMAGE_COLUMNS "id, name, repo_digest, size, pulled_ns"

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_POD_INSERT,
	ST_POD_GET,
	ST_POD_FIND,
	ST_POD_SET_STATE,
	ST_POD_SET_NETWORK,
	ST_POD_DELETE,
	ST_POD_LIST,
	ST_POD_CONTAINERS,
	ST_CONTAINER_INSERT,
	ST_CONTAINER_GET,
	ST_CONTAINER_FIND,
	ST_CONTAINER_UPDATE,
	ST_CONTAINER_DELETE,
	ST_CONTAINER_LIST,
	ST_CONTAINER_LIST_POD,
	ST_IMAGE_PUT,
	ST_IMAGE_GET,
	ST_IMAGE_DELETE,
	ST_IMAGE_LIST,
	ST_COUNT_PODS,
	ST_COUNT_CONTAINERS,
	ST_COUNT_IMAGES,
	ST_MAX
};

static const char *const stmt_sql[ST_MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_POD_INSERT] = "INSERT INTO pods (" POD_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?)",
	[ST_POD_GET] = "SELECT " POD_COLUMNS " FROM pods WHERE id = ?",
	[ST_POD_FIND] = "SELECT " POD_COLUMNS " FROM pods WHERE name = ? AND namespace = ? AND "
			"uid = ? AND attempt = ?",
	[ST_POD_SET_STATE] = "UPDATE pods SET state = ? WHERE id = ?",
	[ST_POD_SET_NETWORK] = "UPDATE pods SET network_json = ? WHERE id = ?",
	[ST_POD_DELETE] = "DELETE FROM pods WHERE id = ?",
	[ST_POD_LIST] = "SELECT " POD_COLUMNS " FROM pods ORDER BY created_ns, id",
	[ST_POD_CONTAINERS] = "SELECT count(*) FROM containers WHERE pod_id = ?",
	[ST_CONTAINER_INSERT] = "INSERT INTO containers (" CONTAINER_COLUMNS
				") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_CONTAINER_GET] = "SELECT " CONTAINER_COLUMNS " FROM containers WHERE id = ?",
	[ST_CONTAINER_FIND] = "SELECT id FROM containers WHERE pod_id = ? AND name = ? AND "
			      "attempt = ?",
	[ST_CONTAINER_UPDATE] = "UPDATE containers SET state = ?, started_ns = ?, finished_ns = ?, "
				"exit_code = ?, signal = ?, oom_killed = ?, reason = ?, "
				"message = ? WHERE id = ?",
	[ST_CONTAINER_DELETE] = "DELETE FROM containers WHERE id = ?",
	[ST_CONTAINER_LIST] = "SELECT " CONTAINER_COLUMNS
			      " FROM containers ORDER BY created_ns, id",
	[ST_CONTAINER_LIST_POD] = "SELECT " CONTAINER_COLUMNS
				  " FROM containers WHERE pod_id = ? ORDER BY created_ns, id",
	[ST_IMAGE_PUT] = "INSERT INTO images (" IMAGE_COLUMNS ") VALUES (?,?,?,?,?) "
			 "ON CONFLICT (name) DO UPDATE SET id = excluded.id, "
			 "repo_digest = excluded.repo_digest, size = excluded.size, "
			 "pulled_ns = excluded.pulled_ns",
	[ST_IMAGE_GET] = "SELECT " IMAGE_COLUMNS " FROM images WHERE name = ?",
	[ST_IMAGE_DELETE] = "DELETE FROM images WHERE name = ?",
	[ST_IMAGE_LIST] = "SELECT " IMAGE_COLUMNS " FROM images ORDER BY name",
	[ST_COUNT_PODS] = "SELECT count(*) FROM pods",
	[ST_COUNT_CONTAINERS] = "SELECT count(*) FROM containers",
	[ST_COUNT_IMAGES] = "SELECT count(*) FROM images",
};

struct db {
	sqlite3 *h;
	char *path;
	pthread_mutex_t lock; /* recursive: held for each call, and from db_begin to its end */
	bool in_tx;
	pthread_t tx_owner;
	sqlite3_stmt *stmts[ST_MAX];
};

/* ---- locking and statements ---- */

static struct db *db_lock(struct db *db)
{
	pthread_mutex_lock(&db->lock);
	return db;
}

static void db_unlockp(struct db **db)
{
	if (*db)
		pthread_mutex_unlock(&(*db)->lock);
}

/* unused: the variable only holds the lock for the scope (clang would warn) */
#define _cleanup_unlock_ _cleanup_(db_unlockp) __attribute__((unused))

static void stmt_resetp(sqlite3_stmt **s)
{
	if (*s) {
		sqlite3_reset(*s);
		sqlite3_clear_bindings(*s);
	}
}

#define _cleanup_reset_ _cleanup_(stmt_resetp)

static void stmt_finalizep(sqlite3_stmt **s)
{
	sqlite3_finalize(*s);
}

/* SQLite's message for the last failure on the connection (the caller holds the lock). */
static int db_fail(struct db *db, struct berth_error **err, int code, const char *what)
{
	return berth_error_set(err, code, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
}

/* The cached statement (prepared on first use), or NULL with *err set. */
static sqlite3_stmt *stmt(struct db *db, enum stmt which, struct berth_error **err)
{
	if (!db->stmts[which] &&
	    sqlite3_prepare_v3(db->h, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
			       &db->stmts[which], NULL) != SQLITE_OK) {
		db_fail(db, err, EIO, "prepare");
		return NULL;
	}
	return db->stmts[which];
}

/* Binds in order: 't' text (NULL binds NULL), 'i' int64_t, 'u' uint32_t, 'd' int or bool.
 * The first failure wins (a text over SQLite's length limit). */
static int bind(struct db *db, sqlite3_stmt *s, struct berth_error **err, const char *types, ...)
{
	va_list ap;
	int rc = SQLITE_OK;
	if ((int)strlen(types) != sqlite3_bind_parameter_count(s))
		return berth_error_set(err, EIO, "%s: bind: %zu values for %d parameters of %s",
				       db->path, strlen(types), sqlite3_bind_parameter_count(s),
				       sqlite3_sql(s));
	va_start(ap, types);
	for (int i = 0; types[i] && rc == SQLITE_OK; i++) {
		switch (types[i]) {
		case 't':
			rc = sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
			break;
		case 'i':
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
			break;
		case 'u':
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, uint32_t));
			break;
		default: /* 'd' */
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int));
			break;
		}
	}
	va_end(ap);
	return rc == SQLITE_OK ? 0 : db_fail(db, err, EIO, "bind");
}

/* Runs a statement that returns no rows; constraint failures come back as -EEXIST (unique),
 * -ENOENT (a missing foreign key) or -EBUSY (a row still referenced), with *err unset so that
 * the caller names what it was. */
static int step_done(struct db *db, sqlite3_stmt *s, const char *what, struct berth_error **err)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return 0;
	switch (sqlite3_extended_errcode(db->h)) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		return -EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return strncmp(sqlite3_sql(s), "DELETE", 6) == 0 ? -EBUSY : -ENOENT;
	default:
		return db_fail(db, err, EIO, what);
	}
}

/* A step that must produce a row: 1 for a row, 0 for none, < 0 on failure. */
static int step_row(struct db *db, sqlite3_stmt *s, const char *what, struct berth_error **err)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(db, err, EIO, what);
}

/* A text column (NULL stays NULL). */
static int col_text(sqlite3_stmt *s, int i, char **ret)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	*ret = NULL;
	if (!t)
		return sqlite3_errcode(sqlite3_db_handle(s)) == SQLITE_NOMEM ? -ENOMEM : 0;
	*ret = strdup((const char *)t);
	return *ret ? 0 : -ENOMEM;
}

/* Runs SQL text known at compile time (pragmas, migrations): never caller input. */
static int exec(struct db *db, const char *sql, struct berth_error **err)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	int r = berth_error_set(err, EIO, "%s: %s: %s", db->path, sql,
				msg ? msg : sqlite3_errmsg(db->h));
	sqlite3_free(msg);
	return r;
}

/* A pragma's single value, as text into buf. */
static int pragma_get(struct db *db, const char *sql, char *buf, size_t len,
		      struct berth_error **err)
{
	_cleanup_(stmt_finalizep) sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(db, err, EIO, sql);
	int r = step_row(db, s, sql, err);
	if (r < 0)
		return r;
	if (r == 0 || !sqlite3_column_text(s, 0))
		return berth_error_set(err, EIO, "%s: %s: no value", db->path, sql);
	snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
	return 0;
}

/* ---- opening, schema ---- */

int db_schema_version(struct db *db)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	char v[32];
	int r = pragma_get(db, "PRAGMA user_version", v, sizeof(v), NULL);
	return r < 0 ? r : atoi(v);
}

/* Applies each migration newer than the file, each in its own transaction with its version:
 * a failure leaves the file at the last version that was whole. */
static int migrate(struct db *db, struct berth_error **err)
{
	int version = db_schema_version(db);
	if (version < 0)
		return db_fail(db, err, EIO, "read user_version");
	if (version > db_schema_latest)
		return berth_error_set(err, ENOTSUP,
				       "%s: schema version %d is newer than this berthd knows (%d)",
				       db->path, version, db_schema_latest);
	for (int v = version + 1; v <= db_schema_latest; v++) {
		char set[64];
		snprintf(set, sizeof(set), "PRAGMA user_version = %d", v);
		int r = exec(db, "BEGIN IMMEDIATE", err);
		if (r >= 0 && (r = exec(db, migrations[v - 1], err)) >= 0 &&
		    (r = exec(db, set, err)) >= 0)
			r = exec(db, "COMMIT", err);
		if (r < 0) {
			(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
			return berth_error_wrap(err, "migrate to schema version %d", v);
		}
		log_debug("%s: schema version %d", db->path, v);
	}
	return 0;
}

/* The file exists, is a regular file and is ours alone (0600) before SQLite opens it; SQLite
 * gives its -wal and -shm files the database file's mode. */
static int create_private(const char *path, struct berth_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct stat st;
	if (fd < 0)
		return berth_error_setsys(err, errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return berth_error_setsys(err, errno, "%s: stat", path);
	if (!S_ISREG(st.st_mode))
		return berth_error_set(err, EINVAL, "%s: not a regular file", path);
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		return berth_error_setsys(err, errno, "%s: chmod 0600", path);
	return 0;
}

/* WAL: readers never block the writer, and a crash never leaves a half transaction.
 * synchronous=NORMAL: in WAL mode a commit is durable across a crash of the process (the WAL is
 * in the page cache and is replayed at the next open); only a power loss can lose the last
 * commits, never corrupt the file, and the kernel state is reconciled at start-up anyway. */
static int configure(struct db *db, struct berth_error **err)
{
	char mode[16], fk[8];
	int r = exec(db, "PRAGMA journal_mode = WAL", err);
	if (r >= 0)
		r = pragma_get(db, "PRAGMA journal_mode", mode, sizeof(mode), err);
	if (r < 0)
		return r;
	if (strcmp(mode, "wal") != 0)
		return berth_error_set(err, EIO, "%s: WAL mode refused (journal_mode is %s)",
				       db->path, mode);
	if ((r = exec(db, "PRAGMA foreign_keys = ON", err)) < 0 ||
	    (r = exec(db, "PRAGMA synchronous = NORMAL", err)) < 0 ||
	    (r = pragma_get(db, "PRAGMA foreign_keys", fk, sizeof(fk), err)) < 0)
		return r;
	if (strcmp(fk, "1") != 0)
		return berth_error_set(err, EIO, "%s: this SQLite does not enforce foreign keys",
				       db->path);
	/* Another process (berth info, a backup) may hold the file for a moment. */
	sqlite3_busy_timeout(db->h, 5000);
	return 0;
}

int db_open(const char *path, struct db **ret, struct berth_error **err)
{
	if (!sqlite3_threadsafe())
		return berth_error_set(err, ENOTSUP, "SQLite was built without thread support");
	int r = create_private(path, err);
	if (r < 0)
		return r;
	_cleanup_(db_closep) struct db *db = calloc(1, sizeof(*db));
	if (!db)
		return berth_error_set(err, ENOMEM, "out of memory");
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&db->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (!(db->path = strdup(path)))
		return berth_error_set(err, ENOMEM, "out of memory");
	int rc = sqlite3_open_v2(path, &db->h,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW |
					 SQLITE_OPEN_EXRESCODE,
				 NULL);
	if (rc != SQLITE_OK)
		return db->h ? db_fail(db, err, EIO, "open")
			     : berth_error_set(err, ENOMEM, "%s: open: out of memory", path);
	if ((r = configure(db, err)) < 0 || (r = migrate(db, err)) < 0)
		return r;
	*ret = TAKE_PTR(db);
	return 0;
}

struct db *db_close(struct db *db)
{
	if (!db)
		return NULL;
	for (size_t i = 0; i < ST_MAX; i++)
		sqlite3_finalize(db->stmts[i]);
	if (db->h && sqlite3_close(db->h) != SQLITE_OK)
		log_warn("%s: close: %s", db->path, sqlite3_errmsg(db->h));
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
	return NULL;
}

void db_closep(struct db **db)
{
	*db = db_close(*db);
}

/* ---- transactions ---- */

static bool tx_mine(struct db *db)
{
	return db->in_tx && pthread_equal(db->tx_owner, pthread_self());
}

/* Runs one of the transaction statements. */
static int tx_step(struct db *db, enum stmt which, const char *what, struct berth_error **err)
{
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, which, err);
	if (!s)
		return -EIO;
	return step_done(db, s, what, err) < 0 ? db_fail(db, err, EIO, what) : 0;
}

int db_begin(struct db *db, struct berth_error **err)
{
	db_lock(db);
	if (tx_mine(db)) {
		pthread_mutex_unlock(&db->lock);
		return berth_error_set(err, EBUSY, "%s: a transaction is already open", db->path);
	}
	int r = tx_step(db, ST_BEGIN, "begin", err);
	if (r < 0) {
		pthread_mutex_unlock(&db->lock);
		return r;
	}
	db->in_tx = true;
	db->tx_owner = pthread_self();
	return 0; /* the lock stays held until commit or rollback */
}

/* Ends the calling thread's transaction: the lock taken by db_begin goes. */
static void tx_end(struct db *db)
{
	db->in_tx = false;
	pthread_mutex_unlock(&db->lock);
}

int db_commit(struct db *db, struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	if (!tx_mine(db))
		return berth_error_set(err, EINVAL, "%s: commit without a transaction", db->path);
	int r = tx_step(db, ST_COMMIT, "commit", err);
	if (r < 0 && !sqlite3_get_autocommit(db->h))
		(void)tx_step(db, ST_ROLLBACK, "rollback", NULL);
	tx_end(db);
	return r;
}

void db_rollback(struct db *db)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	if (!tx_mine(db))
		return;
	if (!sqlite3_get_autocommit(db->h) && tx_step(db, ST_ROLLBACK, "rollback", NULL) < 0)
		log_warn("%s: rollback: %s", db->path, sqlite3_errmsg(db->h));
	tx_end(db);
}

/* ---- shared row helpers ---- */

/* Runs an UPDATE or DELETE by id that must hit a row. */
static int change_one(struct db *db, sqlite3_stmt *s, const char *kind, const char *id,
		      struct berth_error **err)
{
	int r = step_done(db, s, sqlite3_sql(s), err);
	if (r < 0)
		return r;
	if (sqlite3_changes(db->h) == 0)
		return berth_error_set(err, ENOENT, "%s %s not found", kind, id);
	return 0;
}

/* Fields the schema requires: a clear error rather than SQLite's constraint message. */
static int require(const char *kind, const char *id, const char *field, const char *value,
		   struct berth_error **err)
{
	if (!value || !*value)
		return berth_error_set(err, EINVAL, "%s %s: %s is required", kind, id ? id : "(no id)",
				       field);
	return 0;
}

static int check_state(const char *kind, const char *id, const char *state,
		       const char *const *allowed, const char *list, struct berth_error **err)
{
	for (; *allowed; allowed++)
		if (strcmp(state, *allowed) == 0)
			return 0;
	return berth_error_set(err, EINVAL, "%s %s: unknown state \"%s\" (%s)", kind, id, state,
			       list);
}

static int check_pod_state(const char *id, const char *state, struct berth_error **err)
{
	static const char *const states[] = { "ready", "notready", NULL };
	int r = require("pod", id, "state", state, err);
	return r < 0 ? r : check_state("pod", id, state, states, "ready, notready", err);
}

static int check_container_state(const char *id, const char *state, struct berth_error **err)
{
	static const char *const states[] = { "created", "running", "exited", "unknown", NULL };
	int r = require("container", id, "state", state, err);
	return r < 0 ? r
		     : check_state("container", id, state, states,
				   "created, running, exited, unknown", err);
}

/* A table's columns, in the order of its *_COLUMNS list, and where each lives in its struct: one
 * description serves binding an insert, reading a row, checking required fields and freeing. */
enum col_type {
	COL_TEXT,     /* char *, required */
	COL_TEXT_OPT, /* char *, may be NULL */
	COL_I64,      /* int64_t */
	COL_U32,      /* uint32_t */
	COL_INT,      /* int */
	COL_BOOL,     /* bool */
	COL_U64,      /* uint64_t, at most INT64_MAX (SQLite's integers are signed) */
};

struct column {
	const char *name;
	enum col_type type;
	size_t off;
};

struct row_type {
	const char *kind;          /* "pod", ... for messages */
	size_t size;
	size_t key;                /* the column that names a row in messages */
	const struct column *cols;
	size_t n_cols;
};

#define COL(st, field, type) { #field, type, offsetof(st, field) }

static const struct column pod_cols[] = {
	COL(struct db_pod, id, COL_TEXT),
	COL(struct db_pod, name, COL_TEXT),
	COL(struct db_pod, namespace, COL_TEXT),
	COL(struct db_pod, uid, COL_TEXT),
	COL(struct db_pod, attempt, COL_U32),
	COL(struct db_pod, state, COL_TEXT),
	COL(struct db_pod, created_ns, COL_I64),
	COL(struct db_pod, config_json, COL_TEXT),
	COL(struct db_pod, labels_json, COL_TEXT_OPT),
	COL(struct db_pod, annotations_json, COL_TEXT_OPT),
	COL(struct db_pod, network_json, COL_TEXT_OPT),
};

static const struct column container_cols[] = {
	COL(struct db_container, id, COL_TEXT),
	COL(struct db_container, pod_id, COL_TEXT),
	COL(struct db_container, name, COL_TEXT),
	COL(struct db_container, attempt, COL_U32),
	COL(struct db_container, image, COL_TEXT),
	COL(struct db_container, image_id, COL_TEXT),
	COL(struct db_container, state, COL_TEXT),
	COL(struct db_container, created_ns, COL_I64),
	COL(struct db_container, started_ns, COL_I64),
	COL(struct db_container, finished_ns, COL_I64),
	COL(struct db_container, exit_code, COL_INT),
	COL(struct db_container, signal, COL_INT),
	COL(struct db_container, oom_killed, COL_BOOL),
	COL(struct db_container, reason, COL_TEXT_OPT),
	COL(struct db_container, message, COL_TEXT_OPT),
	COL(struct db_container, log_path, COL_TEXT_OPT),
	COL(struct db_container, config_json, COL_TEXT),
	COL(struct db_container, labels_json, COL_TEXT_OPT),
	COL(struct db_container, annotations_json, COL_TEXT_OPT),
};

static const struct column image_cols[] = {
	COL(struct db_image, id, COL_TEXT),
	COL(struct db_image, name, COL_TEXT),
	COL(struct db_image, repo_digest, COL_TEXT_OPT),
	COL(struct db_image, size, COL_U64),
	COL(struct db_image, pulled_ns, COL_I64),
};

static const struct row_type pod_rows = { "pod", sizeof(struct db_pod), 0, pod_cols,
					  ARRAY_SIZE(pod_cols) };
static const struct row_type container_rows = { "container", sizeof(struct db_container), 0,
						container_cols, ARRAY_SIZE(container_cols) };
static const struct row_type image_rows = { "image", sizeof(struct db_image), 1, image_cols,
					    ARRAY_SIZE(image_cols) };

/* The largest row struct, for reading one row before handing it out. */
union any_row {
	struct db_pod pod;
	struct db_container container;
	struct db_image image;
};

#define AT(p, c, type) ((type *)((char *)(p) + (c)->off))
#define CAT(p, c, type) ((const type *)((const char *)(p) + (c)->off))

static void row_clear(const struct row_type *t, void *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < t->n_cols; i++)
		if (t->cols[i].type == COL_TEXT || t->cols[i].type == COL_TEXT_OPT)
			free(*AT(p, &t->cols[i], char *));
	memset(p, 0, t->size);
}

/* Required fields and numbers SQLite can hold: clear errors instead of constraint messages. */
static int row_validate(const struct row_type *t, const void *p, struct berth_error **err)
{
	const char *key = *CAT(p, &t->cols[t->key], char *);
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct column *c = &t->cols[i];
		if (c->type == COL_TEXT) {
			int r = require(t->kind, key, c->name, *CAT(p, c, char *), err);
			if (r < 0)
				return r;
		}
		if (c->type == COL_U64 && *CAT(p, c, uint64_t) > INT64_MAX)
			return berth_error_set(err, EINVAL, "%s %s: %s %" PRIu64 " is out of range",
					       t->kind, key, c->name, *CAT(p, c, uint64_t));
	}
	return 0;
}

/* Binds every column of p in order (an INSERT of t's *_COLUMNS). */
static int row_bind(struct db *db, sqlite3_stmt *s, const struct row_type *t, const void *p,
		    struct berth_error **err)
{
	int rc = SQLITE_OK;
	if ((size_t)sqlite3_bind_parameter_count(s) != t->n_cols)
		return berth_error_set(err, EIO, "%s: bind: %zu %s columns for %d parameters",
				       db->path, t->n_cols, t->kind, sqlite3_bind_parameter_count(s));
	for (size_t i = 0; i < t->n_cols && rc == SQLITE_OK; i++) {
		const struct column *c = &t->cols[i];
		int at = (int)i + 1;
		switch (c->type) {
		case COL_TEXT:
		case COL_TEXT_OPT:
			rc = sqlite3_bind_text(s, at, *CAT(p, c, char *), -1, SQLITE_STATIC);
			break;
		case COL_I64:
			rc = sqlite3_bind_int64(s, at, *CAT(p, c, int64_t));
			break;
		case COL_U32:
			rc = sqlite3_bind_int64(s, at, *CAT(p, c, uint32_t));
			break;
		case COL_INT:
			rc = sqlite3_bind_int64(s, at, *CAT(p, c, int));
			break;
		case COL_BOOL:
			rc = sqlite3_bind_int64(s, at, *CAT(p, c, bool));
			break;
		case COL_U64:
			rc = sqlite3_bind_int64(s, at, (int64_t)*CAT(p, c, uint64_t));
			break;
		}
	}
	return rc == SQLITE_OK ? 0 : db_fail(db, err, EIO, "bind");
}

/* The current row into *ret (zeroed first; cleared again on failure). */
static int row_read(const struct row_type *t, sqlite3_stmt *s, void *ret)
{
	memset(ret, 0, t->size);
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct column *c = &t->cols[i];
		int at = (int)i;
		switch (c->type) {
		case COL_TEXT:
		case COL_TEXT_OPT: {
			int r = col_text(s, at, AT(ret, c, char *));
			if (r < 0) {
				row_clear(t, ret);
				return r;
			}
			break;
		}
		case COL_I64:
			*AT(ret, c, int64_t) = sqlite3_column_int64(s, at);
			break;
		case COL_U32:
			*AT(ret, c, uint32_t) = (uint32_t)sqlite3_column_int64(s, at);
			break;
		case COL_INT:
			*AT(ret, c, int) = sqlite3_column_int(s, at);
			break;
		case COL_BOOL:
			*AT(ret, c, bool) = sqlite3_column_int(s, at) != 0;
			break;
		case COL_U64:
			*AT(ret, c, uint64_t) = (uint64_t)sqlite3_column_int64(s, at);
			break;
		}
	}
	return 0;
}

/* One row of a SELECT by key into *ret; -ENOENT naming what was looked for when none. */
static int select_one(struct db *db, sqlite3_stmt *s, const struct row_type *t, const char *what,
		      void *ret, struct berth_error **err)
{
	int r = step_row(db, s, "select", err);
	if (r == 0)
		return berth_error_set(err, ENOENT, "%s %s not found", t->kind, what);
	if (r < 0)
		return r;
	union any_row row;
	r = row_read(t, s, &row);
	if (r < 0)
		return berth_error_set(err, -r, "read %s %s", t->kind, what);
	memcpy(ret, &row, t->size);
	return 0;
}

static void list_free(const struct row_type *t, void *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		row_clear(t, (char *)v + i * t->size);
	free(v);
}

/* Every row of a SELECT, as an array of t's structs. */
static int select_all(struct db *db, sqlite3_stmt *s, const struct row_type *t, void **ret,
		      size_t *ret_n, struct berth_error **err)
{
	void *v = NULL;
	size_t n = 0, cap = 0;
	int r;
	while ((r = step_row(db, s, "list", err)) > 0) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *nv = realloc(v, ncap * t->size);
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		if ((r = row_read(t, s, (char *)v + n * t->size)) < 0)
			break;
		n++;
	}
	if (r < 0) {
		list_free(t, v, n);
		return r == -ENOMEM ? berth_error_set(err, ENOMEM, "list %ss: out of memory", t->kind)
				    : r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- by key: the shape every table's get, delete and list share ---- */

/* SELECT ... WHERE <key> = ? into *ret. */
static int get_by_key(struct db *db, enum stmt which, const struct row_type *t, const char *key,
		      void *ret, struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, which, err);
	if (!s)
		return -EIO;
	int r = bind(db, s, err, "t", key);
	return r < 0 ? r : select_one(db, s, t, key, ret, err);
}

/* DELETE ... WHERE <key> = ?, which must hit a row. */
static int delete_by_key(struct db *db, enum stmt which, const char *kind, const char *key,
			 struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, which, err);
	if (!s)
		return -EIO;
	int r = bind(db, s, err, "t", key);
	return r < 0 ? r : change_one(db, s, kind, key, err);
}

/* Every row of a SELECT (with key bound to its one parameter, when not NULL). */
static int list_rows(struct db *db, enum stmt which, const struct row_type *t, const char *key,
		     void **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, which, err);
	if (!s)
		return -EIO;
	int r = key ? bind(db, s, err, "t", key) : 0;
	return r < 0 ? r : select_all(db, s, t, ret, ret_n, err);
}

/* INSERT of every column of p; a taken key goes to exists_cb (under the lock) for the message. */
static int insert_row(struct db *db, enum stmt which, const struct row_type *t, const void *p,
		      int (*exists_cb)(struct db *db, const void *p, struct berth_error **err),
		      struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, which, err);
	if (!s)
		return -EIO;
	int r = row_bind(db, s, t, p, err);
	if (r >= 0)
		r = step_done(db, s, sqlite3_sql(s), err);
	if (r == -EEXIST && exists_cb) {
		stmt_resetp(&s);
		return exists_cb(db, p, err);
	}
	return r;
}

/* ---- pods ---- */

static int pod_validate(const struct db_pod *p, struct berth_error **err)
{
	int r = row_validate(&pod_rows, p, err);
	return r < 0 ? r : check_pod_state(p->id, p->state, err);
}

static int pod_find_locked(struct db *db, const char *name, const char *namespace,
			   const char *uid, uint32_t attempt, struct db_pod *ret,
			   struct berth_error **err)
{
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, ST_POD_FIND, err);
	if (!s)
		return -EIO;
	int r = bind(db, s, err, "tttu", name, namespace, uid, attempt);
	if (r < 0)
		return r;
	char what[512];
	snprintf(what, sizeof(what), "name \"%s\" namespace \"%s\" uid \"%s\" attempt %" PRIu32,
		 name, namespace, uid, attempt);
	return select_one(db, s, &pod_rows, what, ret, err);
}

/* The message for a taken id or name tuple: which one, and who has it. */
static int pod_exists(struct db *db, const void *row, struct berth_error **err)
{
	const struct db_pod *p = row;
	struct db_pod other = { 0 };
	int r;
	if (pod_find_locked(db, p->name, p->namespace, p->uid, p->attempt, &other, NULL) == 0 &&
	    strcmp(other.id, p->id) != 0)
		r = berth_error_set(err, EEXIST,
				    "pod name \"%s\" namespace \"%s\" uid \"%s\" attempt %" PRIu32
				    " is taken by pod %s",
				    p->name, p->namespace, p->uid, p->attempt, other.id);
	else
		r = berth_error_set(err, EEXIST, "pod %s already exists", p->id);
	db_pod_clear(&other);
	return r;
}

int db_pod_insert(struct db *db, const struct db_pod *p, struct berth_error **err)
{
	int r = pod_validate(p, err);
	return r < 0 ? r : insert_row(db, ST_POD_INSERT, &pod_rows, p, pod_exists, err);
}

int db_pod_get(struct db *db, const char *id, struct db_pod *ret, struct berth_error **err)
{
	return get_by_key(db, ST_POD_GET, &pod_rows, id, ret, err);
}

int db_pod_find(struct db *db, const char *name, const char *namespace, const char *uid,
		uint32_t attempt, struct db_pod *ret, struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	return pod_find_locked(db, name, namespace, uid, attempt, ret, err);
}

/* UPDATE pods SET <one column> = ? WHERE id = ? */
static int pod_update(struct db *db, enum stmt which, const char *id, const char *value,
		      struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, which, err);
	if (!s)
		return -EIO;
	int r = bind(db, s, err, "tt", value, id);
	return r < 0 ? r : change_one(db, s, "pod", id, err);
}

int db_pod_set_state(struct db *db, const char *id, const char *state, struct berth_error **err)
{
	int r = check_pod_state(id, state, err);
	return r < 0 ? r : pod_update(db, ST_POD_SET_STATE, id, state, err);
}

int db_pod_set_network(struct db *db, const char *id, const char *network_json,
		       struct berth_error **err)
{
	return pod_update(db, ST_POD_SET_NETWORK, id, network_json, err);
}

/* The number of a pod's containers (for the message of a refused delete). */
static int pod_containers(struct db *db, const char *id)
{
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, ST_POD_CONTAINERS, NULL);
	if (!s || bind(db, s, NULL, "t", id) < 0 || sqlite3_step(s) != SQLITE_ROW)
		return -1;
	return sqlite3_column_int(s, 0);
}

int db_pod_delete(struct db *db, const char *id, struct berth_error **err)
{
	_cleanup_unlock_ struct db *locked = db_lock(db);
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, ST_POD_DELETE, err);
	if (!s)
		return -EIO;
	int r = bind(db, s, err, "t", id);
	if (r >= 0)
		r = change_one(db, s, "pod", id, err);
	if (r == -EBUSY && !(err && *err)) {
		stmt_resetp(&s);
		return berth_error_set(err, EBUSY, "pod %s still has %d container(s)", id,
				       pod_containers(db, id));
	}
	return r;
}

int db_pod_list(struct db *db, struct db_pod **ret, size_t *ret_n, struct berth_error **err)
{
	return list_rows(db, ST_POD_LIST, &pod_rows, NULL, (void **)ret, ret_n, err);
}

void db_pod_clear(struct db_pod *p)
{
	row_clear(&pod_rows, p);
}

void db_pod_list_free(struct db_pod *v, size_t n)
{
	list_free(&pod_rows, v, n);
}

/* ---- containers ---- */

static int container_validate(const struct db_container *c, struct berth_error **err)
{
	int r = row_validate(&container_rows, c, err);
	return r < 0 ? r : check_container_state(c->id, c->state, err);
}

/* The message for a taken id or (pod, name, attempt). */
static int container_exists(struct db *db, const void *row, struct berth_error **err)
{
	const struct db_container *c = row;
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, ST_CONTAINER_FIND, NULL);
	if (s && bind(db, s, NULL, "ttu", c->pod_id, c->name, c->attempt) >= 0 &&
	    sqlite3_step(s) == SQLITE_ROW) {
		const char *other = (const char *)sqlite3_column_text(s, 0);
		if (other && strcmp(other, c->id) != 0)
			return berth_error_set(err, EEXIST,
					       "container name \"%s\" attempt %" PRIu32
					       " in pod %s is taken by container %s",
					       c->name, c->attempt, c->pod_id, other);
	}
	return berth_error_set(err, EEXIST, "container %s already exists", c->id);
}

int db_container_insert(struct db *db, const struct db_container *c, struct berth_error **err)
{
	int r = container_validate(c, err);
	if (r >= 0)
		r = insert_row(db, ST_CONTAINER_INSERT, &container_rows, c, container_exists, err);
	if (r == -ENOENT && !(err && *err))
		return berth_error_set(err, ENOENT, "container %s: pod %s not found", c->id,
				       c->pod_id);
	return r;
}

int db_container_get(struct db *db, const char *id, struct db_container *ret,
		     struct berth_error **err)
{
	return get_by_key(db, ST_CONTAINER_GET, &container_rows, id, ret, err);
}

int db_container_update_status(struct db *db, const struct db_container *c,
			       struct berth_error **err)
{
	int r = check_container_state(c->id, c->state, err);
	if (r < 0)
		return r;
	_cleanup_unlock_ struct db *locked = db_lock(db);
	sqlite3_stmt *s _cleanup_reset_ = stmt(db, ST_CONTAINER_UPDATE, err);
	if (!s)
		return -EIO;
	r = bind(db, s, err, "tiidddttt", c->state, c->started_ns, c->finished_ns, c->exit_code,
		 c->signal, (int)c->oom_killed, c->reason, c->message, c->id);
	return r < 0 ? r : change_one(db, s, "container", c->id, err);
}

int db_container_delete(struct db *db, const char *id, struct berth_error **err)
{
	return delete_by_key(db, ST_CONTAINER_DELETE, "container", id, err);
}

int db_container_list(struct db *db, const char *pod_id, struct db_container **ret,
		      size_t *ret_n, struct berth_error **err)
{
	return list_rows(db, pod_id ? ST_CONTAINER_LIST_POD : ST_CONTAINER_LIST, &container_rows,
			 pod_id, (void **)ret, ret_n, err);
}

void db_container_clear(struct db_container *c)
{
	row_clear(&container_rows, c);
}

void db_container_list_free(struct db_container *v, size_t n)
{
	list_free(&container_rows, v, n);
}

/* ---- images ---- */

int db_image_put(struct db *db, const struct db_image *im, struct berth_error **err)
{
	int r = row_validate(&image_rows, im, err);
	return r < 0 ? r : insert_row(db, ST_IMAGE_PUT, &image_rows, im, NULL, err);
}

int db_image_get(struct db *db, const char *name, struct db_image *ret, struct berth_error **err)
{
	return get_by_key(db, ST_IMAGE_GET, &image_rows, name, ret, err);
}

int db_image_delete(struct db *db, const char *name, struct berth_error **err)
{
	return delete_by_key(db, ST_IMAGE_DELETE, "image", name, err);
}

int db_image_list(struct db *db, struct db_image **ret, size_t *ret_n, struct berth_error **err)
{
	return list_rows(db, ST_IMAGE_LIST, &image_rows, NULL, (void **)ret, ret_n, err);
}

void db_image_clear(struct db_image *im)
{
	row_clear(&image_rows, im);
}

void db_image_list_free(struct db_image *v, size_t n)
{
	list_free(&image_rows, v, n);
}

/* ---- counting ---- */

int db_count(struct db *db, const char *table, struct berth_error **err)
{
	static const struct {
		const char *table;
		enum stmt which;
	} tables[] = {
		{ "pods", ST_COUNT_PODS },
		{ "containers", ST_COUNT_CONTAINERS },
		{ "images", ST_COUNT_IMAGES },
	};
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		if (!table || strcmp(table, tables[i].table) != 0)
			continue;
		_cleanup_unlock_ struct db *locked = db_lock(db);
		sqlite3_stmt *s _cleanup_reset_ = stmt(db, tables[i].which, err);
		if (!s)
			return -EIO;
		int r = step_row(db, s, "count", err);
		if (r < 0)
			return r;
		return r ? sqlite3_column_int(s, 0) : berth_error_set(err, EIO, "count: no row");
	}
	return berth_error_set(err, EINVAL, "no table \"%s\" (pods, containers, images)",
			       table ? table : "(null)");
}
