/* base/fileutil.c: reading, atomic writing and tree removal, inside a per-test temp dir. */
#include "unit.h"

#include "base/fileutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

struct fx {
	struct unit_tmpdir dir;
	struct unit_tmpdir outside; /* a second directory a symlink in dir points to */
	struct berth_error *err;
	char *buf;
	mode_t old_umask;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->dir.fd = f->outside.fd = -1;
	if (unit_tmpdir_create(&f->dir) < 0 || unit_tmpdir_create(&f->outside) < 0)
		return -1;
	f->old_umask = umask(022);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	umask(f->old_umask);
	unit_tmpdir_remove(&f->dir);
	unit_tmpdir_remove(&f->outside);
	berth_error_free(f->err);
	free(f->buf);
	free(f);
	return 0;
}

static void put(int dirfd, const char *name, const char *data)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

/* Number of entries in the directory, "." and ".." aside. */
static int count_entries(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	DIR *d = fdopendir(fd);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* ---- read_file_at ---- */

static void test_read_small(void **state)
{
	struct fx *f = *state;
	put(f->dir.fd, "a", "hello\n");
	size_t len = 0;
	assert_int_equal(read_file_at(f->dir.fd, "a", &f->buf, &len, &f->err), 0);
	assert_string_equal(f->buf, "hello\n");
	assert_int_equal(len, 6);
	assert_null(f->err);
}

static void test_read_empty_and_null_len(void **state)
{
	struct fx *f = *state;
	put(f->dir.fd, "empty", "");
	assert_int_equal(read_file_at(f->dir.fd, "empty", &f->buf, NULL, &f->err), 0);
	assert_non_null(f->buf);
	assert_string_equal(f->buf, "");
}

static void test_read_large(void **state)
{
	struct fx *f = *state;
	/* several times the initial buffer, and not a multiple of it */
	size_t n = 4096 * 5 + 17;
	char *data = malloc(n + 1);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	data[n] = '\0';
	put(f->dir.fd, "big", data);
	size_t len = 0;
	assert_int_equal(read_file_at(f->dir.fd, "big", &f->buf, &len, &f->err), 0);
	assert_int_equal(len, n);
	assert_memory_equal(f->buf, data, n);
	assert_int_equal(f->buf[n], '\0');
	free(data);
}

static void test_read_missing(void **state)
{
	struct fx *f = *state;
	f->buf = NULL;
	assert_int_equal(read_file_at(f->dir.fd, "nope", &f->buf, NULL, &f->err), -ENOENT);
	assert_null(f->buf);
	assert_non_null(f->err);
	assert_int_equal(f->err->code, ENOENT);
	assert_contains(f->err->msg, "open nope");
	/* and through an absolute path, with dirfd ignored */
	berth_error_freep(&f->err);
	assert_int_equal(read_file_at(f->dir.fd, "/nonexistent/berth/x", &f->buf, NULL, &f->err),
			 -ENOENT);
	assert_contains(f->err->msg, "/nonexistent/berth/x");
}

static void test_read_directory(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mkdirat(f->dir.fd, "d", 0755), 0);
	assert_int_equal(read_file_at(f->dir.fd, "d", &f->buf, NULL, &f->err), -EISDIR);
	assert_contains(f->err->msg, "read d");
}

/* ---- write_file_at ---- */

static void test_write_existing(void **state)
{
	struct fx *f = *state;
	put(f->dir.fd, "w", "a much longer old content");
	assert_int_equal(write_file_at(f->dir.fd, "w", "new", &f->err), 0);
	assert_int_equal(read_file_at(f->dir.fd, "w", &f->buf, NULL, &f->err), 0);
	assert_memory_equal(f->buf, "new", 3);
	REGRESSION_IF(strcmp(f->buf, "new") != 0,
		     "base/fileutil.c write_file_at: a regular file is not truncated (no O_TRUNC, "
		     "though the header promises it): got \"%s\", expected \"new\"",
		     f->buf);
	assert_string_equal(f->buf, "new");
}

static void test_write_not_created_nor_followed(void **state)
{
	struct fx *f = *state;
	assert_int_equal(write_file_at(f->dir.fd, "absent", "x", &f->err), -ENOENT);
	assert_contains(f->err->msg, "absent");
	assert_int_equal(faccessat(f->dir.fd, "absent", F_OK, 0), -1);
	berth_error_freep(&f->err);

	put(f->outside.fd, "target", "keep");
	char target[128];
	snprintf(target, sizeof(target), "%s/target", f->outside.path);
	assert_int_equal(symlinkat(target, f->dir.fd, "link"), 0);
	assert_int_equal(write_file_at(f->dir.fd, "link", "clobber", &f->err), -ELOOP);
	assert_int_equal(read_file_at(f->outside.fd, "target", &f->buf, NULL, NULL), 0);
	assert_string_equal(f->buf, "keep");
}

/* ---- write_file_atomic_at ---- */

static void test_atomic_creates_with_mode(void **state)
{
	struct fx *f = *state;
	const mode_t modes[] = { 0600, 0640, 0644 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%zu", i);
		assert_int_equal(
			write_file_atomic_at(f->dir.fd, name, "data", 4, modes[i], i % 2, &f->err),
			0);
		struct stat st;
		assert_int_equal(fstatat(f->dir.fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 07777, modes[i]);
		assert_int_equal(st.st_size, 4);
	}
	/* only the three files: no temporary left behind */
	assert_int_equal(count_entries(f->dir.fd), 3);
}

static void test_atomic_replaces_and_keeps_binary(void **state)
{
	struct fx *f = *state;
	put(f->dir.fd, "state.json", "old old old old");
	const char data[] = { 'a', '\0', 'b', '\n' };
	assert_int_equal(write_file_atomic_at(f->dir.fd, "state.json", data, sizeof(data), 0600,
					      true, &f->err),
			 0);
	size_t len = 0;
	assert_int_equal(read_file_at(f->dir.fd, "state.json", &f->buf, &len, &f->err), 0);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(f->buf, data, sizeof(data));
	assert_int_equal(count_entries(f->dir.fd), 1);
	assert_int_equal(faccessat(f->dir.fd, ".state.json.tmp", F_OK, AT_SYMLINK_NOFOLLOW), -1);
}

static void test_atomic_failure_cleans_up(void **state)
{
	struct fx *f = *state;
	/* renaming a file over a non-empty directory fails: the temporary must go */
	assert_int_equal(mkdirat(f->dir.fd, "dir", 0755), 0);
	put(f->dir.fd, "dir/inner", "x");
	int r = write_file_atomic_at(f->dir.fd, "dir", "data", 4, 0600, false, &f->err);
	assert_true(r < 0);
	assert_non_null(f->err);
	assert_int_equal(f->err->code, -r);
	assert_contains(f->err->msg, "write dir");
	assert_int_equal(count_entries(f->dir.fd), 1);
	struct stat st;
	assert_int_equal(fstatat(f->dir.fd, "dir", &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void test_atomic_name_too_long(void **state)
{
	struct fx *f = *state;
	char name[300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(write_file_atomic_at(f->dir.fd, name, "x", 1, 0600, false, &f->err),
			 -ENAMETOOLONG);
	assert_contains(f->err->msg, "name too long");
	assert_int_equal(count_entries(f->dir.fd), 0);
}

static void test_atomic_leftover_temp_mode(void **state)
{
	struct fx *f = *state;
	/* a temporary left by a crash, with a wider mode */
	int fd = openat(f->dir.fd, ".secret.tmp", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(write_file_atomic_at(f->dir.fd, "secret", "s", 1, 0600, false, &f->err),
			 0);
	struct stat st;
	assert_int_equal(fstatat(f->dir.fd, "secret", &st, 0), 0);
	REGRESSION_IF((st.st_mode & 07777) != 0600,
		     "base/fileutil.c write_file_atomic_at: a leftover .NAME.tmp keeps its mode "
		     "(got %o, asked 0600): O_CREAT without O_EXCL/fchmod does not honour mode",
		     (unsigned)(st.st_mode & 07777));
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* ---- remove_tree_at ---- */

static void test_remove_tree_keeps_symlink_target(void **state)
{
	struct fx *f = *state;
	/* outside/keep/file must survive tree/a/b/link -> outside/keep being removed */
	assert_int_equal(mkdirat(f->outside.fd, "keep", 0755), 0);
	put(f->outside.fd, "keep/file", "precious");
	assert_int_equal(mkdirat(f->dir.fd, "tree", 0755), 0);
	assert_int_equal(mkdirat(f->dir.fd, "tree/a", 0755), 0);
	assert_int_equal(mkdirat(f->dir.fd, "tree/a/b", 0700), 0);
	assert_int_equal(mkdirat(f->dir.fd, "tree/empty", 0755), 0);
	put(f->dir.fd, "tree/top", "1");
	put(f->dir.fd, "tree/a/mid", "2");
	put(f->dir.fd, "tree/a/b/leaf", "3");
	char target[128];
	snprintf(target, sizeof(target), "%s/keep", f->outside.path);
	assert_int_equal(symlinkat(target, f->dir.fd, "tree/a/b/link"), 0);
	assert_int_equal(symlinkat("../../../../..", f->dir.fd, "tree/a/up"), 0);
	assert_int_equal(mkfifoat(f->dir.fd, "tree/a/fifo", 0600), 0);

	assert_int_equal(remove_tree_at(f->dir.fd, "tree"), 0);
	assert_int_equal(faccessat(f->dir.fd, "tree", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_entries(f->dir.fd), 0);
	assert_int_equal(read_file_at(f->outside.fd, "keep/file", &f->buf, NULL, &f->err), 0);
	assert_string_equal(f->buf, "precious");
}

static void test_remove_symlink_itself(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mkdirat(f->outside.fd, "keep", 0755), 0);
	put(f->outside.fd, "keep/file", "x");
	char target[128];
	snprintf(target, sizeof(target), "%s/keep", f->outside.path);
	assert_int_equal(symlinkat(target, f->dir.fd, "link"), 0);
	assert_int_equal(remove_tree_at(f->dir.fd, "link"), 0);
	assert_int_equal(count_entries(f->dir.fd), 0);
	assert_int_equal(faccessat(f->outside.fd, "keep/file", F_OK, 0), 0);
}

static void test_remove_file_and_missing(void **state)
{
	struct fx *f = *state;
	put(f->dir.fd, "file", "x");
	assert_int_equal(remove_tree_at(f->dir.fd, "file"), 0);
	assert_int_equal(count_entries(f->dir.fd), 0);
	assert_int_equal(remove_tree_at(f->dir.fd, "file"), 0); /* ENOENT is success */
	assert_int_equal(remove_tree_at(f->dir.fd, "never/was"), 0);
}

/* ---- write_all ---- */

static void test_write_all_pipe(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write_all(p[1], "abc", 3), 0);
	char buf[8] = "";
	assert_int_equal(read(p[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	close(p[0]);
	/* the reader is gone: EPIPE (SIGPIPE ignored for the check) */
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	assert_int_equal(write_all(p[1], "abc", 3), -EPIPE);
	signal(SIGPIPE, old);
	close(p[1]);
	assert_int_equal(write_all(-1, "x", 1), -EBADF);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_read_small),
		T(test_read_empty_and_null_len),
		T(test_read_large),
		T(test_read_missing),
		T(test_read_directory),
		T(test_write_existing),
		T(test_write_not_created_nor_followed),
		T(test_atomic_creates_with_mode),
		T(test_atomic_replaces_and_keeps_binary),
		T(test_atomic_failure_cleans_up),
		T(test_atomic_name_too_long),
		T(test_atomic_leftover_temp_mode),
		T(test_remove_tree_keeps_symlink_target),
		T(test_remove_symlink_itself),
		T(test_remove_file_and_missing),
		T(test_write_all_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
