/* runtime/rootfs.c: path_check_no_escape, on a fake rootfs in a temp dir. The rest of rootfs.c
 * mounts inside a new mount namespace and is covered by the root suite. */
#include "unit.h"

#include "runtime/spawn-internal.h"

#include <sys/stat.h>

struct fx {
	struct unit_tmpdir dir;
	int rootfd;
	struct berth_error *err;
};

static void mk(int fd, const char *path)
{
	if (mkdirat(fd, path, 0755) < 0)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

static void ln(int fd, const char *target, const char *path)
{
	if (symlinkat(target, fd, path) < 0)
		fail_msg("symlink %s -> %s: %s", path, target, strerror(errno));
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->dir.fd = f->rootfd = -1;
	if (unit_tmpdir_create(&f->dir) < 0 || mkdirat(f->dir.fd, "bundle", 0755) < 0 ||
	    mkdirat(f->dir.fd, "bundle/rootfs", 0755) < 0)
		return -1;
	f->rootfd = openat(f->dir.fd, "bundle/rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->rootfd < 0)
		return -1;
	/* a host-side directory the evil link would reach */
	mkdirat(f->dir.fd, "etc", 0755);
	int r = f->rootfd;
	mk(r, "etc");
	mk(r, "a");
	mk(r, "c");
	mk(r, "d1");
	mk(r, "d1/d2");
	ln(r, "../../../../etc", "evil");
	ln(r, "../../../x", "d1/d2/evil2");
	ln(r, "/etc", "abs");
	ln(r, "/a/b", "abs2");
	ln(r, "../c", "a/b");
	ln(r, "..", "a/up");
	ln(r, "../..", "a/up2");
	ln(r, ".", "self");
	ln(r, "loop2", "loop1");
	ln(r, "loop1", "loop2");
	ln(r, "/../../etc", "absup");
	int fd = openat(r, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->rootfd >= 0)
		close(f->rootfd);
	unit_tmpdir_remove(&f->dir);
	berth_error_free(f->err);
	free(f);
	return 0;
}

static void expect_ok(struct fx *f, const char *path, int line)
{
	int r = path_check_no_escape(f->rootfd, path, &f->err);
	if (r != 0)
		fail_msg("line %d: %s refused (%d): %s", line, path, r, f->err ? f->err->msg : "?");
	if (f->err)
		fail_msg("line %d: %s: error set on success", line, path);
}

static void expect_err(struct fx *f, const char *path, int code, int line)
{
	berth_error_freep(&f->err);
	int r = path_check_no_escape(f->rootfd, path, &f->err);
	if (r != -code)
		fail_msg("line %d: %s: expected %d, got %d", line, path, -code, r);
	if (!f->err || f->err->code != code)
		fail_msg("line %d: %s: no error object with code %d", line, path, code);
	if (!strstr(f->err->msg, path))
		fail_msg("line %d: \"%s\" does not name %s", line, f->err->msg, path);
	berth_error_freep(&f->err);
}

#define OK(p) expect_ok(f, p, __LINE__)
#define ERR(p, code) expect_err(f, p, code, __LINE__)

static void test_plain_paths(void **state)
{
	struct fx *f = *state;
	OK("/");
	OK("/etc");
	OK("/etc/passwd");
	OK("/file");
	OK("/c//");
	/* the path's own ".." stops at the root, as the kernel does inside it */
	OK("/c/../../../etc");
	OK("/..");
}

static void test_relative_escape(void **state)
{
	struct fx *f = *state;
	ERR("/evil", EXDEV);
	ERR("/evil/passwd", EXDEV);
	ERR("/d1/d2/evil2", EXDEV);
	ERR("/d1/d2/evil2/deeper/still", EXDEV);
	ERR("/a/up2", EXDEV);
	ERR("/self/evil", EXDEV);
	/* the message says what is wrong */
	assert_int_equal(path_check_no_escape(f->rootfd, "/evil", &f->err), -EXDEV);
	assert_contains(f->err->msg, "outside the rootfs");
	assert_int_equal(path_check_no_escape(f->rootfd, "/evil", NULL), -EXDEV);
}

static void test_links_that_stay_inside(void **state)
{
	struct fx *f = *state;
	OK("/abs"); /* absolute: read in the container's view */
	OK("/abs/passwd");
	OK("/a/b"); /* a/b -> ../c is /c */
	OK("/a/b/file");
	OK("/abs2/x"); /* absolute to a relative one */
	OK("/a/up");   /* a/up -> .. is the root itself */
	OK("/a/up/etc");
	OK("/self/self/a/b");
}

static void test_missing_components(void **state)
{
	struct fx *f = *state;
	OK("/missing");
	OK("/missing/deeper/still");
	OK("/a/b/missing/x");
	OK("/file/below/a/file");
}

static void test_loop(void **state)
{
	struct fx *f = *state;
	ERR("/loop1", ELOOP);
	ERR("/loop2/x", ELOOP);
}

static void test_absolute_link_with_dotdot(void **state)
{
	struct fx *f = *state;
	/* "/../../etc" in the container's view is "/etc": nothing climbs out */
	int r = path_check_no_escape(f->rootfd, "/absup", &f->err);
	REGRESSION_IF(r == -EXDEV,
		     "runtime/rootfs.c path_check_no_escape: an absolute symlink whose "
		     "target starts with \"/..\" (absup -> /../../etc) is refused with EXDEV, "
		     "though absolute links are read in the container's view (= /etc)");
	assert_int_equal(r, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_plain_paths),
		T(test_relative_escape),
		T(test_links_that_stay_inside),
		T(test_missing_components),
		T(test_loop),
		T(test_absolute_link_with_dotdot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
