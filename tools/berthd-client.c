#include "tools/berthd-client.h"

#include "base/cleanup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* An answer longer than this is not berthd's: container.list of a thousand containers is ~1 MiB. */
#define MAX_ANSWER (64u << 20)

const char *berthd_socket_path(const char *option)
{
	if (option)
		return option;
	const char *env = getenv("BERTH_SOCKET");
	return env && *env ? env : BERTHD_DEFAULT_SOCKET;
}

static int connect_unix(const char *path, int *ret_fd, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return berth_error_set(err, ENAMETOOLONG, "berthd socket %s: path too long", path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_setsys(err, errno, "connect to berthd at %s", path);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int send_all(int fd, const char *buf, size_t len, struct berth_error **err)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_setsys(err, errno, "send to berthd");
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to the first newline; the line (without it) in *ret. */
static int read_line(int fd, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			if (cap >= MAX_ANSWER)
				return berth_error_set(err, EMSGSIZE,
						       "berthd's answer is too long");
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb = realloc(buf, ncap);
			if (!nb)
				return berth_error_set(err, ENOMEM, "out of memory");
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_setsys(err, errno, "read from berthd");
		if (n == 0)
			return berth_error_set(err, ECONNRESET,
					       "berthd closed the connection without an answer");
		char *nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			*nl = '\0';
			*ret = TAKE_PTR(buf);
			return 0;
		}
	}
}

/* berthd's gRPC-style code names back to the errno values they stand for (cri/errcode.c). */
static int code_errno(const char *code)
{
	static const struct {
		const char *name;
		int errnum;
	} codes[] = {
		{ "NotFound", ENOENT },		 { "AlreadyExists", EEXIST },
		{ "InvalidArgument", EINVAL },	 { "OutOfRange", ERANGE },
		{ "FailedPrecondition", EBUSY }, { "DeadlineExceeded", ETIMEDOUT },
		{ "Unimplemented", EOPNOTSUPP }, { "PermissionDenied", EACCES },
		{ "ResourceExhausted", ENOSPC }, { "Cancelled", ECANCELED },
		{ "Unavailable", EAGAIN },
	};
	for (size_t i = 0; code && i < ARRAY_SIZE(codes); i++)
		if (strcmp(codes[i].name, code) == 0)
			return codes[i].errnum;
	return EIO;
}

static int check_answer(struct json *answer, struct berth_error **err)
{
	if (bjson_type_of(answer) != JSON_OBJECT)
		return berth_error_set(err, EPROTO, "berthd's answer is not a JSON object");
	if (bjson_bool(bjson_object_get(answer, "ok")))
		return 0;
	const char *msg = bjson_string(bjson_object_get(answer, "error"));
	const char *code = bjson_string(bjson_object_get(answer, "code"));
	return berth_error_set(err, code_errno(code), "%s",
			       msg ? msg : "berthd refused the request");
}

struct json_writer *berthd_request(const char *op)
{
	struct json_writer *w = bjson_writer_new(false);
	if (w) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "op", op);
	}
	return w;
}

int berthd_call(const char *socket_path, struct json_writer *w, struct json **ret,
		struct berth_error **err)
{
	_cleanup_free_ char *request = NULL, *line = NULL;
	size_t len = 0;
	if (!w)
		return berth_error_set(err, ENOMEM, "out of memory");
	bjson_writer_end_object(w);
	if (bjson_writer_finish(w, &request, &len) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	request[len] = '\n'; /* replaces the NUL: the request is sent by length */
	_cleanup_close_ int fd = -EBADF;
	_cleanup_(bjson_freep) struct json *answer = NULL;
	int r = connect_unix(socket_path, &fd, err);
	if (r < 0 || (r = send_all(fd, request, len + 1, err)) < 0 ||
	    (r = read_line(fd, &line, err)) < 0)
		return r;
	if ((r = bjson_parse(line, &answer, err)) < 0)
		return berth_error_wrap(err, "berthd's answer");
	if ((r = check_answer(answer, err)) < 0)
		return r;
	*ret = TAKE_PTR(answer);
	return 0;
}

int berthd_subscribe(const char *socket_path, FILE **ret, struct berth_error **err)
{
	static const char request[] = "{\"op\":\"events\"}\n";
	_cleanup_close_ int fd = -EBADF;
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	_cleanup_(bjson_freep) struct json *answer = NULL;
	size_t cap = 0;
	int r = connect_unix(socket_path, &fd, err);
	if (r < 0 || (r = send_all(fd, request, sizeof(request) - 1, err)) < 0)
		return r;
	/* a stream from here: the events follow the answer in the same reads */
	if (!(f = fdopen(fd, "r")))
		return berth_error_setsys(err, errno, "fdopen");
	(void)TAKE_FD(fd);
	if (getline(&line, &cap, f) <= 0)
		return berth_error_set(err, ECONNRESET,
				       "berthd closed the connection without an answer");
	if ((r = bjson_parse(line, &answer, err)) < 0)
		return berth_error_wrap(err, "berthd's answer");
	if ((r = check_answer(answer, err)) < 0)
		return r;
	*ret = TAKE_PTR(f);
	return 0;
}

/* ---- resolving names ---- */

struct kind_info {
	const char *op, *list_key, *noun, *live_state;
};

static const struct kind_info kinds[] = {
	[BERTHD_CONTAINER] = { "container.list", "containers", "container", "running" },
	[BERTHD_POD] = { "pod.list", "pods", "pod", "ready" },
};

enum match_by { BY_ID, BY_NAME, BY_PREFIX };

static bool matches(const struct json *item, enum match_by by, const char *given, bool live_only,
		    const char *live_state)
{
	const char *id = bjson_string(bjson_object_get(item, "id"));
	const char *name = bjson_string(bjson_object_get(item, "name"));
	const char *state = bjson_string(bjson_object_get(item, "state"));
	if (live_only && (!state || strcmp(state, live_state) != 0))
		return false;
	switch (by) {
	case BY_ID:
		return id && strcmp(id, given) == 0;
	case BY_NAME:
		return name && strcmp(name, given) == 0;
	case BY_PREFIX:
		return id && strncmp(id, given, strlen(given)) == 0;
	}
	return false;
}

/* The items matching `given` one way: how many, and the last of them in *ret. */
static size_t find(const struct json *list, enum match_by by, const char *given, bool live_only,
		   const char *live_state, const struct json **ret)
{
	size_t count = 0;
	for (size_t i = 0; i < bjson_array_size(list); i++) {
		const struct json *item = bjson_array_get(list, i);
		if (matches(item, by, given, live_only, live_state)) {
			*ret = item;
			count++;
		}
	}
	return count;
}

static int pick(const struct json *list, const struct kind_info *k, const char *given,
		const struct json **ret, struct berth_error **err)
{
	static const enum match_by order[] = { BY_ID, BY_NAME, BY_PREFIX };
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		size_t n = find(list, order[i], given, false, k->live_state, ret);
		if (n == 1 || (n > 1 && find(list, order[i], given, true, k->live_state, ret) == 1))
			return 0;
		if (n > 1)
			return berth_error_set(
				err, ENOTUNIQ,
				"%s \"%s\": ambiguous: %zu %ss match (give the full id)", k->noun,
				given, n, k->noun);
	}
	return berth_error_set(err, ENOENT, "%s \"%s\": no such %s", k->noun, given, k->noun);
}

static int dup_field(const struct json *item, const char *key, char **ret, struct berth_error **err)
{
	const char *v = bjson_string(bjson_object_get(item, key));
	if (!v)
		return berth_error_set(err, EPROTO, "berthd's list: an entry without \"%s\"", key);
	if (!(*ret = strdup(v)))
		return berth_error_set(err, ENOMEM, "out of memory");
	return 0;
}

int berthd_resolve(const char *socket_path, enum berthd_kind kind, const char *given, char **ret_id,
		   char **ret_state, struct berth_error **err)
{
	const struct kind_info *k = &kinds[kind];
	if (!*given)
		return berth_error_set(err, ENOENT, "%s \"\": no such %s", k->noun, k->noun);
	_cleanup_(bjson_freep) struct json *answer = NULL;
	int r = berthd_call(socket_path, berthd_request(k->op), &answer, err);
	if (r < 0)
		return r;
	const struct json *item = NULL;
	_cleanup_free_ char *id = NULL, *state = NULL;
	if ((r = pick(bjson_object_get(answer, k->list_key), k, given, &item, err)) < 0 ||
	    (r = dup_field(item, "id", &id, err)) < 0 ||
	    (ret_state && (r = dup_field(item, "state", &state, err)) < 0))
		return r;
	*ret_id = TAKE_PTR(id);
	if (ret_state)
		*ret_state = TAKE_PTR(state);
	return 0;
}
