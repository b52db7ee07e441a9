/* cri/db.c: berthd's metadata in SQLite, on real database files in a temporary directory. */
#include "unit.h"

#include "base/cleanup.h"
#include "cri/db.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

struct fx {
	struct unit_tmpdir tmp;
	char path[128];
	struct db *db;
	struct berth_error *err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/" DB_FILE, f->tmp.path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	db_close(f->db);
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static void reset_err(struct fx *f)
{
	berth_error_freep(&f->err);
}

static void open_db(struct fx *f)
{
	MUST_OK(f, db_open(f->path, &f->db, &f->err));
}

static void reopen(struct fx *f)
{
	f->db = db_close(f->db);
	open_db(f);
}

/* The fd's flags include FD_CLOEXEC for every open fd of the process that names path. */
static void assert_cloexec_fds(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = 0;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char link[300], target[512];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, path, strlen(path)) != 0)
			continue;
		int flags = fcntl(atoi(e->d_name), F_GETFD);
		if (!(flags & FD_CLOEXEC))
			fail_msg("fd %s (%s) is not O_CLOEXEC", e->d_name, target);
		found++;
	}
	closedir(d);
	assert_true(found >= 2); /* the database and its WAL at least */
}

/* A plain SQLite connection of the test's own, to look behind db.c's back. */
static sqlite3 *raw_open(const char *path)
{
	sqlite3 *h = NULL;
	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
			 SQLITE_OK);
	return h;
}

static void raw_exec(sqlite3 *h, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
}

/* The text of a one-row, one-column query. */
static char *raw_query(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	char *v = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return v;
}

static void test_open_wal_private(void **state)
{
	struct fx *f = *state;
	open_db(f);
	assert_int_equal(db_schema_version(f->db), db_schema_latest);
	assert_int_equal(db_schema_latest, 1);
	/* Make the WAL exist, then look at modes and at the journal mode from outside. */
	struct db_image im = { .id = "sha256:1", .name = "a", .size = 1, .pulled_ns = 1 };
	MUST_OK(f, db_image_put(f->db, &im, &f->err));
	struct stat st;
	char wal[160];
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_cloexec_fds(f->path);
	sqlite3 *h = raw_open(f->path);
	_cleanup_free_ char *mode = raw_query(h, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	sqlite3_close(h);
}

static void test_open_fixes_mode_and_refuses_non_files(void **state)
{
	struct fx *f = *state;
	int fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	open_db(f);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	f->db = db_close(f->db);

	char dir[160], link[160];
	snprintf(dir, sizeof(dir), "%s/dir", f->tmp.path);
	assert_int_equal(mkdir(dir, 0700), 0);
	struct db *db = NULL;
	assert_true(db_open(dir, &db, &f->err) < 0);
	assert_null(db);
	assert_contains(f->err->msg, dir);
	reset_err(f);
	snprintf(link, sizeof(link), "%s/link", f->tmp.path);
	assert_int_equal(symlink(f->path, link), 0);
	assert_int_equal(db_open(link, &db, &f->err), -ELOOP);
	assert_contains(f->err->msg, link);
	reset_err(f);
	/* A file that is not a database. */
	char junk[160];
	snprintf(junk, sizeof(junk), "%s/junk.db", f->tmp.path);
	fd = open(junk, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_int_equal(write(fd, "this is not a database, not even close to one.......", 52), 52);
	close(fd);
	assert_int_equal(db_open(junk, &db, &f->err), -EIO);
	assert_contains(f->err->msg, "junk.db");
	assert_contains(f->err->msg, "not a database");
}

static struct db_pod full_pod(const char *id, const char *name, uint32_t attempt)
{
	return (struct db_pod){
		.id = (char *)id,
		.name = (char *)name,
		.namespace = "default",
		.uid = "uid-1",
		.attempt = attempt,
		.state = "ready",
		.created_ns = 1700000000123456789LL,
		.config_json = "{\"metadata\":{\"name\":\"web\"}}",
		.labels_json = "{\"app\":\"web\"}",
		.annotations_json = "{\"a\":\"it's \\\"quoted\\\"; DROP TABLE pods; --\"}",
		.network_json = "{\"ip\":\"10.88.0.2\"}",
	};
}

static void assert_pod_equal(const struct db_pod *a, const struct db_pod *b)
{
#define SAME_STR(x)                                                                                \
	do {                                                                                       \
		if (a->x || b->x)                                                                  \
			assert_string_equal(a->x ? a->x : "(null)", b->x ? b->x : "(null)");      \
	} while (0)
	SAME_STR(id);
	SAME_STR(name);
	SAME_STR(namespace);
	SAME_STR(uid);
	SAME_STR(state);
	SAME_STR(config_json);
	SAME_STR(labels_json);
	SAME_STR(annotations_json);
	SAME_STR(network_json);
	assert_int_equal(a->attempt, b->attempt);
	assert_int_equal(a->created_ns, b->created_ns);
}

static void test_pod_round_trip(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod p = full_pod("p1", "web", 4294967295u), got = { 0 };
	p.created_ns = INT64_MIN;
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	MUST_OK(f, db_pod_get(f->db, "p1", &got, &f->err));
	assert_pod_equal(&got, &p);
	db_pod_clear(&got);
	/* The optional fields as NULL come back NULL. */
	struct db_pod q = full_pod("p2", "db", 0);
	q.labels_json = q.annotations_json = q.network_json = NULL;
	q.state = "notready";
	MUST_OK(f, db_pod_insert(f->db, &q, &f->err));
	MUST_OK(f, db_pod_find(f->db, "db", "default", "uid-1", 0, &got, &f->err));
	assert_pod_equal(&got, &q);
	assert_null(got.labels_json);
	assert_null(got.network_json);
	db_pod_clear(&got);
	/* State and network change; the network can go back to NULL. */
	MUST_OK(f, db_pod_set_state(f->db, "p2", "ready", &f->err));
	MUST_OK(f, db_pod_set_network(f->db, "p2", "{\"ip\":\"10.88.0.9\"}", &f->err));
	MUST_OK(f, db_pod_get(f->db, "p2", &got, &f->err));
	assert_string_equal(got.state, "ready");
	assert_string_equal(got.network_json, "{\"ip\":\"10.88.0.9\"}");
	db_pod_clear(&got);
	MUST_OK(f, db_pod_set_network(f->db, "p2", NULL, &f->err));
	MUST_OK(f, db_pod_get(f->db, "p2", &got, &f->err));
	assert_null(got.network_json);
	db_pod_clear(&got);
	/* The list, in creation order (p1's created_ns is the smallest). */
	struct db_pod *v = NULL;
	size_t n = 0;
	MUST_OK(f, db_pod_list(f->db, &v, &n, &f->err));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].id, "p1");
	assert_string_equal(v[1].id, "p2");
	assert_pod_equal(&v[0], &p);
	db_pod_list_free(v, n);
	MUST_OK(f, db_pod_delete(f->db, "p1", &f->err));
	assert_int_equal(db_count(f->db, "pods", &f->err), 1);
}

static void test_pod_missing_and_invalid(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod got = { 0 };
	assert_int_equal(db_pod_get(f->db, "nope", &got, &f->err), -ENOENT);
	assert_contains(f->err->msg, "pod nope not found");
	assert_null(got.id);
	reset_err(f);
	assert_int_equal(db_pod_find(f->db, "web", "ns", "u", 3, &got, &f->err), -ENOENT);
	assert_contains(f->err->msg, "name \"web\" namespace \"ns\" uid \"u\" attempt 3");
	reset_err(f);
	assert_int_equal(db_pod_set_state(f->db, "nope", "ready", &f->err), -ENOENT);
	assert_contains(f->err->msg, "pod nope not found");
	reset_err(f);
	assert_int_equal(db_pod_set_network(f->db, "nope", NULL, &f->err), -ENOENT);
	assert_contains(f->err->msg, "nope");
	reset_err(f);
	assert_int_equal(db_pod_delete(f->db, "nope", &f->err), -ENOENT);
	assert_contains(f->err->msg, "pod nope not found");
	reset_err(f);

	struct db_pod p = full_pod("p1", "web", 0);
	p.state = "running";
	assert_int_equal(db_pod_insert(f->db, &p, &f->err), -EINVAL);
	assert_contains(f->err->msg, "pod p1: unknown state \"running\" (ready, notready)");
	reset_err(f);
	p = full_pod("p1", NULL, 0);
	assert_int_equal(db_pod_insert(f->db, &p, &f->err), -EINVAL);
	assert_contains(f->err->msg, "pod p1: name is required");
	reset_err(f);
	p = full_pod(NULL, "web", 0);
	assert_int_equal(db_pod_insert(f->db, &p, &f->err), -EINVAL);
	assert_contains(f->err->msg, "id is required");
	reset_err(f);
	p = full_pod("p1", "web", 0);
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	assert_int_equal(db_pod_set_state(f->db, "p1", "bogus", &f->err), -EINVAL);
	assert_contains(f->err->msg, "unknown state \"bogus\"");
	assert_int_equal(db_count(f->db, "pods", NULL), 1);
}

static void test_pod_unique(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod p = full_pod("p1", "web", 1);
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	/* The same id. */
	struct db_pod q = full_pod("p1", "other", 1);
	assert_int_equal(db_pod_insert(f->db, &q, &f->err), -EEXIST);
	assert_contains(f->err->msg, "pod p1 already exists");
	reset_err(f);
	/* The same (name, namespace, uid, attempt) under another id. */
	q = full_pod("p2", "web", 1);
	assert_int_equal(db_pod_insert(f->db, &q, &f->err), -EEXIST);
	assert_contains(f->err->msg,
			"pod name \"web\" namespace \"default\" uid \"uid-1\" attempt 1 is taken "
			"by pod p1");
	reset_err(f);
	/* Another attempt, namespace or uid is another pod. */
	q = full_pod("p2", "web", 2);
	MUST_OK(f, db_pod_insert(f->db, &q, &f->err));
	q = full_pod("p3", "web", 1);
	q.namespace = "kube-system";
	MUST_OK(f, db_pod_insert(f->db, &q, &f->err));
	q = full_pod("p4", "web", 1);
	q.uid = "uid-2";
	MUST_OK(f, db_pod_insert(f->db, &q, &f->err));
	assert_int_equal(db_count(f->db, "pods", &f->err), 4);
}

static struct db_container full_container(const char *id, const char *pod, const char *name,
					  uint32_t attempt)
{
	return (struct db_container){
		.id = (char *)id,
		.pod_id = (char *)pod,
		.name = (char *)name,
		.attempt = attempt,
		.image = "busybox",
		.image_id = "sha256:abcdef",
		.state = "created",
		.created_ns = 100,
		.started_ns = 200,
		.finished_ns = 300,
		.exit_code = -1,
		.signal = 9,
		.oom_killed = true,
		.reason = "OOMKilled",
		.message = "ran out of memory",
		.log_path = "/var/log/pods/x/0.log",
		.config_json = "{\"command\":[\"sh\"]}",
		.labels_json = "{\"l\":\"1\"}",
		.annotations_json = "{\"a\":\"2\"}",
	};
}

static void assert_container_equal(const struct db_container *a, const struct db_container *b)
{
	SAME_STR(id);
	SAME_STR(pod_id);
	SAME_STR(name);
	SAME_STR(image);
	SAME_STR(image_id);
	SAME_STR(state);
	SAME_STR(reason);
	SAME_STR(message);
	SAME_STR(log_path);
	SAME_STR(config_json);
	SAME_STR(labels_json);
	SAME_STR(annotations_json);
	assert_int_equal(a->attempt, b->attempt);
	assert_int_equal(a->created_ns, b->created_ns);
	assert_int_equal(a->started_ns, b->started_ns);
	assert_int_equal(a->finished_ns, b->finished_ns);
	assert_int_equal(a->exit_code, b->exit_code);
	assert_int_equal(a->signal, b->signal);
	assert_int_equal(a->oom_killed, b->oom_killed);
}

static void test_container_round_trip(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod p = full_pod("p1", "web", 0), p2 = full_pod("p2", "db", 0);
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	MUST_OK(f, db_pod_insert(f->db, &p2, &f->err));
	struct db_container c = full_container("c1", "p1", "app", 7), got = { 0 };
	MUST_OK(f, db_container_insert(f->db, &c, &f->err));
	MUST_OK(f, db_container_get(f->db, "c1", &got, &f->err));
	assert_container_equal(&got, &c);
	db_container_clear(&got);
	/* NULLs stay NULL; extreme numbers survive. */
	struct db_container d = full_container("c2", "p2", "app", 0);
	d.reason = d.message = d.log_path = d.labels_json = d.annotations_json = NULL;
	d.oom_killed = false;
	d.exit_code = INT32_MIN;
	d.signal = 0;
	d.created_ns = 50;
	d.started_ns = INT64_MAX;
	d.finished_ns = INT64_MIN;
	MUST_OK(f, db_container_insert(f->db, &d, &f->err));
	MUST_OK(f, db_container_get(f->db, "c2", &got, &f->err));
	assert_container_equal(&got, &d);
	assert_null(got.reason);
	assert_null(got.log_path);
	db_container_clear(&got);
	/* Status update: state, times, exit fields, reason, message; not the rest. */
	struct db_container u = full_container("c1", "p1", "app", 7);
	u.state = "exited";
	u.started_ns = 1111;
	u.finished_ns = 2222;
	u.exit_code = 137;
	u.signal = 15;
	u.oom_killed = false;
	u.reason = "Error";
	u.message = NULL;
	u.image = "ignored";
	MUST_OK(f, db_container_update_status(f->db, &u, &f->err));
	MUST_OK(f, db_container_get(f->db, "c1", &got, &f->err));
	assert_string_equal(got.state, "exited");
	assert_int_equal(got.started_ns, 1111);
	assert_int_equal(got.finished_ns, 2222);
	assert_int_equal(got.exit_code, 137);
	assert_int_equal(got.signal, 15);
	assert_false(got.oom_killed);
	assert_string_equal(got.reason, "Error");
	assert_null(got.message);
	assert_string_equal(got.image, "busybox");
	assert_int_equal(got.created_ns, 100);
	db_container_clear(&got);
	/* Lists: all (creation order), one pod's, an unknown pod's (empty). */
	struct db_container *v = NULL;
	size_t n = 0;
	MUST_OK(f, db_container_list(f->db, NULL, &v, &n, &f->err));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].id, "c2");
	assert_container_equal(&v[0], &d);
	assert_string_equal(v[1].id, "c1");
	db_container_list_free(v, n);
	MUST_OK(f, db_container_list(f->db, "p1", &v, &n, &f->err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, "c1");
	db_container_list_free(v, n);
	MUST_OK(f, db_container_list(f->db, "none", &v, &n, &f->err));
	assert_int_equal(n, 0);
	db_container_list_free(v, n);
	MUST_OK(f, db_container_delete(f->db, "c2", &f->err));
	assert_int_equal(db_count(f->db, "containers", &f->err), 1);
}

static void test_container_errors(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod p = full_pod("p1", "web", 0);
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	/* A pod that does not exist (the foreign key). */
	struct db_container c = full_container("c1", "ghost", "app", 0);
	assert_int_equal(db_container_insert(f->db, &c, &f->err), -ENOENT);
	assert_contains(f->err->msg, "container c1: pod ghost not found");
	reset_err(f);
	c = full_container("c1", "p1", "app", 0);
	MUST_OK(f, db_container_insert(f->db, &c, &f->err));
	/* The same id, then the same (pod, name, attempt). */
	struct db_container d = full_container("c1", "p1", "other", 0);
	assert_int_equal(db_container_insert(f->db, &d, &f->err), -EEXIST);
	assert_contains(f->err->msg, "container c1 already exists");
	reset_err(f);
	d = full_container("c2", "p1", "app", 0);
	assert_int_equal(db_container_insert(f->db, &d, &f->err), -EEXIST);
	assert_contains(f->err->msg,
			"container name \"app\" attempt 0 in pod p1 is taken by container c1");
	reset_err(f);
	d = full_container("c2", "p1", "app", 1);
	MUST_OK(f, db_container_insert(f->db, &d, &f->err));
	/* Invalid input. */
	d = full_container("c3", "p1", "app", 2);
	d.state = "paused";
	assert_int_equal(db_container_insert(f->db, &d, &f->err), -EINVAL);
	assert_contains(f->err->msg,
			"container c3: unknown state \"paused\" (created, running, exited, unknown)");
	reset_err(f);
	d = full_container("c3", "p1", "app", 2);
	d.image_id = NULL;
	assert_int_equal(db_container_insert(f->db, &d, &f->err), -EINVAL);
	assert_contains(f->err->msg, "container c3: image_id is required");
	reset_err(f);
	/* A pod with containers stays. */
	assert_int_equal(db_pod_delete(f->db, "p1", &f->err), -EBUSY);
	assert_contains(f->err->msg, "pod p1 still has 2 container(s)");
	reset_err(f);
	assert_int_equal(db_count(f->db, "pods", &f->err), 1);
	/* Missing rows. */
	struct db_container got = { 0 };
	assert_int_equal(db_container_get(f->db, "zz", &got, &f->err), -ENOENT);
	assert_contains(f->err->msg, "container zz not found");
	reset_err(f);
	d = full_container("zz", "p1", "x", 0);
	assert_int_equal(db_container_update_status(f->db, &d, &f->err), -ENOENT);
	assert_contains(f->err->msg, "container zz not found");
	reset_err(f);
	assert_int_equal(db_container_delete(f->db, "zz", &f->err), -ENOENT);
	assert_contains(f->err->msg, "container zz not found");
	reset_err(f);
	MUST_OK(f, db_container_delete(f->db, "c1", &f->err));
	MUST_OK(f, db_container_delete(f->db, "c2", &f->err));
	MUST_OK(f, db_pod_delete(f->db, "p1", &f->err));
	assert_int_equal(db_count(f->db, "pods", &f->err), 0);
}

static void test_images(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_image a = { .id = "sha256:aa", .name = "docker.io/library/busybox:latest",
			      .repo_digest = "sha256:m1", .size = INT64_MAX, .pulled_ns = 42 };
	struct db_image b = { .id = "sha256:aa", .name = "busybox:alias", .repo_digest = NULL,
			      .size = 0, .pulled_ns = -1 };
	struct db_image got = { 0 };
	MUST_OK(f, db_image_put(f->db, &a, &f->err));
	MUST_OK(f, db_image_put(f->db, &b, &f->err));
	MUST_OK(f, db_image_get(f->db, a.name, &got, &f->err));
	assert_string_equal(got.id, "sha256:aa");
	assert_string_equal(got.repo_digest, "sha256:m1");
	assert_true(got.size == (uint64_t)INT64_MAX);
	assert_int_equal(got.pulled_ns, 42);
	db_image_clear(&got);
	MUST_OK(f, db_image_get(f->db, "busybox:alias", &got, &f->err));
	assert_null(got.repo_digest);
	assert_int_equal(got.pulled_ns, -1);
	db_image_clear(&got);
	/* Put again by name replaces. */
	a.id = "sha256:bb";
	a.repo_digest = NULL;
	a.size = 7;
	MUST_OK(f, db_image_put(f->db, &a, &f->err));
	MUST_OK(f, db_image_get(f->db, a.name, &got, &f->err));
	assert_string_equal(got.id, "sha256:bb");
	assert_null(got.repo_digest);
	assert_int_equal(got.size, 7);
	db_image_clear(&got);
	assert_int_equal(db_count(f->db, "images", &f->err), 2);
	struct db_image *v = NULL;
	size_t n = 0;
	MUST_OK(f, db_image_list(f->db, &v, &n, &f->err));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "busybox:alias");
	assert_string_equal(v[1].name, "docker.io/library/busybox:latest");
	db_image_list_free(v, n);
	/* Refusals and missing rows. */
	a.size = (uint64_t)INT64_MAX + 1;
	assert_int_equal(db_image_put(f->db, &a, &f->err), -EINVAL);
	assert_contains(f->err->msg, "size 9223372036854775808 is out of range");
	reset_err(f);
	a.size = 1;
	a.id = NULL;
	assert_int_equal(db_image_put(f->db, &a, &f->err), -EINVAL);
	assert_contains(f->err->msg, "id is required");
	reset_err(f);
	assert_int_equal(db_image_get(f->db, "nope", &got, &f->err), -ENOENT);
	assert_contains(f->err->msg, "image nope not found");
	reset_err(f);
	MUST_OK(f, db_image_delete(f->db, "busybox:alias", &f->err));
	assert_int_equal(db_image_delete(f->db, "busybox:alias", &f->err), -ENOENT);
	assert_contains(f->err->msg, "image busybox:alias not found");
	reset_err(f);
	assert_int_equal(db_count(f->db, "images", &f->err), 1);
}

static void test_count_tables(void **state)
{
	struct fx *f = *state;
	open_db(f);
	assert_int_equal(db_count(f->db, "pods", &f->err), 0);
	assert_int_equal(db_count(f->db, "containers", &f->err), 0);
	assert_int_equal(db_count(f->db, "images", &f->err), 0);
	assert_int_equal(db_count(f->db, "sqlite_master", &f->err), -EINVAL);
	assert_contains(f->err->msg, "no table \"sqlite_master\" (pods, containers, images)");
	reset_err(f);
	assert_int_equal(db_count(f->db, "pods; DROP TABLE pods", &f->err), -EINVAL);
	reset_err(f);
	assert_int_equal(db_count(f->db, NULL, &f->err), -EINVAL);
	assert_int_equal(db_count(f->db, "pods", NULL), 0);
}

static void test_transactions(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod p = full_pod("p1", "web", 0);
	MUST_OK(f, db_begin(f->db, &f->err));
	assert_int_equal(db_begin(f->db, &f->err), -EBUSY);
	assert_contains(f->err->msg, "a transaction is already open");
	reset_err(f);
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	assert_int_equal(db_count(f->db, "pods", &f->err), 1);
	db_rollback(f->db);
	assert_int_equal(db_count(f->db, "pods", &f->err), 0);
	db_rollback(f->db); /* none open: nothing happens */
	assert_int_equal(db_commit(f->db, &f->err), -EINVAL);
	assert_contains(f->err->msg, "commit without a transaction");
	reset_err(f);
	MUST_OK(f, db_begin(f->db, &f->err));
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	MUST_OK(f, db_commit(f->db, &f->err));
	reopen(f);
	assert_int_equal(db_count(f->db, "pods", &f->err), 1);
}

static void test_persistence(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod p = full_pod("p1", "web", 0), got = { 0 };
	struct db_container c = full_container("c1", "p1", "app", 0), cgot = { 0 };
	struct db_image im = { .id = "sha256:x", .name = "n", .size = 5, .pulled_ns = 6 };
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	MUST_OK(f, db_container_insert(f->db, &c, &f->err));
	MUST_OK(f, db_image_put(f->db, &im, &f->err));
	reopen(f);
	MUST_OK(f, db_pod_get(f->db, "p1", &got, &f->err));
	assert_pod_equal(&got, &p);
	db_pod_clear(&got);
	MUST_OK(f, db_container_get(f->db, "c1", &cgot, &f->err));
	assert_container_equal(&cgot, &c);
	db_container_clear(&cgot);
	assert_int_equal(db_count(f->db, "images", &f->err), 1);
	/* Foreign keys are enforced on the reopened connection too. */
	assert_int_equal(db_pod_delete(f->db, "p1", &f->err), -EBUSY);
}

static void test_migration_from_version_0(void **state)
{
	struct fx *f = *state;
	/* A version-0 file made by hand: an older tool's table, no user_version. */
	sqlite3 *h = raw_open(f->path);
	raw_exec(h, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('kept')");
	sqlite3_close(h);
	open_db(f);
	assert_int_equal(db_schema_version(f->db), 1);
	assert_int_equal(db_count(f->db, "pods", &f->err), 0);
	f->db = db_close(f->db);
	h = raw_open(f->path);
	_cleanup_free_ char *v = raw_query(h, "PRAGMA user_version");
	_cleanup_free_ char *kept = raw_query(h, "SELECT x FROM notes");
	_cleanup_free_ char *idx = raw_query(
		h, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
		   "name = 'containers_pod_id'");
	sqlite3_close(h);
	assert_string_equal(v, "1");
	assert_string_equal(kept, "kept");
	assert_string_equal(idx, "1");
}

static void test_migration_failure_rolls_back(void **state)
{
	struct fx *f = *state;
	/* A version-0 file where migration 1 cannot run: its changes must all be undone. */
	sqlite3 *h = raw_open(f->path);
	raw_exec(h, "CREATE TABLE images (x TEXT)");
	sqlite3_close(h);
	struct db *db = NULL;
	assert_int_equal(db_open(f->path, &db, &f->err), -EIO);
	assert_null(db);
	assert_contains(f->err->msg, "migrate to schema version 1");
	assert_contains(f->err->msg, "table images already exists");
	h = raw_open(f->path);
	_cleanup_free_ char *v = raw_query(h, "PRAGMA user_version");
	_cleanup_free_ char *pods = raw_query(
		h, "SELECT count(*) FROM sqlite_master WHERE name IN ('pods', 'containers')");
	sqlite3_close(h);
	assert_string_equal(v, "0");
	assert_string_equal(pods, "0");
}

static void test_newer_version_refused(void **state)
{
	struct fx *f = *state;
	open_db(f);
	f->db = db_close(f->db);
	sqlite3 *h = raw_open(f->path);
	raw_exec(h, "PRAGMA user_version = 7");
	sqlite3_close(h);
	struct db *db = NULL;
	assert_int_equal(db_open(f->path, &db, &f->err), -ENOTSUP);
	assert_null(db);
	assert_contains(f->err->msg, "berth.db: schema version 7 is newer than this berthd knows (1)");
}

/* ---- threads ---- */

#define THREADS 8
#define PER_THREAD 150

struct worker {
	struct db *db;
	int n;
	int failures;
	char msg[256];
};

/* Each worker inserts its pods and a container each, half of them two by two in a transaction,
 * and reads back what it wrote. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		char id[32], cid[32], name[32];
		snprintf(id, sizeof(id), "t%d-%d", w->n, i);
		snprintf(cid, sizeof(cid), "c%d-%d", w->n, i);
		snprintf(name, sizeof(name), "pod-%d-%d", w->n, i);
		struct db_pod p = full_pod(id, name, 0);
		struct db_container c = full_container(cid, id, "app", 0);
		struct berth_error *err = NULL;
		bool tx = i % 2 == 0;
		struct db_pod got = { 0 };
		int r = tx ? db_begin(w->db, &err) : 0;
		if (r >= 0)
			r = db_pod_insert(w->db, &p, &err);
		if (r >= 0)
			r = db_container_insert(w->db, &c, &err);
		if (r >= 0 && tx)
			r = db_commit(w->db, &err);
		else if (r < 0 && tx)
			db_rollback(w->db);
		if (r >= 0)
			r = db_pod_get(w->db, id, &got, &err);
		if (r >= 0 && strcmp(got.name, name) != 0)
			r = berth_error_set(&err, EIO, "read back %s as %s", name, got.name);
		db_pod_clear(&got);
		if (r < 0) {
			w->failures++;
			snprintf(w->msg, sizeof(w->msg), "%s", err ? err->msg : "?");
		}
		berth_error_free(err);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	open_db(f);
	pthread_t th[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .db = f->db, .n = i };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < THREADS; i++)
		if (w[i].failures)
			fail_msg("thread %d: %d failures, last: %s", i, w[i].failures, w[i].msg);
	assert_int_equal(db_count(f->db, "pods", &f->err), THREADS * PER_THREAD);
	assert_int_equal(db_count(f->db, "containers", &f->err), THREADS * PER_THREAD);
	reopen(f);
	assert_int_equal(db_count(f->db, "pods", &f->err), THREADS * PER_THREAD);
}

/* ---- a writer that dies mid-transaction ---- */

/* In a child: its own connection, a transaction big enough to spill pages into the WAL, then
 * death without a commit: by _exit() or by SIGKILL from the parent. */
static void killed_writer(struct fx *f, bool sigkill)
{
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct db *db = NULL;
		static char big[4096];
		memset(big, 'x', sizeof(big) - 1);
		if (db_open(f->path, &db, NULL) < 0 || db_begin(db, NULL) < 0)
			_exit(2);
		for (int i = 0; i < 3000; i++) {
			char id[32];
			snprintf(id, sizeof(id), "dead-%d", i);
			struct db_pod p = full_pod(id, id, 0);
			p.config_json = big;
			if (db_pod_insert(db, &p, NULL) < 0)
				_exit(3);
		}
		if (write(pfd[1], "x", 1) != 1)
			_exit(4);
		if (sigkill)
			pause();
		_exit(0);
	}
	close(pfd[1]);
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	if (sigkill)
		assert_int_equal(kill(pid, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (sigkill)
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	else
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_killed_writer_leaves_nothing(void **state)
{
	struct fx *f = *state;
	open_db(f);
	struct db_pod p = full_pod("before", "before", 0);
	MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	for (int mode = 0; mode < 2; mode++) {
		killed_writer(f, mode == 1);
		/* Its uncommitted pages reached the WAL (a transaction larger than the page
		 * cache spills): what is tested is that they are ignored, not that they were
		 * never written. */
		char wal[160];
		struct stat st;
		snprintf(wal, sizeof(wal), "%s-wal", f->path);
		assert_int_equal(stat(wal, &st), 0);
		assert_true(st.st_size > 4 << 20);
		/* The open connection sees nothing of it and can write at once. */
		assert_int_equal(db_count(f->db, "pods", &f->err), 1 + mode);
		char id[16];
		snprintf(id, sizeof(id), "after%d", mode);
		p = full_pod(id, id, 0);
		MUST_OK(f, db_pod_insert(f->db, &p, &f->err));
	}
	/* A fresh open (the WAL's recovery) sees the same. */
	reopen(f);
	assert_int_equal(db_count(f->db, "pods", &f->err), 3);
	struct db_pod got = { 0 };
	assert_int_equal(db_pod_get(f->db, "dead-0", &got, &f->err), -ENOENT);
	sqlite3 *h = raw_open(f->path);
	_cleanup_free_ char *ok = raw_query(h, "PRAGMA integrity_check");
	sqlite3_close(h);
	assert_string_equal(ok, "ok");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_wal_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_fixes_mode_and_refuses_non_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pod_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_missing_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_unique, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_images, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_version_0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_failure_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_writer_leaves_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
