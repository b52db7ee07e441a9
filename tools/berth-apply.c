/* berth apply -f FILE and berth delete -f FILE: pods from Kubernetes manifests, run by berthd's
 * kubelet loop as if their files were in its manifest directory (berthd(8), KUBELET). */
#include "tools/berth-cmd.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The manifest: FILE, or standard input for "-". */
static int read_manifest(const char *cmd, const char *path, char **ret)
{
	struct berth_error *err = NULL;
	int r = strcmp(path, "-") == 0 ? read_file_at(AT_FDCWD, "/dev/stdin", ret, NULL, &err)
				       : read_file_at(AT_FDCWD, path, ret, NULL, &err);
	return r < 0 ? berth_cmd_fail(cmd, err, r) : 0;
}

static int manifest_args(int argc, char **argv, int i, const char *cmd, const char **ret_file)
{
	const char *file = NULL;
	const struct opt opts[] = {
		{ "filename", 'f', OPT_STRING, &file },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, cmd);
	if (r || (r = cli_positional(argc, i, 0, 0, cmd, "-f FILE")))
		return r;
	if (!file)
		return cli_usage("%s: -f FILE is required (a Pod manifest, YAML or JSON; - for stdin)",
				 cmd);
	*ret_file = file;
	return 0;
}

int berth_apply(const char *socket_path, int argc, char **argv, int i)
{
	const char *file = NULL;
	_cleanup_free_ char *text = NULL;
	int r = manifest_args(argc, argv, i, "apply", &file);
	if (r || (r = read_manifest("apply", file, &text)))
		return r;
	struct json_writer *w = berthd_request("pod.apply");
	bjson_writer_kv_string(w, "manifest", text);
	bjson_writer_kv_string(w, "file", strcmp(file, "-") == 0 ? "<stdin>" : file);
	_cleanup_(bjson_freep) struct json *ans = NULL;
	if ((r = berth_cmd_call(socket_path, "apply", w, &ans)))
		return r;
	printf("pod/%s applied\n", bjson_string(bjson_object_get(ans, "pod")));
	return 0;
}

int berth_delete(const char *socket_path, int argc, char **argv, int i)
{
	const char *file = NULL;
	_cleanup_free_ char *text = NULL;
	int r = manifest_args(argc, argv, i, "delete", &file);
	if (r || (r = read_manifest("delete", file, &text)))
		return r;
	struct json_writer *w = berthd_request("pod.delete");
	bjson_writer_kv_string(w, "manifest", text);
	_cleanup_(bjson_freep) struct json *ans = NULL;
	if ((r = berth_cmd_call(socket_path, "delete", w, &ans)))
		return r;
	printf("deleted\n");
	return 0;
}
