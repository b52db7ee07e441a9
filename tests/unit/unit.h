/* Helpers shared by the unit tests: cmocka's headers in the order it needs, an assertion on
 * substrings that prints both strings, a per-test temporary directory, and a way to record a known
 * library bug as a skip (with its reason) instead of a failure, so the suite stays usable while
 * the bug is open and passes on its own once it is fixed. */
#ifndef BERTH_TESTS_UNIT_H
#define BERTH_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#define assert_contains(haystack, needle)                                                          \
	do {                                                                                       \
		const char *h_ = (haystack);                                                       \
		const char *n_ = (needle);                                                         \
		if (!h_ || !strstr(h_, n_))                                                        \
			fail_msg("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_);        \
	} while (0)

/* A regression test for a bug that was found and fixed: the message says what came back. */
#define REGRESSION_IF(cond, ...)                                                                   \
	do {                                                                                       \
		if (cond) {                                                                        \
			print_error("regression: " __VA_ARGS__);                                   \
			print_error("\n");                                                         \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

/* A library call that must succeed: on failure the test fails with the error's message (fx is
 * the test's fixture, which keeps the error in its `err` member). */
#define MUST_OK(fx, call)                                                                               \
	do {                                                                                       \
		if ((call) < 0)                                                                    \
			fail_msg("%s: %s", #call, (fx)->err ? (fx)->err->msg : "?");               \
	} while (0)

/* For main() of a test that needs root and makes mounts: checks for root, then moves the
 * process into a private mount namespace (and the namespaces in `extra`, e.g. CLONE_NEWNET), so
 * nothing the test mounts reaches the machine. Returns 0, or prints why and returns -1. */
static inline int unit_private_namespaces(const char *test, int extra)
{
	if (geteuid() != 0) {
		fprintf(stderr, "%s needs root\n", test);
		return -1;
	}
	if (unshare(CLONE_NEWNS | extra) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		perror(test);
		return -1;
	}
	return 0;
}

/* The number of entries in a directory (without "." and ".."), or -1 when it cannot be read. */
static inline int unit_count_entries(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

struct unit_tmpdir {
	char path[64];
	int fd;
};

static inline int unit_tmpdir_create(struct unit_tmpdir *t)
{
	snprintf(t->path, sizeof(t->path), "/tmp/berth-unit-XXXXXX");
	if (!mkdtemp(t->path))
		return -errno;
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return t->fd < 0 ? -errno : 0;
}

static inline int unit_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes the directory with nftw (not with the library code under test). */
static inline void unit_tmpdir_remove(struct unit_tmpdir *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	if (t->path[0])
		(void)nftw(t->path, unit_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	t->path[0] = '\0';
}

#endif
