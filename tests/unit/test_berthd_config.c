/* cri/config.c: berthd.conf parsing, validation, defaults and dump. Every refusal names the
 * file, the line and the key. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "cri/config.h"

#include <grp.h>
#include <inttypes.h>
#include <sys/stat.h>

struct fx {
	struct unit_tmpdir tmp;
	char path[128];
	struct berthd_config c;
	struct berth_error *err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/berthd.conf", f->tmp.path);
	if (berthd_config_init(&f->c, &f->err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	berthd_config_clear(&f->c);
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static void write_conf(struct fx *f, const char *text)
{
	FILE *out = fopen(f->path, "we");
	assert_non_null(out);
	assert_true(fputs(text, out) >= 0);
	assert_int_equal(fclose(out), 0);
}

/* Loads text into a freshly initialized config; returns the result (error in f->err). */
static int load_text(struct fx *f, const char *text)
{
	berthd_config_clear(&f->c);
	berth_error_freep(&f->err);
	MUST_OK(f, berthd_config_init(&f->c, &f->err));
	write_conf(f, text);
	return berthd_config_load(&f->c, f->path, true, &f->err);
}

static void test_defaults(void **state)
{
	struct fx *f = *state;
	struct berthd_config *c = &f->c;
	assert_string_equal(c->root, "/var/lib/berth");
	assert_string_equal(c->state, "/run/berth");
	assert_null(c->socket); /* derived by finish */
	assert_null(c->socket_group);
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_false(c->log_json);
	assert_true(c->shim_path[0] == '/');
	assert_contains(c->shim_path, "/berth/berth-shim");
	assert_contains(c->berth_path, "/bin/berth");
	assert_int_equal(c->workers, 8);
	assert_int_equal(c->container_log_max_size, 10 * 1024 * 1024);
	assert_int_equal(c->container_log_max_files, 5);
	assert_string_equal(c->log_dir, "/var/log/berth");
	assert_false(c->systemd_cgroup);
	assert_string_equal(c->network, "bridge");
	assert_string_equal(c->bridge, "berth0");
	assert_string_equal(c->subnet, "10.88.0.0/16");
	assert_null(c->subnet6);
	assert_int_equal(c->mtu, 0);
	assert_string_equal(c->cni_conf_dir, "/etc/cni/net.d");
	assert_string_equal(c->cni_bin_dir, "/usr/lib/cni");
	assert_string_equal(c->registries, "/etc/berth/registries.json");
	assert_null(c->auth_file);
	assert_int_equal(c->stop_timeout, 10);
	MUST_OK(f, berthd_config_finish(c, &f->err));
	assert_string_equal(c->socket, "/run/berth/berth.sock");
	assert_string_equal(c->cgroup_parent, "berth");
	/* finish again changes nothing */
	MUST_OK(f, berthd_config_finish(c, &f->err));
	assert_string_equal(c->socket, "/run/berth/berth.sock");
}

static void test_every_key_from_file(void **state)
{
	struct fx *f = *state;
	MUST_OK(f, load_text(f, "# every key, none at its default\n"
				"root = /srv/berth\n"
				"state = /run/b2\n"
				"socket = /run/b2/api.sock\n"
				"socket_group = root\n"
				"log_level = debug\n"
				"log_format = json\n"
				"shim_path = /opt/berth/berth-shim\n"
				"workers = 3\n"
				"container_log_max_size = 1G\n"
				"container_log_max_files = 2\n"
				"log_dir = /srv/logs\n"
				"cgroup_parent = kube.slice\n"
				"cgroup_driver = systemd\n"
				"network = cni\n"
				"bridge = br-pods\n"
				"subnet = 172.30.0.0/24\n"
				"subnet6 = fd00:1::/64\n"
				"mtu = 1400\n"
				"cni_conf_dir = /etc/cni/other\n"
				"cni_bin_dir = /opt/cni/bin\n"
				"registries = /etc/berth/r.json\n"
				"auth_file = /root/auth.json\n"
				"stop_timeout = 2m\n"));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
	struct berthd_config *c = &f->c;
	assert_string_equal(c->root, "/srv/berth");
	assert_string_equal(c->state, "/run/b2");
	assert_string_equal(c->socket, "/run/b2/api.sock");
	assert_string_equal(c->socket_group, "root");
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	assert_true(c->log_json);
	assert_string_equal(c->shim_path, "/opt/berth/berth-shim");
	assert_int_equal(c->workers, 3);
	assert_true(c->container_log_max_size == 1ull << 30);
	assert_int_equal(c->container_log_max_files, 2);
	assert_string_equal(c->log_dir, "/srv/logs");
	assert_string_equal(c->cgroup_parent, "kube.slice");
	assert_true(c->systemd_cgroup);
	assert_string_equal(c->network, "cni");
	assert_string_equal(c->bridge, "br-pods");
	assert_string_equal(c->subnet, "172.30.0.0/24");
	assert_string_equal(c->subnet6, "fd00:1::/64");
	assert_int_equal(c->mtu, 1400);
	assert_string_equal(c->cni_conf_dir, "/etc/cni/other");
	assert_string_equal(c->cni_bin_dir, "/opt/cni/bin");
	assert_string_equal(c->registries, "/etc/berth/r.json");
	assert_string_equal(c->auth_file, "/root/auth.json");
	assert_int_equal(c->stop_timeout, 120);
}

/* Each bad line sits on line 3 of its file; the message starts "FILE:3: KEY: " and says what. */
static void test_errors_name_file_line_key(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *line, *key, *needle;
	} cases[] = {
		{ "root = var/lib", "root", "\"var/lib\" is not an absolute path" },
		{ "root =", "root", "a value is required" },
		{ "state = \"\"", "state", "a value is required" },
		{ "socket = relative.sock", "socket", "not an absolute path" },
		{ "socket = /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b.sock",
		  "socket", "longer than a unix socket path can be (107 bytes)" },
		{ "log_level = loud", "log_level",
		  "unknown level \"loud\" (error, warn, info, debug)" },
		{ "log_level = INFO", "log_level", "unknown level \"INFO\"" },
		{ "log_format = xml", "log_format", "unknown format \"xml\" (text, json)" },
		{ "cgroup_driver = v1", "cgroup_driver", "unknown driver \"v1\" (cgroupfs, systemd)" },
		{ "network = host", "network", "unknown network mode \"host\" (bridge, cni, none)" },
		{ "workers = 0", "workers", "0 is out of range (1 to 256)" },
		{ "workers = 257", "workers", "257 is out of range (1 to 256)" },
		{ "workers = -1", "workers", "\"-1\" is not a number" },
		{ "workers = 4x", "workers", "\"4x\" is not a number" },
		{ "workers = 99999999999999999999999", "workers", "is not a number" },
		{ "mtu = 100", "mtu", "100 is out of range (0, or 576 to 65535)" },
		{ "mtu = 65536", "mtu", "65536 is out of range (0, or 576 to 65535)" },
		{ "container_log_max_size = 10KB", "container_log_max_size",
		  "bad size \"10KB\" (bytes, or a number with K, M, G or T; also KiB, MiB, GiB, TiB)" },
		{ "container_log_max_size = 1.5M", "container_log_max_size", "bad size \"1.5M\"" },
		{ "container_log_max_size = 99999999999T", "container_log_max_size",
		  "bad size \"99999999999T\"" },
		{ "container_log_max_files = 0", "container_log_max_files",
		  "0 is out of range (1 to 1000)" },
		{ "stop_timeout = 1d", "stop_timeout", "bad duration \"1d\" (seconds, or a number with s, m, h, or ms" },
		{ "stop_timeout = 1500ms", "stop_timeout", "bad duration \"1500ms\"" },
		{ "stop_timeout = 1441m", "stop_timeout", "1441m is out of range (at most 86400s)" },
		{ "subnet = 10.88.0.0", "subnet", "\"10.88.0.0\" is not an IPv4 CIDR (address/prefix" },
		{ "subnet = 10.88.0.300/16", "subnet", "10.88.0.300 is not an IPv4 address" },
		{ "subnet = fd00::/64", "subnet", "fd00:: is not an IPv4 address" },
		{ "subnet = 10.88.0.1/16", "subnet", "\"10.88.0.1/16\" has host bits set after /16" },
		{ "subnet = 10.88.0.0/31", "subnet", "prefix /31 is out of range (1 to 30" },
		{ "subnet = 10.88.0.0/x", "subnet", "is not an IPv4 CIDR" },
		{ "subnet6 = 10.0.0.0/8", "subnet6", "10.0.0.0 is not an IPv6 address" },
		{ "subnet6 = fd00::1/64", "subnet6", "has host bits set after /64" },
		{ "subnet6 = fd00::/127", "subnet6", "prefix /127 is out of range (1 to 126" },
		{ "socket_group = no-such-group-berth", "socket_group",
		  "no group \"no-such-group-berth\" (a group name or number)" },
		{ "bridge = a-very-long-bridge-name", "bridge",
		  "\"a-very-long-bridge-name\" is not an interface name" },
		{ "bridge = br/0", "bridge", "is not an interface name" },
		{ "cgroup_parent = /abs", "cgroup_parent", "\"/abs\" is not a relative cgroup path" },
		{ "cgroup_parent = a/../b", "cgroup_parent", "is not a relative cgroup path" },
		{ "frobnicate = 1", "frobnicate", "unknown key" },
		{ "root = \"/unterminated", "root", "no closing quote" },
		{ "root = \"/a\" b", "root", "text after the closing quote: \"b\"" },
		{ "log_dir = \"/x\ty\"", "log_dir", "the value has a control character" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[512], prefix[256];
		snprintf(text, sizeof(text), "# comment\n\n%s\nworkers = 2\n", cases[i].line);
		snprintf(prefix, sizeof(prefix), "%s:3: %s: ", f->path, cases[i].key);
		if (load_text(f, text) != -EINVAL)
			fail_msg("\"%s\" was accepted", cases[i].line);
		if (strncmp(f->err->msg, prefix, strlen(prefix)) != 0)
			fail_msg("\"%s\": \"%s\" does not start with \"%s\"", cases[i].line,
				 f->err->msg, prefix);
		assert_contains(f->err->msg, cases[i].needle);
	}
	/* Lines that are not settings at all. */
	assert_int_equal(load_text(f, "root = /a\njust words\n"), -EINVAL);
	assert_contains(f->err->msg, ":2: expected \"key = value\", got \"just words\"");
	assert_int_equal(load_text(f, "= /a\n"), -EINVAL);
	assert_contains(f->err->msg, ":1: expected \"key = value\"");
	assert_int_equal(load_text(f, "Root = /a\n"), -EINVAL);
	assert_contains(f->err->msg, ":1: expected \"key = value\", got \"Root = /a\"");
}

static void test_quotes_and_comments(void **state)
{
	struct fx *f = *state;
	MUST_OK(f, load_text(f, "   # indented comment\n"
				"\t\n"
				"root = \"/srv/with space \"   # trailing comment\n"
				"state=/run/x#no space before the comment\n"
				"log_dir = \"/logs/#not a comment\"\n"
				"cni_conf_dir = \"/q/\\\"quoted\\\"/back\\\\slash\"\n"
				"cni_bin_dir = /plain\\path  \r\n"
				"registries   =   /r.json\t\n"
				"auth_file = \"\"\n"
				"subnet6 =\n"));
	assert_string_equal(f->c.root, "/srv/with space ");
	assert_string_equal(f->c.state, "/run/x");
	assert_string_equal(f->c.log_dir, "/logs/#not a comment");
	assert_string_equal(f->c.cni_conf_dir, "/q/\"quoted\"/back\\slash");
	assert_string_equal(f->c.cni_bin_dir, "/plain\\path");
	assert_string_equal(f->c.registries, "/r.json");
	assert_null(f->c.auth_file);
	assert_null(f->c.subnet6);
	/* An empty file, and one of comments only, change nothing. */
	MUST_OK(f, load_text(f, ""));
	MUST_OK(f, load_text(f, "# nothing\n# here\n"));
	assert_string_equal(f->c.root, "/var/lib/berth");
	/* A NUL byte in a line is refused. */
	FILE *out = fopen(f->path, "we");
	assert_non_null(out);
	assert_int_equal(fwrite("root = /a\0b\n", 1, 12, out), 12);
	fclose(out);
	assert_int_equal(berthd_config_load(&f->c, f->path, true, &f->err), -EINVAL);
	assert_contains(f->err->msg, ":1: a NUL byte in the line");
}

static void test_suffixes(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *text;
		uint64_t bytes;
	} sizes[] = {
		{ "0", 0 },
		{ "1024", 1024 },
		{ "7B", 7 },
		{ "1K", 1024 },
		{ "1k", 1024 },
		{ "1KiB", 1024 },
		{ "2M", 2 << 20 },
		{ "5MiB", 5 << 20 },
		{ "5mib", 5 << 20 },
		{ "3G", 3ull << 30 },
		{ "3GiB", 3ull << 30 },
		{ "1T", 1ull << 40 },
		{ "16777215T", 16777215ull << 40 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		MUST_OK(f, berthd_config_set(&f->c, "container_log_max_size", sizes[i].text, "test",
					     &f->err));
		if (f->c.container_log_max_size != sizes[i].bytes)
			fail_msg("%s gave %" PRIu64, sizes[i].text, f->c.container_log_max_size);
	}
	assert_int_equal(berthd_config_set(&f->c, "container_log_max_size", "16777216T", "x",
					   &f->err),
			 -EINVAL);
	berth_error_freep(&f->err);
	static const struct {
		const char *text;
		unsigned seconds;
	} durations[] = {
		{ "0", 0 },     { "10", 10 },     { "10s", 10 },     { "2m", 120 },
		{ "3000ms", 3 }, { "0ms", 0 },     { "86400", 86400 }, { "1440m", 86400 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(durations); i++) {
		MUST_OK(f, berthd_config_set(&f->c, "stop_timeout", durations[i].text, "test",
					     &f->err));
		if (f->c.stop_timeout != durations[i].seconds)
			fail_msg("%s gave %u", durations[i].text, f->c.stop_timeout);
	}
	assert_int_equal(berthd_config_set(&f->c, "stop_timeout", "86401", "x", &f->err), -EINVAL);
}

static void test_repeated_key(void **state)
{
	struct fx *f = *state;
	assert_int_equal(load_text(f, "root = /a\n# x\nworkers = 2\nroot = /a\n"), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s:4: root: set again (first on line 1)", f->path);
	assert_string_equal(f->err->msg, want);
	/* The command line may still set what the file set. */
	MUST_OK(f, load_text(f, "root = /a\n"));
	MUST_OK(f, berthd_config_set(&f->c, "root", "/b", "--root", &f->err));
	assert_string_equal(f->c.root, "/b");
}

static void test_missing_files(void **state)
{
	struct fx *f = *state;
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/none.conf", f->tmp.path);
	MUST_OK(f, berthd_config_load(&f->c, missing, false, &f->err));
	assert_string_equal(f->c.root, "/var/lib/berth");
	assert_int_equal(berthd_config_load(&f->c, missing, true, &f->err), -ENOENT);
	assert_contains(f->err->msg, missing);
	assert_contains(f->err->msg, "No such file or directory");
	berth_error_freep(&f->err);
	/* A directory is an error even when the file is optional. */
	assert_true(berthd_config_load(&f->c, f->tmp.path, false, &f->err) < 0);
	assert_contains(f->err->msg, f->tmp.path);
}

static void test_rotation_pair(void **state)
{
	struct fx *f = *state;
	/* One old file cannot rotate; the line named is the later of the pair. */
	assert_int_equal(load_text(f, "container_log_max_files = 1\n"), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s:1: container_log_max_files: container_log_max_files = 1 "
				     "is too few to rotate",
		 f->path);
	assert_contains(f->err->msg, want);
	assert_int_equal(load_text(f, "container_log_max_files = 1\n\ncontainer_log_max_size = 5M\n"),
			 -EINVAL);
	snprintf(want, sizeof(want), "%s:3: container_log_max_size: ", f->path);
	assert_contains(f->err->msg, want);
	/* Never rotating needs no old files, in either order. */
	MUST_OK(f, load_text(f, "container_log_max_files = 1\ncontainer_log_max_size = 0\n"));
	MUST_OK(f, load_text(f, "container_log_max_size = 0\ncontainer_log_max_files = 1\n"));
	/* The command line's change is caught by finish. */
	MUST_OK(f, berthd_config_set(&f->c, "container_log_max_size", "1M", "--x", &f->err));
	assert_int_equal(berthd_config_finish(&f->c, &f->err), -EINVAL);
	assert_contains(f->err->msg, "container_log_max_files: container_log_max_files = 1 is too "
				     "few to rotate at container_log_max_size = 1048576");
}

static void test_set_and_finish(void **state)
{
	struct fx *f = *state;
	/* where names the source. */
	assert_int_equal(berthd_config_set(&f->c, "root", "rel", "--root", &f->err), -EINVAL);
	assert_string_equal(f->err->msg, "--root: root: \"rel\" is not an absolute path");
	berth_error_freep(&f->err);
	assert_int_equal(berthd_config_set(&f->c, "nokey", "1", "--x", &f->err), -EINVAL);
	assert_string_equal(f->err->msg, "--x: nokey: unknown key");
	berth_error_freep(&f->err);
	assert_int_equal(berthd_config_set(&f->c, "workers", "0", NULL, &f->err), -EINVAL);
	assert_string_equal(f->err->msg, "workers: 0 is out of range (1 to 256)");
	berth_error_freep(&f->err);
	/* A refused value leaves the old one. */
	assert_int_equal(f->c.workers, 8);
	assert_string_equal(f->c.root, "/var/lib/berth");
	/* socket follows a later state change; a set socket stays. */
	MUST_OK(f, berthd_config_set(&f->c, "state", "/run/other", "--state", &f->err));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
	assert_string_equal(f->c.socket, "/run/other/berth.sock");
	MUST_OK(f, berthd_config_set(&f->c, "socket", "/tmp/s.sock", "--socket", &f->err));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
	assert_string_equal(f->c.socket, "/tmp/s.sock");
	/* A state too long for a derived socket path. */
	char longstate[128];
	memset(longstate, 'a', sizeof(longstate) - 1);
	longstate[0] = '/';
	longstate[sizeof(longstate) - 1] = '\0';
	MUST_OK(f, load_text(f, ""));
	MUST_OK(f, berthd_config_set(&f->c, "state", longstate, "--state", &f->err));
	assert_int_equal(berthd_config_finish(&f->c, &f->err), -EINVAL);
	assert_contains(f->err->msg, "socket: ");
	assert_contains(f->err->msg, "longer than a unix socket path can be");
	/* The systemd driver: slice names, berth.slice by default. */
	MUST_OK(f, load_text(f, "cgroup_driver = systemd\n"));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
	assert_string_equal(f->c.cgroup_parent, "berth.slice");
	MUST_OK(f, load_text(f, "cgroup_driver = systemd\ncgroup_parent = pods\n"));
	assert_int_equal(berthd_config_finish(&f->c, &f->err), -EINVAL);
	assert_contains(f->err->msg, "cgroup_parent: \"pods\" is not a slice name");
	MUST_OK(f, load_text(f, "cgroup_parent = pods/berth\n"));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
	assert_string_equal(f->c.cgroup_parent, "pods/berth");
	/* The bridge needs an address family; other modes do not. */
	MUST_OK(f, load_text(f, "subnet =\n"));
	assert_int_equal(berthd_config_finish(&f->c, &f->err), -EINVAL);
	assert_contains(f->err->msg, "subnet: network = bridge needs subnet or subnet6");
	MUST_OK(f, load_text(f, "subnet =\nsubnet6 = fd88::/64\n"));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
	MUST_OK(f, load_text(f, "subnet =\nnetwork = none\n"));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
}

static void test_socket_group(void **state)
{
	struct fx *f = *state;
	struct group *g = getgrgid(0);
	assert_non_null(g);
	MUST_OK(f, berthd_config_set(&f->c, "socket_group", g->gr_name, NULL, &f->err));
	assert_string_equal(f->c.socket_group, g->gr_name);
	MUST_OK(f, berthd_config_set(&f->c, "socket_group", "12345", NULL, &f->err));
	assert_string_equal(f->c.socket_group, "12345");
	MUST_OK(f, berthd_config_set(&f->c, "socket_group", "", NULL, &f->err));
	assert_null(f->c.socket_group);
	assert_int_equal(berthd_config_set(&f->c, "socket_group", "4294967295", NULL, &f->err),
			 -EINVAL);
	assert_contains(f->err->msg, "group id 4294967295 is out of range");
}

/* Every key appears in the dump once, as `key = ...`. */
static void assert_dump_has_every_key(const char *dump)
{
	size_t n = 0;
	for (const char *const *k = berthd_config_keys; *k; k++, n++) {
		char want[128];
		snprintf(want, sizeof(want), "\n%s = ", *k);
		bool first = strncmp(dump, want + 1, strlen(want) - 1) == 0;
		if (!first && !strstr(dump, want))
			fail_msg("%s is missing from the dump", *k);
	}
	assert_int_equal(n, 36);
	size_t lines = 0;
	for (const char *p = dump; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, n);
}

static void test_dump_load_round_trip(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *defaults = NULL, *first = NULL, *second = NULL;
	MUST_OK(f, berthd_config_dump(&f->c, &defaults));
	assert_dump_has_every_key(defaults);
	assert_contains(defaults, "socket = \"\"\n");
	assert_contains(defaults, "container_log_max_size = 10M\n");
	assert_contains(defaults, "stop_timeout = 10s\n");
	/* Defaults survive a round trip unchanged. */
	MUST_OK(f, load_text(f, defaults));
	MUST_OK(f, berthd_config_dump(&f->c, &first));
	assert_string_equal(first, defaults);
	free(first);
	first = NULL;
	/* Values that need quoting, odd sizes, every key away from its default. */
	MUST_OK(f, load_text(f, "root = \"/lead and trail \"\n"
				"state = \"/run/has#hash\"\n"
				"socket = \"/run/q\\\"uote\"\n"
				"socket_group = 0\n"
				"log_level = warn\n"
				"log_format = json\n"
				"shim_path = /x\\y\n"
				"workers = 256\n"
				"container_log_max_size = 1536K\n"
				"container_log_max_files = 1000\n"
				"log_dir = /l\n"
				"cgroup_parent = a.slice\n"
				"cgroup_driver = systemd\n"
				"network = none\n"
				"bridge = b\n"
				"subnet =\n"
				"subnet6 = fd88::/120\n"
				"mtu = 576\n"
				"cni_conf_dir = /c\n"
				"cni_bin_dir = /d\n"
				"registries = /e\n"
				"auth_file = /f\n"
				"stop_timeout = 7\n"));
	MUST_OK(f, berthd_config_finish(&f->c, &f->err));
	assert_string_equal(f->c.root, "/lead and trail ");
	MUST_OK(f, berthd_config_dump(&f->c, &first));
	assert_dump_has_every_key(first);
	assert_contains(first, "container_log_max_size = 1536K\n");
	assert_contains(first, "socket = \"/run/q\\\"uote\"\n");
	MUST_OK(f, load_text(f, first));
	MUST_OK(f, berthd_config_dump(&f->c, &second));
	assert_string_equal(second, first);
	assert_string_equal(f->c.root, "/lead and trail ");
	assert_string_equal(f->c.state, "/run/has#hash");
	assert_string_equal(f->c.socket, "/run/q\"uote");
	assert_null(f->c.subnet);
}

/* The text of key's entry in the man page: from its ".BI key" or ".BR key" line to the next
 * entry or section. */
static char *man_entry(const char *man, const char *key)
{
	char bi[64], br[64];
	snprintf(bi, sizeof(bi), "\n.BI %s \"", key);
	snprintf(br, sizeof(br), "\n.BR %s \"", key);
	const char *start = strstr(man, bi);
	if (!start)
		start = strstr(man, br);
	if (!start)
		return NULL;
	start++;
	const char *end = start + strcspn(start, "\n");
	while (*end && strncmp(end, "\n.TP", 4) != 0 && strncmp(end, "\n.SS", 4) != 0 &&
	       strncmp(end, "\n.SH", 4) != 0)
		end++;
	return strndup(start, (size_t)(end - start));
}

/* Every key the parser knows has an entry in berthd.conf(5), and the entry gives the default
 * that berthd_config_init really uses (in roff, '-' is written "\-"). */
static void test_man_page(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *man = NULL, *dump = NULL;
	int fd = open(BERTHD_CONF_MAN, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	man = calloc(1, 1 << 20);
	assert_non_null(man);
	assert_true(read(fd, man, (1 << 20) - 1) > 0);
	close(fd);
	MUST_OK(f, berthd_config_dump(&f->c, &dump));
	for (const char *const *k = berthd_config_keys; *k; k++) {
		_cleanup_free_ char *entry = man_entry(man, *k);
		if (!entry)
			fail_msg("%s: no entry in %s", *k, BERTHD_CONF_MAN);
		const char *def = strstr(entry, "Default:");
		if (!def)
			fail_msg("%s: the man page gives no default", *k);
		/* The dumped default, unless derived (empty) or build-dependent (the paths). */
		char want[128], line[128];
		snprintf(line, sizeof(line), "\n%s = ", *k);
		const char *v = strstr(dump, line) ? strstr(dump, line) + strlen(line)
						   : dump + strlen(*k) + 3;
		size_t n = 0;
		for (; *v && *v != '\n' && n + 2 < sizeof(want); v++) {
			if (*v == '-')
				want[n++] = '\\';
			want[n++] = *v;
		}
		want[n] = '\0';
		if (strcmp(want, "\"\"") == 0 || strcmp(*k, "shim_path") == 0 ||
		    strcmp(*k, "berth_path") == 0)
			continue;
		if (!strstr(def, want))
			fail_msg("%s: the man page's default is not %s:\n%s", *k, want, entry);
	}
}

/* The default file meson installs (tools/berthd.conf) shows every key, commented out, with the
 * default the parser really uses; loading it changes nothing. */
static void test_shipped_file(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *text = NULL, *dump = NULL, *after = NULL;
	struct berth_error *e = NULL;
	assert_int_equal(read_file_at(AT_FDCWD, BERTHD_CONF_SAMPLE, &text, NULL, &e), 0);
	MUST_OK(f, berthd_config_dump(&f->c, &dump));
	MUST_OK(f, berthd_config_load(&f->c, BERTHD_CONF_SAMPLE, true, &f->err));
	MUST_OK(f, berthd_config_dump(&f->c, &after));
	assert_string_equal(dump, after);
	for (const char *const *k = berthd_config_keys; *k; k++) {
		char key[96];
		snprintf(key, sizeof(key), "\n%s = ", *k);
		const char *want = strstr(dump, key) ? strstr(dump, key) + 1 : dump;
		size_t len = strcspn(want, "\n");
		snprintf(key, sizeof(key), "\n#%.*s\n", (int)len, want);
		if (strcmp(*k, "shim_path") != 0 && strcmp(*k, "berth_path") != 0 && !strstr(text, key))
			fail_msg("%s: %s does not show \"#%.*s\"", *k, BERTHD_CONF_SAMPLE, (int)len,
				 want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_key_from_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_name_file_line_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quotes_and_comments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suffixes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeated_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_pair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_and_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dump_load_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_man_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shipped_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
