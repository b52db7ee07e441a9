/* berth info and berth version: what berthd says about itself, for people or (--format json)
 * for programs. */
#include "tools/berth-cmd.h"

#include "base/cleanup.h"
#include "tools/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static const char *str_or(const struct json *j, const char *key, const char *dflt)
{
	const char *s = bjson_string(bjson_object_get(j, key));
	return s ? s : dflt;
}

static void print_words(const char *label, const struct json *arr)
{
	printf(" %s:", label);
	for (size_t k = 0; k < bjson_array_size(arr); k++)
		printf(" %s", bjson_string(bjson_array_get(arr, k)));
	printf("%s\n", bjson_array_size(arr) ? "" : " (none)");
}

static void print_usage(const char *label, const struct json *u)
{
	uint64_t bytes = 0, inodes = 0;
	char size[24];
	bjson_uint64(bjson_object_get(u, "bytes"), &bytes);
	bjson_uint64(bjson_object_get(u, "inodes"), &inodes);
	printf(" %s: %s, %" PRIu64 " inodes (%s)\n", label, berth_cmd_size(bytes, size), inodes,
	       str_or(u, "mountpoint", "-"));
}

/* The configuration's `key = value` lines, indented. */
static void print_config(const char *text)
{
	while (text && *text) {
		const char *nl = strchrnul(text, '\n');
		printf(" %.*s\n", (int)(nl - text), text);
		text = *nl ? nl + 1 : nl;
	}
}

static void print_info(const struct json *a)
{
	const struct json *cg = bjson_object_get(a, "cgroup"), *st = bjson_object_get(a, "storage"),
			  *net = bjson_object_get(a, "network");
	int64_t version = 0;
	bjson_int64(bjson_object_get(cg, "version"), &version);
	printf("Client:\n Version: %s\n", BERTH_VERSION);
	printf("Server:\n Version: %s\n Runtime: %s\n", str_or(a, "version", "-"),
	       str_or(a, "runtime_name", "-"));
	printf("Cgroups:\n Version: %" PRId64 "\n Driver: %s\n Parent: %s\n", version,
	       str_or(cg, "driver", "-"), str_or(cg, "parent", "-"));
	if (version == 2) {
		printf(" Mountpoint: %s\n", str_or(cg, "mountpoint", "-"));
		print_words("Controllers", bjson_object_get(cg, "controllers"));
		if (bjson_object_get(cg, "parent_controllers"))
			print_words("Parent controllers", bjson_object_get(cg, "parent_controllers"));
	}
	printf("Storage:\n Root: %s\n State: %s\n", str_or(st, "root", "-"), str_or(st, "state", "-"));
	print_usage("Images", bjson_object_get(st, "images"));
	print_usage("Containers", bjson_object_get(st, "containers"));
	printf("Network:\n Mode: %s\n Bridge: %s\n Subnet: %s\n Subnet6: %s\n",
	       str_or(net, "mode", "-"), str_or(net, "bridge", "-"), str_or(net, "subnet", "-"),
	       str_or(net, "subnet6", "-"));
	printf("Configuration:\n");
	print_config(str_or(a, "config", ""));
}

/* --format for info and version, and no positional arguments. */
static int parse_format(int argc, char **argv, int i, const char *cmd, bool *ret_json)
{
	const char *format = "table";
	const struct opt opts[] = { { "format", 0, OPT_STRING, &format }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, cmd);
	if (r || (r = cli_positional(argc, i, 0, 0, cmd, "[--format text|json]")))
		return r;
	return berth_cmd_format(cmd, format, ret_json);
}

int berth_info(const char *socket_path, int argc, char **argv, int i)
{
	bool json;
	_cleanup_(bjson_freep) struct json *answer = NULL;
	int r = parse_format(argc, argv, i, "info", &json);
	if (r || (r = berth_cmd_call(socket_path, "info", berthd_request("info"), &answer)))
		return r;
	if (json)
		return berth_cmd_print_json(answer);
	print_info(answer);
	return 0;
}

/* {"client": {"version"}, "server": {"version", "runtime_name"} or null} */
static int print_versions_json(const char *server, const char *runtime)
{
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "client");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "version", BERTH_VERSION);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "server");
	if (server) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "version", server);
		bjson_writer_kv_string(w, "runtime_name", runtime ? runtime : "");
		bjson_writer_end_object(w);
	} else {
		bjson_writer_null(w);
	}
	bjson_writer_end_object(w);
	return berth_cmd_print_writer(w);
}

/* The client's version always; the server's when berthd answers (else a one-line error and
 * exit status 1 after the client's). */
int berth_version(const char *socket_path, int argc, char **argv, int i)
{
	bool json;
	_cleanup_(bjson_freep) struct json *answer = NULL;
	struct berth_error *err = NULL;
	int r = parse_format(argc, argv, i, "version", &json);
	if (r)
		return r;
	int rc = berthd_call(socket_path, berthd_request("version"), &answer, &err);
	const char *server = rc == 0 ? str_or(answer, "version", NULL) : NULL;
	if (json) {
		r = print_versions_json(server, str_or(answer, "runtime_name", NULL));
	} else {
		printf("Client:\n Version: %s\n", BERTH_VERSION);
		if (server)
			printf("Server:\n Version: %s\n Runtime: %s\n", server,
			       str_or(answer, "runtime_name", "-"));
	}
	fflush(stdout);
	return rc < 0 ? berth_cmd_fail("version", err, rc) : r;
}
