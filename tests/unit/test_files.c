/* netns/files.c: a pod's hosts, hostname and resolv.conf, byte for byte. The cases that read the
 * host's /etc/hosts and /etc/resolv.conf bind-mount the test's own versions over them in a
 * private mount namespace (root only; skipped otherwise). */
#include "unit.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "netns/files-internal.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define LOCALHOST                                                                                  \
	"127.0.0.1\tlocalhost\n"                                                                   \
	"::1\tlocalhost ip6-localhost ip6-loopback\n"                                              \
	"fe00::0\tip6-localnet\n"                                                                  \
	"ff00::0\tip6-mcastprefix\n"                                                               \
	"ff02::1\tip6-allnodes\n"                                                                  \
	"ff02::2\tip6-allrouters\n"

static bool private_mounts; /* main() could make a private mount namespace */

struct fx {
	struct unit_tmpdir tmp;
	struct berth_error *err;
	char fake_etc[96]; /* files mounted over the host's */
	const char *mounted[2];
	size_t n_mounted;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	snprintf(f->fake_etc, sizeof(f->fake_etc), "%s/etc", f->tmp.path);
	if (mkdir(f->fake_etc, 0755) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	while (f->n_mounted > 0)
		assert_int_equal(umount2(f->mounted[--f->n_mounted], MNT_DETACH), 0);
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static void assert_file(struct fx *f, const char *name, const char *want)
{
	_cleanup_free_ char *got = NULL;
	MUST_OK(f, read_file_at(f->tmp.fd, name, &got, NULL, &f->err));
	assert_string_equal(got, want);
	struct stat st;
	assert_int_equal(fstatat(f->tmp.fd, name, &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
}

/* Replaces the host's /etc/<name> (in this test's mount namespace) with content. */
static void fake_host_file(struct fx *f, const char *name, const char *content)
{
	char src[160];
	const char *target = strcmp(name, "hosts") == 0 ? "/etc/hosts" : "/etc/resolv.conf";
	snprintf(src, sizeof(src), "%s/%s", f->fake_etc, name);
	FILE *fp = fopen(src, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	assert_int_equal(mount(src, target, NULL, MS_BIND, NULL), 0);
	f->mounted[f->n_mounted++] = target;
}

static bool can_fake_host_files(void)
{
	if (!private_mounts)
		print_message("skipped: needs root for a private mount namespace\n");
	else if (access("/etc/hosts", F_OK) < 0 || access("/etc/resolv.conf", F_OK) < 0)
		print_message(
			"skipped: the host has no /etc/hosts or /etc/resolv.conf to mount over\n");
	else
		return true;
	return false;
}

static void test_pod_files_with_dns(void **state)
{
	struct fx *f = *state;
	const char *servers[] = { "10.96.0.10", "fd00::10", NULL };
	const char *searches[] = { "default.svc.cluster.local", "svc.cluster.local", NULL };
	const char *options[] = { "ndots:5", "edns0", NULL };
	struct pod_dns dns = { .servers = servers, .searches = searches, .options = options };
	MUST_OK(f,
		pod_files_write(f->tmp.fd, "web-0", "10.88.0.5", "fd88::5", &dns, false, &f->err));
	assert_file(f, "hosts", LOCALHOST "10.88.0.5\tweb-0\nfd88::5\tweb-0\n");
	assert_file(f, "hostname", "web-0\n");
	assert_file(f, "resolv.conf",
		    "nameserver 10.96.0.10\n"
		    "nameserver fd00::10\n"
		    "search default.svc.cluster.local svc.cluster.local\n"
		    "options ndots:5 edns0\n");
}

static void test_pod_files_partial(void **state)
{
	struct fx *f = *state;
	/* empty lists write no line of their kind; a loopback server the user asked for stays */
	const char *servers[] = { "127.0.0.1", NULL };
	const char *none[] = { NULL };
	struct pod_dns dns = { .servers = servers, .searches = none, .options = NULL };
	MUST_OK(f, pod_files_write(f->tmp.fd, "solo", "10.88.0.7", NULL, &dns, false, &f->err));
	assert_file(f, "hosts", LOCALHOST "10.88.0.7\tsolo\n");
	assert_file(f, "resolv.conf", "nameserver 127.0.0.1\n");

	struct pod_dns empty = { 0 };
	MUST_OK(f, pod_files_write(f->tmp.fd, "v6only", NULL, "fd88::9", &empty, false, &f->err));
	assert_file(f, "hosts", LOCALHOST "fd88::9\tv6only\n");
	assert_file(f, "hostname", "v6only\n");
	assert_file(f, "resolv.conf", "");

	MUST_OK(f, pod_files_write(f->tmp.fd, "noaddr", NULL, "", &empty, false, &f->err));
	assert_file(f, "hosts", LOCALHOST);
}

static void test_pod_files_host_resolv_drops_loopback(void **state)
{
	struct fx *f = *state;
	if (!can_fake_host_files())
		skip();
	fake_host_file(f, "resolv.conf",
		       "# generated\n"
		       "nameserver 127.0.0.53\n"
		       "nameserver 192.0.2.1\n"
		       "  nameserver\t::1\n"
		       "nameserver ::ffff:127.0.0.1\n"
		       "nameserver fe80::1%eth0\n"
		       "nameserver ::1%lo\n"
		       "nameserver127.0.0.1\n"
		       "search example.org\n"
		       "options edns0");
	MUST_OK(f, pod_files_write(f->tmp.fd, "pod", "10.88.0.2", NULL, NULL, false, &f->err));
	assert_file(f, "resolv.conf",
		    "# generated\n"
		    "nameserver 192.0.2.1\n"
		    "nameserver fe80::1%eth0\n"
		    "nameserver127.0.0.1\n"
		    "search example.org\n"
		    "options edns0\n");
}

static void test_host_network_keeps_host_files(void **state)
{
	struct fx *f = *state;
	if (!can_fake_host_files())
		skip();
	const char *resolv = "nameserver 127.0.0.53\nsearch lan\n";
	const char *hosts = "127.0.0.1 localhost\n192.0.2.7 node-a\n";
	fake_host_file(f, "resolv.conf", resolv);
	fake_host_file(f, "hosts", hosts);
	MUST_OK(f, pod_files_write(f->tmp.fd, "node-a", NULL, NULL, NULL, true, &f->err));
	assert_file(f, "resolv.conf", resolv);
	assert_file(f, "hosts", hosts);
	assert_file(f, "hostname", "node-a\n");

	/* given dns wins over the host's file in host mode too */
	const char *servers[] = { "192.0.2.53", NULL };
	struct pod_dns dns = { .servers = servers };
	MUST_OK(f, pod_files_write(f->tmp.fd, "node-a", NULL, NULL, &dns, true, &f->err));
	assert_file(f, "resolv.conf", "nameserver 192.0.2.53\n");
}

static void test_pod_files_only_loopback_left_empty(void **state)
{
	struct fx *f = *state;
	if (!can_fake_host_files())
		skip();
	fake_host_file(f, "resolv.conf", "nameserver 127.0.0.53\noptions trust-ad\n");
	MUST_OK(f, pod_files_write(f->tmp.fd, "pod", NULL, NULL, NULL, false, &f->err));
	assert_file(f, "resolv.conf", "options trust-ad\n");
}

/* Calls pod_files_write with dns and expects EINVAL naming field; nothing is written. */
static void expect_refused(struct fx *f, const char *hostname, const char *ip4,
			   const struct pod_dns *dns, const char *field)
{
	assert_int_equal(pod_files_write(f->tmp.fd, hostname, ip4, NULL, dns, false, &f->err),
			 -EINVAL);
	assert_non_null(f->err);
	if (strncmp(f->err->msg, field, strlen(field)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", f->err->msg, field);
	f->err = berth_error_free(f->err);
	assert_int_equal(faccessat(f->tmp.fd, "hosts", F_OK, 0), -1);
	assert_int_equal(faccessat(f->tmp.fd, "resolv.conf", F_OK, 0), -1);
}

static void test_pod_files_refuse_bad_values(void **state)
{
	struct fx *f = *state;
	const char *bad_server[] = { "10.0.0.1", "dns.example", NULL };
	const char *space_search[] = { "a.example", "b example", NULL };
	const char *hash_option[] = { "ndots:2", "edns0", "rotate#x", NULL };
	const char *empty_search[] = { "", NULL };
	const char *newline_option[] = { "ndots:1\nnameserver 1.1.1.1", NULL };
	struct pod_dns d1 = { .servers = bad_server };
	struct pod_dns d2 = { .searches = space_search };
	struct pod_dns d3 = { .options = hash_option };
	struct pod_dns d4 = { .searches = empty_search };
	struct pod_dns d5 = { .options = newline_option };
	expect_refused(f, "pod", NULL, &d1, "dns.servers[1]:");
	expect_refused(f, "pod", NULL, &d2, "dns.searches[1]:");
	expect_refused(f, "pod", NULL, &d3, "dns.options[2]:");
	expect_refused(f, "pod", NULL, &d4, "dns.searches[0]:");
	expect_refused(f, "pod", NULL, &d5, "dns.options[0]:");
	expect_refused(f, "pod", "10.88.0.300", NULL, "ip4:");
	expect_refused(f, "pod", "fd88::1", NULL, "ip4:");
	expect_refused(f, "two words", NULL, NULL, "hostname:");
	expect_refused(f, NULL, NULL, NULL, "hostname:");
	expect_refused(f, "a123456789b123456789c123456789d123456789e123456789f123456789g12345",
		       NULL, NULL, "hostname:");
	assert_int_equal(pod_files_write(f->tmp.fd, "pod", NULL, "10.0.0.1", NULL, false, &f->err),
			 -EINVAL);
	assert_contains(f->err->msg, "ip6:");
}

int main(void)
{
	/* the host's files are replaced only in this process's own mount namespace */
	private_mounts = geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
			 mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_pod_files_with_dns),
		T(test_pod_files_partial),
		T(test_pod_files_host_resolv_drops_loopback),
		T(test_host_network_keeps_host_files),
		T(test_pod_files_only_loopback_left_empty),
		T(test_pod_files_refuse_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
