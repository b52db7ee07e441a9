/* netns/ipam.c: allocation order, exhaustion, rotation, crash survival and concurrency of the
 * file-based address reservations, in a per-test temporary state directory (no root needed). */
#include "unit.h"

#include "base/cleanup.h"
#include "netns/ipam-internal.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

struct fx {
	struct unit_tmpdir tmp;
	struct ipam *m;
	struct berth_error *err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ipam_free(f->m);
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static void open_subnet(struct fx *f, const char *subnet)
{
	ipam_free(f->m);
	f->m = NULL;
	MUST_OK(f, ipam_open(f->tmp.path, "net", subnet, &f->m, &f->err));
}

/* Opens subnet and checks what the handle reports of it. */
static void open_checked(struct fx *f, const char *subnet, int family, unsigned prefix,
			 const char *gateway)
{
	open_subnet(f, subnet);
	assert_int_equal(ipam_family(f->m), family);
	assert_int_equal(ipam_prefix_len(f->m), prefix);
	assert_string_equal(ipam_gateway(f->m), gateway);
}

static void expect_alloc(struct fx *f, const char *pod, const char *want)
{
	char ip[INET6_ADDRSTRLEN];
	MUST_OK(f, ipam_allocate(f->m, pod, ip, &f->err));
	assert_string_equal(ip, want);
}

static void expect_full(struct fx *f, const char *pod, const char *subnet)
{
	char ip[INET6_ADDRSTRLEN];
	assert_int_equal(ipam_allocate(f->m, pod, ip, &f->err), -ENOSPC);
	assert_contains(f->err->msg, subnet);
	f->err = berth_error_free(f->err);
}

static void test_order_skips_network_and_gateway(void **state)
{
	struct fx *f = *state;
	open_checked(f, "10.88.0.0/16", AF_INET, 16, "10.88.0.1");
	expect_alloc(f, "a", "10.88.0.2");
	expect_alloc(f, "b", "10.88.0.3");
	expect_alloc(f, "c", "10.88.0.4");
	assert_int_equal(ipam_count(f->m, &f->err), 3);
}

static void test_slash30_one_address_then_enospc(void **state)
{
	struct fx *f = *state;
	open_checked(f, "192.168.7.4/30", AF_INET, 30, "192.168.7.5");
	expect_alloc(f, "only", "192.168.7.6"); /* .4 network, .5 gateway, .7 broadcast */
	expect_full(f, "second", "192.168.7.4/30");
	assert_int_equal(ipam_count(f->m, &f->err), 1);
}

static void test_same_pod_same_address(void **state)
{
	struct fx *f = *state;
	open_subnet(f, "10.1.0.0/24");
	expect_alloc(f, "pod-a", "10.1.0.2");
	expect_alloc(f, "pod-b", "10.1.0.3");
	expect_alloc(f, "pod-a", "10.1.0.2");
	/* also through another handle, as another process would see it */
	open_subnet(f, "10.1.0.0/24");
	expect_alloc(f, "pod-b", "10.1.0.3");
	assert_int_equal(ipam_count(f->m, &f->err), 2);
}

static void test_release_rotates_before_reuse(void **state)
{
	struct fx *f = *state;
	open_subnet(f, "10.2.0.0/29"); /* pods get .2 to .6 */
	expect_alloc(f, "p1", "10.2.0.2");
	expect_alloc(f, "p2", "10.2.0.3");
	expect_alloc(f, "p3", "10.2.0.4");
	MUST_OK(f, ipam_release(f->m, "p1", &f->err));
	MUST_OK(f, ipam_release(f->m, "p1", &f->err)); /* nothing left: not an error */
	assert_int_equal(ipam_count(f->m, &f->err), 2);
	expect_alloc(f, "p4", "10.2.0.5"); /* not the just-released .2 */
	expect_alloc(f, "p5", "10.2.0.6");
	expect_alloc(f, "p6", "10.2.0.2"); /* wrapped around: now reused */
	expect_full(f, "p7", "10.2.0.0/29");
	MUST_OK(f, ipam_release(f->m, "p3", &f->err));
	expect_alloc(f, "p7", "10.2.0.4");
}

static void test_ipv6(void **state)
{
	struct fx *f = *state;
	open_checked(f, "fd88::/64", AF_INET6, 64, "fd88::1");
	expect_alloc(f, "a", "fd88::2");
	expect_alloc(f, "b", "fd88::3");
	expect_alloc(f, "a", "fd88::2");
	MUST_OK(f, ipam_release(f->m, "a", &f->err));
	expect_alloc(f, "c", "fd88::4");

	/* a /126 has two addresses for pods: IPv6 has no broadcast address */
	ipam_free(f->m);
	f->m = NULL;
	MUST_OK(f, ipam_open(f->tmp.path, "small6", "fd00:1:2:3::/126", &f->m, &f->err));
	expect_alloc(f, "x", "fd00:1:2:3::2");
	expect_alloc(f, "y", "fd00:1:2:3::3");
	expect_full(f, "z", "fd00:1:2:3::/126");
}

static void test_ipv6_window_wraps(void **state)
{
	struct fx *f = *state;
	open_subnet(f, "fd00::/112");
	/* "last" near the end of the range: the next addresses are the range's end, then its start
	 */
	int fd = openat(f->tmp.fd, "ipam/net/last", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "fd00::fffe", 10), 10);
	close(fd);
	expect_alloc(f, "a", "fd00::ffff");
	expect_alloc(f, "b", "fd00::2");
}

static void test_bad_subnets_refused(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *subnet, *msg;
	} bad[] = {
		{ "10.88.0.1/16", "host bits set (the network is 10.88.0.0/16)" },
		{ "fd88::5/64", "host bits set (the network is fd88::/64)" },
		{ "10.0.0.0/31", "prefix longer than /30" },
		{ "10.0.0.0/32", "prefix longer than /30" },
		{ "fd00::/127", "prefix longer than /126" },
		{ "10.0.0.0/33", "prefix longer than /30" },
		{ "10.0.0.0", "not address/prefix" },
		{ "10.0.0.0/", "invalid prefix length" },
		{ "10.0.0.0/016", "invalid prefix length" },
		{ "10.0.0.0/+8", "invalid prefix length" },
		{ "10.0.0.0/8 ", "invalid prefix length" },
		{ "10.0.0.256/24", "invalid address" },
		{ "banana/24", "invalid address" },
		{ "", "not address/prefix" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct ipam *m = NULL;
		assert_int_equal(ipam_open(f->tmp.path, "net", bad[i].subnet, &m, &f->err),
				 -EINVAL);
		assert_null(m);
		assert_contains(f->err->msg, bad[i].msg);
		char quoted[64];
		snprintf(quoted, sizeof(quoted), "\"%s\"", bad[i].subnet);
		assert_contains(f->err->msg, quoted);
		f->err = berth_error_free(f->err);
	}
	struct ipam *m = NULL;
	assert_int_equal(ipam_open(f->tmp.path, "../x", "10.0.0.0/8", &m, &f->err), -EINVAL);
	assert_contains(f->err->msg, "../x");
}

static void test_bad_pod_id_refused(void **state)
{
	struct fx *f = *state;
	char ip[INET6_ADDRSTRLEN];
	open_subnet(f, "10.3.0.0/24");
	assert_int_equal(ipam_allocate(f->m, "", ip, &f->err), -EINVAL);
	f->err = berth_error_free(f->err);
	assert_int_equal(ipam_allocate(f->m, "a\nb", ip, &f->err), -EINVAL);
}

/* Each child allocates n addresses for its own pods and writes them to a pipe. */
static void allocate_in_child(const char *dir, const char *prefix, int n, int out)
{
	struct ipam *m = NULL;
	if (ipam_open(dir, "net", "10.4.0.0/24", &m, NULL) < 0)
		_exit(2);
	for (int i = 0; i < n; i++) {
		char pod[32], ip[INET6_ADDRSTRLEN + 1];
		snprintf(pod, sizeof(pod), "%s-%d", prefix, i);
		if (ipam_allocate(m, pod, ip, NULL) < 0)
			_exit(3);
		size_t len = strlen(ip);
		ip[len] = '\n';
		if (write(out, ip, len + 1) != (ssize_t)len + 1)
			_exit(4);
	}
	ipam_free(m);
	_exit(0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Two processes allocate PER_CHILD addresses each, for pods named by prefixes[k]; returns their
 * output, one address per line, child 0's first. */
enum { PER_CHILD = 100 };
static void run_two_allocators(struct fx *f, const char *const prefixes[2], char *buf, size_t cap)
{
	int p[2][2];
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		assert_int_equal(pipe(p[k]), 0);
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			close(p[k][0]);
			allocate_in_child(f->tmp.path, prefixes[k], PER_CHILD, p[k][1]);
		}
		close(p[k][1]);
	}
	size_t len = 0;
	for (int k = 0; k < 2; k++) {
		ssize_t n;
		while ((n = read(p[k][0], buf + len, cap - 1 - len)) > 0)
			len += (size_t)n;
		close(p[k][0]);
		int status;
		assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	buf[len] = '\0';
}

static size_t split_lines(char *buf, char **lines, size_t cap)
{
	size_t count = 0;
	for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t;
	     t = strtok_r(NULL, "\n", &save)) {
		assert_true(count < cap);
		lines[count++] = t;
	}
	return count;
}

static void test_concurrent_allocators_never_share(void **state)
{
	struct fx *f = *state;
	static const char *const prefixes[2] = { "left", "right" };
	static char buf[2 * PER_CHILD * (INET6_ADDRSTRLEN + 1)];
	char *ips[2 * PER_CHILD];
	run_two_allocators(f, prefixes, buf, sizeof(buf));
	size_t count = split_lines(buf, ips, ARRAY_SIZE(ips));
	assert_int_equal(count, 2 * PER_CHILD);
	qsort(ips, count, sizeof(ips[0]), cmp_str);
	for (size_t i = 1; i < count; i++)
		if (strcmp(ips[i - 1], ips[i]) == 0)
			fail_msg("address %s given twice", ips[i]);
	open_subnet(f, "10.4.0.0/24");
	assert_int_equal(ipam_count(f->m, &f->err), 2 * PER_CHILD);
}

/* The same pods from two processes at once (a retried create racing the first): the lock makes
 * "find the pod's reservation, else make one" atomic, so each pod gets one address. */
static void test_concurrent_same_pod_one_address(void **state)
{
	struct fx *f = *state;
	static const char *const prefixes[2] = { "pod", "pod" };
	static char buf[2 * PER_CHILD * (INET6_ADDRSTRLEN + 1)];
	char *ips[2 * PER_CHILD];
	run_two_allocators(f, prefixes, buf, sizeof(buf));
	assert_int_equal(split_lines(buf, ips, ARRAY_SIZE(ips)), 2 * PER_CHILD);
	for (size_t i = 0; i < PER_CHILD; i++)
		if (strcmp(ips[i], ips[PER_CHILD + i]) != 0)
			fail_msg("pod-%zu got %s and %s", i, ips[i], ips[PER_CHILD + i]);
	open_subnet(f, "10.4.0.0/24");
	assert_int_equal(ipam_count(f->m, &f->err), PER_CHILD);
}

static void test_reservation_survives_killed_allocator(void **state)
{
	struct fx *f = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ipam *m = NULL;
		char ip[INET6_ADDRSTRLEN];
		if (ipam_open(f->tmp.path, "net", "10.5.0.0/24", &m, NULL) < 0 ||
		    ipam_allocate(m, "doomed", ip, NULL) < 0 || write(p[1], ip, strlen(ip)) < 0)
			_exit(1);
		raise(SIGKILL); /* no release, no free */
		_exit(2);
	}
	close(p[1]);
	char got[INET6_ADDRSTRLEN + 1] = "";
	assert_true(read(p[0], got, sizeof(got) - 1) > 0);
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_string_equal(got, "10.5.0.2");

	open_subnet(f, "10.5.0.0/24");
	assert_int_equal(ipam_count(f->m, &f->err), 1);
	expect_alloc(f, "other", "10.5.0.3"); /* the dead allocator's address stays taken */
	expect_alloc(f, "doomed", "10.5.0.2"); /* and is found by its pod id */
	MUST_OK(f, ipam_release(f->m, "doomed", &f->err));
	assert_int_equal(ipam_count(f->m, &f->err), 1);
}

static void test_empty_reservation_reclaimed(void **state)
{
	struct fx *f = *state;
	open_subnet(f, "10.6.0.0/30");
	/* an allocator killed between its O_EXCL create and its write left the file empty */
	int fd = openat(f->tmp.fd, "ipam/net/10.6.0.2", O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ipam_count(f->m, &f->err), 1);
	expect_alloc(f, "next", "10.6.0.2");
	assert_int_equal(ipam_count(f->m, &f->err), 1);
}

static void test_files_on_disk(void **state)
{
	struct fx *f = *state;
	open_subnet(f, "10.7.0.0/24");
	expect_alloc(f, "pod-x", "10.7.0.2");
	char buf[64] = "";
	int fd = openat(f->tmp.fd, "ipam/net/10.7.0.2", O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_string_equal(buf, "pod-x");
	struct stat st;
	assert_int_equal(fstatat(f->tmp.fd, "ipam/net/lock", &st, 0), 0);
	assert_int_equal(fstatat(f->tmp.fd, "ipam/net/last", &st, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_skips_network_and_gateway, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slash30_one_address_then_enospc, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_same_pod_same_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_rotates_before_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_window_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_subnets_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_pod_id_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_allocators_never_share, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_same_pod_one_address, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reservation_survives_killed_allocator, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_empty_reservation_reclaimed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_on_disk, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
