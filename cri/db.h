/* berthd's metadata: pods, containers and images in SQLite (WAL), <root>/berth.db.
 *
 * The database is the daemon's memory across restarts: what pods and containers exist, what
 * state they were last seen in, and the requests that made them (as JSON text, so a later
 * version can rebuild what it needs). Kernel state (namespaces, mounts, shims) is reconciled
 * against it at start-up, not stored in it.
 *
 * Schema versions live in PRAGMA user_version; db_open applies every migration newer than the
 * file's version in one transaction each (a newer file than this build knows is refused).
 * One connection, serialized (SQLITE_OPEN_FULLMUTEX): any thread may call any function.
 * Structures returned through ret_ belong to the caller (db_*_clear). Errors: -ENOENT for a
 * missing row, -EEXIST for a duplicate (id, or the CRI's unique name tuple), -EIO otherwise,
 * with SQLite's message in *err. */
#ifndef BERTH_CRI_DB_H
#define BERTH_CRI_DB_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_FILE "berth.db"

struct db;

struct db_pod {
	char *id;
	char *name, *namespace, *uid; /* unique with attempt */
	uint32_t attempt;
	char *state;        /* "ready" | "notready" */
	int64_t created_ns;
	char *config_json;  /* the request that made it */
	char *labels_json;  /* JSON object text, or NULL */
	char *annotations_json;
	char *network_json; /* what the network setup recorded (IPs...), or NULL */
};

struct db_container {
	char *id;
	char *pod_id;      /* a pod's id (foreign key: a pod with containers cannot go) */
	char *name;        /* unique per pod with attempt */
	uint32_t attempt;
	char *image;       /* the name asked for */
	char *image_id;    /* the config digest it resolved to */
	char *state;       /* "created" | "running" | "exited" | "unknown" */
	int64_t created_ns, started_ns, finished_ns;
	int exit_code;
	int signal;
	bool oom_killed;
	char *reason;      /* "Completed" | "Error" | "OOMKilled" | "ShimDied" | ..., or NULL */
	char *message;     /* or NULL */
	char *log_path;    /* or NULL */
	char *config_json; /* the request that made it */
	char *labels_json;
	char *annotations_json;
};

struct db_image {
	char *id;          /* config digest */
	char *name;        /* one row per name */
	char *repo_digest; /* manifest digest, or NULL */
	uint64_t size;
	int64_t pulled_ns;
};

int db_open(const char *path, struct db **ret, struct berth_error **err);
struct db *db_close(struct db *db);
void db_closep(struct db **db);
int db_schema_version(struct db *db);
extern const int db_schema_latest;

int db_begin(struct db *db, struct berth_error **err);
int db_commit(struct db *db, struct berth_error **err);
void db_rollback(struct db *db);

int db_pod_insert(struct db *db, const struct db_pod *p, struct berth_error **err);
int db_pod_get(struct db *db, const char *id, struct db_pod *ret, struct berth_error **err);
/* Finds by the unique tuple; -ENOENT when none. */
int db_pod_find(struct db *db, const char *name, const char *namespace, const char *uid,
		uint32_t attempt, struct db_pod *ret, struct berth_error **err);
int db_pod_set_state(struct db *db, const char *id, const char *state, struct berth_error **err);
int db_pod_set_network(struct db *db, const char *id, const char *network_json,
		       struct berth_error **err);
/* -EBUSY while it has containers. */
int db_pod_delete(struct db *db, const char *id, struct berth_error **err);
int db_pod_list(struct db *db, struct db_pod **ret, size_t *ret_n, struct berth_error **err);
void db_pod_clear(struct db_pod *p);
void db_pod_list_free(struct db_pod *v, size_t n);

int db_container_insert(struct db *db, const struct db_container *c, struct berth_error **err);
int db_container_get(struct db *db, const char *id, struct db_container *ret,
		     struct berth_error **err);
/* Writes state, times, exit fields, reason and message of c (by c->id). */
int db_container_update_status(struct db *db, const struct db_container *c,
			       struct berth_error **err);
int db_container_delete(struct db *db, const char *id, struct berth_error **err);
/* pod_id NULL: all containers. */
int db_container_list(struct db *db, const char *pod_id, struct db_container **ret,
		      size_t *ret_n, struct berth_error **err);
void db_container_clear(struct db_container *c);
void db_container_list_free(struct db_container *v, size_t n);

/* Insert or replace by name. */
int db_image_put(struct db *db, const struct db_image *im, struct berth_error **err);
int db_image_get(struct db *db, const char *name, struct db_image *ret, struct berth_error **err);
int db_image_delete(struct db *db, const char *name, struct berth_error **err);
int db_image_list(struct db *db, struct db_image **ret, size_t *ret_n, struct berth_error **err);
void db_image_clear(struct db_image *im);
void db_image_list_free(struct db_image *v, size_t n);

/* Rows per table (tests count them before and after). */
int db_count(struct db *db, const char *table, struct berth_error **err);

#endif
