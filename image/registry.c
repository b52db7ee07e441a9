/* Registry client: the pull side of the distribution API v2, over libcurl.
 *
 * registries.json (default /etc/berth/registries.json; every key is optional, any other key is
 * an error that names its path):
 *   {
 *     "registries": {                          per domain, as in a normalised reference
 *       "docker.io":  {"mirrors": ["https://mirror.example", "http://127.0.0.1:5001"],
 *                      "insecure": false},
 *       "myreg:5000": {"insecure": true}
 *     },
 *     "retries": 4,                retries of a request after its first attempt (0-100)
 *     "connectTimeout": 30,        seconds to set up a connection (1-3600)
 *     "stallTimeout": 60,          seconds a transfer may go without a byte (1-3600)
 *     "maxParallelDownloads": 3    for the caller (1-64); unset, the caller decides
 *   }
 * A mirror is a URL with its own scheme (and maybe a path prefix); mirrors are tried in order,
 * then the registry itself: https://<domain> ("docker.io" is https://registry-1.docker.io), or
 * plain http when "insecure" is true. localhost, 127.0.0.1 and [::1] (any port) are insecure
 * unless their entry says "insecure": false.
 *
 * Credentials come from a Docker config.json: {"auths": {"<key>": {"auth": base64("user:pass")}
 * or {"username": ..., "password": ...}}}; a key may carry a scheme and a path
 * ("https://index.docker.io/v1/"), which are dropped; index.docker.io and registry-1.docker.io
 * mean docker.io. Other top-level keys (credsStore, credHelpers, ...) are not used.
 *
 * A request goes out anonymously first; a 401 names the scheme. Basic sends the domain's
 * credentials; Bearer sends them (or nothing) to the token service, and the token is kept per
 * endpoint and scope for every thread until it expires. libcurl sends credentials only to the
 * origin they were given for, so a blob redirected to storage elsewhere goes there without. */
#include "image/registry-config-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "image/digest-internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MANIFEST_LIMIT ((size_t)4 << 20)
#define TOKEN_LIMIT ((size_t)1 << 20)
#define ERROR_BODY_LIMIT ((size_t)64 << 10)
#define MESSAGE_LIMIT 300         /* characters of a registry's message kept in an error */
#define DEFAULT_TOKEN_SECONDS 60  /* the token spec's default for a missing expires_in */
#define MAX_TOKEN_SECONDS 86400   /* a longer lifetime is cut: asking again early is harmless */
#define BACKOFF_FIRST_MS 200
#define BACKOFF_MAX_MS 10000
#define MAX_AUTH_ROUNDS 3         /* anonymous, then a new token, then a refreshed one */
#define MAX_REDIRECTS 10L

static const char *const manifest_accept =
	"Accept: application/vnd.oci.image.index.v1+json, "
	"application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.docker.distribution.manifest.v2+json";

/* ---- registries and their endpoints ---- */

enum auth_scheme { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

/* What a 401 asked for. */
struct challenge {
	enum auth_scheme scheme;
	char *realm;
	char *service;
	char *scope;
};

/* Where requests go: a mirror, or the registry itself (last). */
struct endpoint {
	char *base; /* "scheme://host[:port][/prefix]" */
	char *name; /* in messages: the mirror's host, or the domain */
	bool mirror;
	bool https;
	char *username; /* NULL: no credentials configured */
	char *password;
	/* learnt from 401s, under registry.lock */
	struct challenge challenge;
	char *token;	      /* for challenge.scope */
	uint64_t token_until; /* monotonic ms */
	unsigned token_gen;   /* counts token changes, so a rejected one is dropped only once */
};

struct registry {
	char *domain;
	char *repository;
	struct endpoint *endpoints;
	size_t n_endpoints;
	unsigned retries;
	long connect_timeout;
	long stall_timeout;
	pthread_mutex_t lock;	    /* the endpoints' auth state, the idle handles */
	pthread_mutex_t token_lock; /* one token request at a time: the others wait and share it */
	CURL **idle;		    /* handles (and so connections) kept between calls */
	size_t n_idle;
	size_t cap_idle;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void challenge_clear(struct challenge *ch)
{
	free(ch->realm);
	free(ch->service);
	free(ch->scope);
	*ch = (struct challenge){ 0 };
}

static void endpoint_clear(struct endpoint *ep)
{
	free(ep->base);
	free(ep->name);
	free_secret(ep->username);
	free_secret(ep->password);
	challenge_clear(&ep->challenge);
	free_secret(ep->token);
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_endpoints; i++)
		endpoint_clear(&r->endpoints[i]);
	free(r->endpoints);
	for (size_t i = 0; i < r->n_idle; i++)
		curl_easy_cleanup(r->idle[i]);
	free(r->idle);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->token_lock);
	free(r->domain);
	free(r->repository);
	free(r);
}

static void registry_freep(struct registry **r)
{
	registry_free(*r);
}

/* localhost, 127.0.0.1 and [::1], with any port. */
static bool is_loopback(const char *domain)
{
	static const char *const names[] = { "localhost", "127.0.0.1", "[::1]" };
	size_t n = domain[0] == '[' ? strcspn(domain, "]") + 1 : strcspn(domain, ":");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == n && strncasecmp(domain, names[i], n) == 0)
			return true;
	return false;
}

static bool valid_domain(const char *s)
{
	return *s &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
		       strlen(s);
}

/* Lowercase path components joined by '/', as the distribution spec allows (loosely: the
 * reference parser is stricter); enough to keep the URL what it seems. */
static bool valid_repository(const char *s)
{
	size_t n = strlen(s);
	return n && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-/") == n && s[0] != '/' &&
	       s[n - 1] != '/' && !strstr(s, "//") && !strstr(s, "..");
}

static bool valid_tag(const char *s)
{
	size_t n = strlen(s);
	return n && n <= 128 && s[0] != '.' && s[0] != '-' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static const struct credential *credential_for(const struct registry_config *c, const char *host)
{
	for (size_t i = 0; i < c->n_credentials; i++)
		if (strcasecmp(c->credentials[i].host, host) == 0)
			return &c->credentials[i];
	return NULL;
}

static int endpoint_init(struct endpoint *ep, const struct registry_config *c, const char *base,
			 const char *name, bool mirror)
{
	const struct credential *cr = credential_for(c, name);
	ep->base = strdup(base);
	ep->name = strdup(name);
	ep->mirror = mirror;
	ep->https = starts_with(base, "https://");
	if (cr) {
		ep->username = strdup(cr->username);
		ep->password = strdup(cr->password);
	}
	return ep->base && ep->name && (!cr || (ep->username && ep->password)) ? 0 : -ENOMEM;
}

static const struct registry_settings *settings_for(const struct registry_config *c,
						    const char *domain)
{
	for (size_t i = 0; i < c->n_registries; i++)
		if (strcasecmp(c->registries[i].domain, domain) == 0)
			return &c->registries[i];
	return NULL;
}

static int endpoints_init(struct registry *r, const struct registry_config *c)
{
	const struct registry_settings *s = settings_for(c, r->domain);
	size_t n_mirrors = 0;
	while (s && s->mirrors && s->mirrors[n_mirrors])
		n_mirrors++;
	r->endpoints = calloc(n_mirrors + 1, sizeof(*r->endpoints));
	if (!r->endpoints)
		return -ENOMEM;
	for (size_t i = 0; i < n_mirrors; i++) {
		_cleanup_free_ char *host = registry_host_of(s->mirrors[i]);
		r->n_endpoints++;
		if (!host || endpoint_init(&r->endpoints[i], c, s->mirrors[i], host, true) < 0)
			return -ENOMEM;
	}
	bool insecure = s && s->insecure >= 0 ? s->insecure : is_loopback(r->domain);
	const char *host = strcmp(r->domain, "docker.io") == 0 ? "registry-1.docker.io" : r->domain;
	_cleanup_free_ char *base = NULL;
	if (asprintf(&base, "%s://%s", insecure ? "http" : "https", host) < 0)
		return -ENOMEM;
	r->n_endpoints++;
	return endpoint_init(&r->endpoints[n_mirrors], c, base, r->domain, false);
}

int registry_open(const struct registry_config *c, const char *domain, const char *repository,
		  struct registry **ret, struct berth_error **err)
{
	if (!valid_domain(domain))
		return berth_error_set(err, EINVAL, "registry \"%s\": not a registry domain",
				       domain);
	if (!valid_repository(repository))
		return berth_error_set(err, EINVAL, "%s/%s: not a repository name", domain,
				       repository);
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return berth_error_set(err, EIO, "libcurl: %s",
				       curl_easy_strerror(curl_init_result));

	_cleanup_(registry_freep) struct registry *r = calloc(1, sizeof(*r));
	if (!r)
		return berth_error_set(err, ENOMEM, "registry %s: out of memory", domain);
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->token_lock, NULL);
	r->retries = c->retries;
	r->connect_timeout = c->connect_timeout;
	r->stall_timeout = c->stall_timeout;
	r->domain = strdup(domain);
	r->repository = strdup(repository);
	if (!r->domain || !r->repository || endpoints_init(r, c) < 0)
		return berth_error_set(err, ENOMEM, "registry %s: out of memory", domain);
	*ret = TAKE_PTR(r);
	return 0;
}

/* ---- curl handles: one per call, kept for the next call so connections are reused ---- */

struct handle {
	struct registry *r;
	CURL *curl;
};

static int handle_take(struct registry *r, struct handle *h, struct berth_error **err)
{
	h->r = r;
	h->curl = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->n_idle > 0)
		h->curl = r->idle[--r->n_idle];
	pthread_mutex_unlock(&r->lock);
	if (!h->curl)
		h->curl = curl_easy_init();
	if (!h->curl)
		return berth_error_set(err, ENOMEM, "%s: cannot create a curl handle", r->domain);
	return 0;
}

static void handle_releasep(struct handle *h)
{
	struct registry *r = h->r;
	if (!h->curl)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->n_idle == r->cap_idle) {
		size_t cap = r->cap_idle ? 2 * r->cap_idle : 4;
		CURL **idle = realloc(r->idle, cap * sizeof(*idle));
		if (idle) {
			r->idle = idle;
			r->cap_idle = cap;
		}
	}
	if (r->n_idle < r->cap_idle)
		r->idle[r->n_idle++] = TAKE_PTR(h->curl);
	pthread_mutex_unlock(&r->lock);
	if (h->curl)
		curl_easy_cleanup(h->curl);
}

/* ---- one HTTP GET ---- */

struct buffer {
	char *data; /* NUL-terminated once anything was added */
	size_t len;
	size_t cap;
};

static int buffer_append(struct buffer *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *data = realloc(b->data, cap);
		if (!data)
			return -ENOMEM;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* The latest response's status and headers (a redirect's, then its target's). */
struct response {
	long status;
	char *content_type;
	char *www_authenticate;
	char *content_range;
	struct buffer body; /* a 2xx body kept in memory, or an error body (the start of it) */
};

static void response_clear(struct response *resp)
{
	free(resp->content_type);
	free(resp->www_authenticate);
	free(resp->content_range);
	free(resp->body.data);
	*resp = (struct response){ 0 };
}

/* Where a blob's bytes go, across attempts. */
struct blob_sink {
	uint64_t size;
	uint64_t delivered; /* absolute: the next byte the caller expects */
	registry_write_fn write;
	void *opaque;
	/* per attempt */
	uint64_t asked; /* the offset this attempt asked for */
	uint64_t skip;	/* bytes still to drop: a 200 that ignored Range */
	bool started;
	int failure; /* -errno when the sink refused the body */
	bool fatal;  /* the caller's callback failed: no other endpoint will do better */
	struct berth_error *err;
};

struct auth {
	enum auth_scheme scheme;
	const char *username; /* basic: the endpoint's, which do not change */
	const char *password;
	char *token;  /* bearer: a copy */
	unsigned gen; /* the endpoint's token_gen it was taken at */
	bool fresh;   /* obtained for this request: a 401 is final */
};

static void auth_clear(struct auth *a)
{
	free_secret(a->token);
	*a = (struct auth){ 0 };
}

struct http_get {
	const char *url;
	struct curl_slist *headers;
	const struct auth *auth;
	uint64_t range_from; /* > 0: Range: bytes=N- */
	size_t limit;	     /* of a 2xx body kept in memory */
	struct blob_sink *blob;
	CURLcode code;
	bool too_large;
	struct response resp;
	char errbuf[CURL_ERROR_SIZE];
};

/* The trimmed value when `line` is the header `name`, else NULL. */
static char *header_value(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	const char *v = line + n + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && strchr(" \t\r\n", end[-1]))
		end--;
	return strndup(v, (size_t)(end - v));
}

static void header_keep(char **slot, char *value)
{
	if (!value)
		return;
	free(*slot);
	*slot = value;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *opaque)
{
	struct http_get *g = opaque;
	size_t len = size * nitems;
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		const char *sp = memchr(line, ' ', len);
		response_clear(&g->resp);
		g->resp.status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return len;
	}
	header_keep(&g->resp.content_type, header_value(line, len, "Content-Type"));
	header_keep(&g->resp.content_range, header_value(line, len, "Content-Range"));
	char *auth = header_value(line, len, "WWW-Authenticate");
	/* a registry offering both schemes gets the token flow */
	if (g->resp.www_authenticate && strncasecmp(g->resp.www_authenticate, "Bearer", 6) == 0)
		free(auth);
	else
		header_keep(&g->resp.www_authenticate, auth);
	return len;
}

static int blob_sink_fail(struct blob_sink *b, int code, const char *url, const char *what)
{
	b->failure = berth_error_set(&b->err, code, "GET %s: %s", url, what);
	return b->failure;
}

/* The first bytes of a 2xx: where they start decides what to drop. */
static int blob_sink_start(struct blob_sink *b, const struct http_get *g)
{
	uint64_t start = 0;
	b->started = true;
	if (g->resp.status == 200) {
		b->skip = b->asked; /* the whole blob came back */
		return 0;
	}
	if (!g->resp.content_range ||
	    sscanf(g->resp.content_range, "bytes %" SCNu64 "-", &start) != 1 || start != b->asked) {
		char what[160];
		snprintf(what, sizeof(what),
			 "asked for bytes %" PRIu64 "- but got Content-Range \"%s\"", b->asked,
			 g->resp.content_range ? g->resp.content_range : "");
		return blob_sink_fail(b, EPROTO, g->url, what);
	}
	return 0;
}

static int blob_sink_write(struct blob_sink *b, const struct http_get *g, const char *data,
			   size_t len)
{
	if (!b->started && blob_sink_start(b, g) < 0)
		return b->failure;
	size_t drop = b->skip < len ? (size_t)b->skip : len;
	b->skip -= drop;
	data += drop;
	len -= drop;
	if (len == 0)
		return 0;
	if (len > b->size - b->delivered) {
		char what[96];
		snprintf(what, sizeof(what), "more than the %" PRIu64 " bytes the descriptor says",
			 b->size);
		return blob_sink_fail(b, EFBIG, g->url, what);
	}
	int r = b->write(b->opaque, data, len, &b->err);
	if (r < 0) {
		b->fatal = true;
		b->failure =
			b->err ? r : berth_error_set(&b->err, -r, "GET %s: write failed", g->url);
		return r;
	}
	b->delivered += len;
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nitems, void *opaque)
{
	struct http_get *g = opaque;
	size_t len = size * nitems;
	long status = g->resp.status;
	if (status >= 300 && status < 400)
		return len; /* a redirect's own body */
	if (g->blob && (status == 200 || status == 206))
		return blob_sink_write(g->blob, g, data, len) < 0 ? 0 : len;
	bool ok = status >= 200 && status < 300;
	if (g->resp.body.len + len > (ok ? g->limit : ERROR_BODY_LIMIT)) {
		g->too_large = ok;
		return ok ? 0 : len; /* an error body is only read for its message */
	}
	return buffer_append(&g->resp.body, data, len) < 0 ? 0 : len;
}

static void http_setup_auth(CURL *curl, const struct auth *a)
{
	if (!a || a->scheme == AUTH_NONE)
		return;
	if (a->scheme == AUTH_BEARER) {
		/* not a header of our own: libcurl keeps it from other origins when redirected */
		curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, a->token);
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
	} else {
		curl_easy_setopt(curl, CURLOPT_USERNAME, a->username);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, a->password);
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	}
}

/* Sends g on curl (reset first: each request sets all it needs) and records what came back.
 * Proxies come from the environment, as libcurl does by default. */
static void http_perform(const struct registry *r, CURL *curl, struct http_get *g)
{
	char range[32];
	curl_easy_reset(curl);
	g->errbuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_URL, g->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, r->connect_timeout);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, r->stall_timeout);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, g->errbuf);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, g);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, g);
	if (g->headers)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, g->headers);
	if (g->range_from > 0) {
		snprintf(range, sizeof(range), "%" PRIu64 "-", g->range_from);
		curl_easy_setopt(curl, CURLOPT_RANGE, range);
	}
	http_setup_auth(curl, g->auth);
	g->code = curl_easy_perform(curl);
	if (g->code == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &g->resp.status);
}

/* ---- errors ---- */

/* What a failed attempt leaves to do. */
enum next_step { STEP_RETRY, STEP_NEXT_ENDPOINT, STEP_STOP };

static const struct {
	CURLcode code;
	int errnum;
	bool retry;
} curl_errors[] = {
	{ CURLE_OPERATION_TIMEDOUT, ETIMEDOUT, true },
	{ CURLE_COULDNT_RESOLVE_HOST, EHOSTUNREACH, true },
	{ CURLE_COULDNT_RESOLVE_PROXY, EHOSTUNREACH, true },
	{ CURLE_COULDNT_CONNECT, ECONNREFUSED, true },
	{ CURLE_PARTIAL_FILE, ECONNRESET, true },
	{ CURLE_RECV_ERROR, ECONNRESET, true },
	{ CURLE_SEND_ERROR, ECONNRESET, true },
	{ CURLE_GOT_NOTHING, ECONNRESET, true },
	{ CURLE_HTTP2, ECONNRESET, true },
	{ CURLE_HTTP2_STREAM, ECONNRESET, true },
	{ CURLE_SSL_CONNECT_ERROR, ECONNRESET, true },
	{ CURLE_PEER_FAILED_VERIFICATION, EPROTO, false },
	{ CURLE_TOO_MANY_REDIRECTS, ELOOP, false },
	{ CURLE_OUT_OF_MEMORY, ENOMEM, false },
	{ CURLE_UNSUPPORTED_PROTOCOL, EPROTONOSUPPORT, false },
};

static int curl_errno(CURLcode code, bool *ret_retry)
{
	for (size_t i = 0; i < ARRAY_SIZE(curl_errors); i++)
		if (curl_errors[i].code == code) {
			*ret_retry = curl_errors[i].retry;
			return curl_errors[i].errnum;
		}
	*ret_retry = false;
	return EIO;
}

static int status_errno(long status)
{
	static const struct {
		long status;
		int errnum;
	} map[] = {
		{ 400, EINVAL }, { 401, EACCES },    { 403, EACCES },
		{ 404, ENOENT }, { 408, ETIMEDOUT }, { 429, EAGAIN },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i].status == status)
			return map[i].errnum;
	return status >= 500 ? EIO : EPROTO;
}

static bool status_retryable(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

/* The registry's own words from an error body: "CODE: message" of the first of its
 * {"errors": [...]}, or a token service's "details"/"error"; one line, bounded; NULL if none. */
static char *registry_message(const struct buffer *body)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (!body->data || bjson_parse(body->data, &j, NULL) < 0)
		return NULL;
	const struct json *e = bjson_array_get(bjson_object_get(j, "errors"), 0);
	const char *code = bjson_string(bjson_object_get(e, "code"));
	const char *msg = bjson_string(bjson_object_get(e, "message"));
	if (!e)
		msg = bjson_string(bjson_object_get(j, "details"));
	if (!e && !msg)
		msg = bjson_string(bjson_object_get(j, "error"));
	char *out = NULL;
	if (!code && !msg)
		return NULL;
	if (asprintf(&out, "%s%s%s", code ? code : "", code && msg ? ": " : "", msg ? msg : "") < 0)
		return NULL;
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	if (strlen(out) > MESSAGE_LIMIT)
		strcpy(out + MESSAGE_LIMIT - 3, "...");
	return out;
}

/* The error of a GET that went wrong (curl's words, or the status and the registry's words),
 * `hint` added when given, and what to do next. */
static int http_failure(const struct http_get *g, const char *what, const char *hint,
			enum next_step *step, struct berth_error **err)
{
	bool retry;
	if (g->code != CURLE_OK) {
		int code = curl_errno(g->code, &retry);
		*step = retry ? STEP_RETRY : STEP_NEXT_ENDPOINT;
		return berth_error_set(err, code, "%s: %s%s", what,
				       g->errbuf[0] ? g->errbuf : curl_easy_strerror(g->code),
				       hint ? hint : "");
	}
	_cleanup_free_ char *msg = registry_message(&g->resp.body);
	*step = status_retryable(g->resp.status) ? STEP_RETRY : STEP_NEXT_ENDPOINT;
	return berth_error_set(err, status_errno(g->resp.status), "%s: HTTP %ld%s%s%s", what,
			       g->resp.status, msg && *msg ? ": " : "", msg ? msg : "",
			       hint ? hint : "");
}

/* ---- authentication ---- */

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* One param value: quoted (commas allowed inside, \ escapes the next character) or a token. */
static char *challenge_value(const char **pp)
{
	const char *p = *pp;
	if (*p != '"') {
		size_t n = strcspn(p, ", \t");
		*pp = p + n;
		return strndup(p, n);
	}
	_cleanup_free_ char *out = malloc(strlen(p) + 1);
	size_t n = 0;
	if (!out)
		return NULL;
	for (p++; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[n++] = *p;
	}
	if (*p != '"')
		return NULL; /* unterminated */
	out[n] = '\0';
	*pp = p + 1;
	return TAKE_PTR(out);
}

static char **challenge_slot(struct challenge *ch, const char *key, size_t len)
{
	if (len == 5 && strncasecmp(key, "realm", 5) == 0)
		return &ch->realm;
	if (len == 7 && strncasecmp(key, "service", 7) == 0)
		return &ch->service;
	if (len == 5 && strncasecmp(key, "scope", 5) == 0)
		return &ch->scope;
	return NULL;
}

/* `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
static int challenge_parse(const char *s, struct challenge *ret)
{
	struct challenge ch = { 0 };
	const char *p = skip_space(s);
	size_t n = strcspn(p, " \t");
	if (n == 6 && strncasecmp(p, "Bearer", 6) == 0)
		ch.scheme = AUTH_BEARER;
	else if (n == 5 && strncasecmp(p, "Basic", 5) == 0)
		ch.scheme = AUTH_BASIC;
	else
		return -EPROTONOSUPPORT;
	for (p += n;;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *key = p;
		size_t klen = strcspn(p, "= \t,");
		p = skip_space(p + klen);
		if (*p != '=')
			break; /* a lone token (another scheme): what came before is ours */
		p = skip_space(p + 1);
		char *value = challenge_value(&p);
		if (!value)
			break;
		char **slot = challenge_slot(&ch, key, klen);
		if (slot) {
			free(*slot);
			*slot = value;
		} else
			free(value);
	}
	if (ch.scheme == AUTH_BEARER && (!ch.realm || !*ch.realm)) {
		challenge_clear(&ch);
		return -EINVAL;
	}
	*ret = ch;
	return 0;
}

static bool same_string(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool challenge_equal(const struct challenge *a, const struct challenge *b)
{
	return a->scheme == b->scheme && same_string(a->realm, b->realm) &&
	       same_string(a->service, b->service) && same_string(a->scope, b->scope);
}

static int challenge_copy(const struct challenge *from, struct challenge *to)
{
	to->scheme = from->scheme;
	to->realm = from->realm ? strdup(from->realm) : NULL;
	to->service = from->service ? strdup(from->service) : NULL;
	to->scope = from->scope ? strdup(from->scope) : NULL;
	if ((from->realm && !to->realm) || (from->service && !to->service) ||
	    (from->scope && !to->scope))
		return -ENOMEM;
	return 0;
}

static void endpoint_drop_token(struct endpoint *ep)
{
	free_secret(ep->token);
	ep->token = NULL;
	ep->token_gen++;
}

/* Called with registry.lock held. */
static bool endpoint_token_valid(const struct endpoint *ep)
{
	return ep->token && now_ms() < ep->token_until;
}

static void basic_auth(const struct endpoint *ep, struct auth *a)
{
	a->scheme = AUTH_BASIC;
	a->username = ep->username;
	a->password = ep->password;
	a->fresh = true;
}

static char *token_url(CURL *curl, const struct challenge *ch, const char *repository)
{
	_cleanup_free_ char *scope_default = NULL;
	const char *scope = ch->scope;
	if (!scope && asprintf(&scope_default, "repository:%s:pull", repository) >= 0)
		scope = scope_default;
	char *service = ch->service ? curl_easy_escape(curl, ch->service, 0) : NULL;
	char *scope_esc = scope ? curl_easy_escape(curl, scope, 0) : NULL;
	char *url = NULL;
	if (scope_esc && (!ch->service || service) &&
	    asprintf(&url, "%s%cscope=%s%s%s", ch->realm, strchr(ch->realm, '?') ? '&' : '?',
		     scope_esc, service ? "&service=" : "", service ? service : "") < 0)
		url = NULL;
	curl_free(service);
	curl_free(scope_esc);
	return url;
}

static int token_parse(const struct http_get *g, const char *what, char **ret_token,
		       uint64_t *ret_seconds, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (!g->resp.body.data || bjson_parse(g->resp.body.data, &j, NULL) < 0)
		return berth_error_set(err, EPROTO, "%s: the answer is not JSON", what);
	const char *token = bjson_string(bjson_object_get(j, "token"));
	if (!token || !*token)
		token = bjson_string(bjson_object_get(j, "access_token"));
	if (!token || !*token)
		return berth_error_set(err, EPROTO, "%s: no \"token\" in the answer", what);
	/* a lifetime that is not a positive integer is taken as the default, not as a failure */
	uint64_t seconds = 0;
	if (!bjson_uint64(bjson_object_get(j, "expires_in"), &seconds) || seconds == 0)
		seconds = DEFAULT_TOKEN_SECONDS;
	if (seconds > MAX_TOKEN_SECONDS)
		seconds = MAX_TOKEN_SECONDS;
	*ret_token = strdup(token);
	*ret_seconds = seconds;
	return *ret_token ? 0 : berth_error_set(err, ENOMEM, "%s: out of memory", what);
}

/* GET realm?scope=…&service=… with the endpoint's credentials (or none). */
static int token_request(struct registry *r, struct endpoint *ep, CURL *curl,
			 const struct challenge *ch, char **ret_token, uint64_t *ret_seconds,
			 enum next_step *step, struct berth_error **err)
{
	*step = STEP_NEXT_ENDPOINT;
	/* a plain-http token service would see the credentials of an https registry */
	if (!starts_with(ch->realm, "https://") &&
	    !(starts_with(ch->realm, "http://") && !ep->https))
		return berth_error_set(err, EPROTO, "%s: refusing token service \"%s\" (not https)",
				       ep->name, ch->realm);
	_cleanup_free_ char *url = token_url(curl, ch, r->repository);
	_cleanup_free_ char *what = NULL;
	if (!url || asprintf(&what, "token from %s", ch->realm) < 0)
		return berth_error_set(err, ENOMEM, "%s: out of memory", ep->name);
	struct auth a = { 0 };
	if (ep->username)
		basic_auth(ep, &a);
	struct http_get g = { .url = url, .auth = &a, .limit = TOKEN_LIMIT };
	http_perform(r, curl, &g);
	int k;
	if (g.code != CURLE_OK || g.resp.status != 200)
		k = http_failure(&g, what, NULL, step, err);
	else
		k = token_parse(&g, what, ret_token, ret_seconds, err);
	response_clear(&g.resp);
	return k;
}

/* Copies ep's current token into a; called with registry.lock held. */
static int auth_take_token(const struct endpoint *ep, struct auth *a, struct berth_error **err)
{
	a->token = ep->token ? strdup(ep->token) : NULL;
	a->gen = ep->token_gen;
	return a->token ? 0 : berth_error_set(err, ENOMEM, "%s: out of memory", ep->name);
}

/* A valid bearer token for ep: the cached one, or a new one. Token requests are serialised, so
 * threads that met the same 401 together ask once and share the answer. */
static int token_obtain(struct registry *r, struct endpoint *ep, CURL *curl, struct auth *a,
			enum next_step *step, struct berth_error **err)
{
	struct challenge ch = { 0 };
	char *token = NULL;
	uint64_t seconds = 0;
	int k = 0;

	pthread_mutex_lock(&r->token_lock);
	pthread_mutex_lock(&r->lock);
	bool cached = endpoint_token_valid(ep);
	if (cached)
		k = auth_take_token(ep, a, err);
	else if (challenge_copy(&ep->challenge, &ch) < 0)
		k = berth_error_set(err, ENOMEM, "%s: out of memory", ep->name);
	pthread_mutex_unlock(&r->lock);
	if (!cached && k >= 0)
		k = token_request(r, ep, curl, &ch, &token, &seconds, step, err);
	if (!cached && k >= 0) {
		pthread_mutex_lock(&r->lock);
		endpoint_drop_token(ep);
		ep->token = token;
		ep->token_until = now_ms() + seconds * 1000;
		a->fresh = true;
		k = auth_take_token(ep, a, err);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&r->token_lock);
	challenge_clear(&ch);
	return k;
}

/* The credentials for the next request to ep, from what its 401s asked for so far. */
static int auth_prepare(struct registry *r, struct endpoint *ep, CURL *curl, struct auth *a,
			enum next_step *step, struct berth_error **err)
{
	*a = (struct auth){ 0 };
	int k = 0;
	pthread_mutex_lock(&r->lock);
	a->scheme = ep->challenge.scheme;
	bool cached = a->scheme == AUTH_BEARER && endpoint_token_valid(ep);
	if (cached)
		k = auth_take_token(ep, a, err);
	pthread_mutex_unlock(&r->lock);
	if (a->scheme == AUTH_BEARER)
		return cached ? k : token_obtain(r, ep, curl, a, step, err);
	if (a->scheme == AUTH_BASIC && !ep->username) {
		*step = STEP_NEXT_ENDPOINT;
		return berth_error_set(err, EACCES, "authentication required by %s: no credentials",
				       ep->name);
	}
	if (a->scheme == AUTH_BASIC)
		basic_auth(ep, a);
	return 0;
}

/* After a 401 to a request sent with `used`: learns the challenge, drops a cached token the
 * registry refused, and says whether sending the request again can help. */
static bool auth_after_401(struct registry *r, struct endpoint *ep, const struct response *resp,
			   const struct auth *used)
{
	struct challenge ch = { 0 };
	if (!resp->www_authenticate || challenge_parse(resp->www_authenticate, &ch) < 0)
		return false;
	pthread_mutex_lock(&r->lock);
	bool changed = !challenge_equal(&ep->challenge, &ch);
	bool stale = used->scheme == AUTH_BEARER && !used->fresh;
	if (changed) {
		challenge_clear(&ep->challenge);
		ep->challenge = ch;
		ch = (struct challenge){ 0 };
		endpoint_drop_token(ep);
	} else if (stale && ep->token_gen == used->gen)
		endpoint_drop_token(ep);
	pthread_mutex_unlock(&r->lock);
	challenge_clear(&ch);
	/* anonymous while another thread learnt the same challenge: now send what it asks for */
	return changed || stale || used->scheme == AUTH_NONE;
}

/* ---- fetching, over endpoints and attempts ---- */

struct fetch {
	const char *path;      /* "/v2/<repo>/…", after an endpoint's base */
	const char *not_found; /* the message of a 404 */
	struct curl_slist *headers;
	size_t limit;	    /* of a body kept in memory */
	const char *digest; /* the body must have it */
	struct blob_sink *blob;
	/* the answer kept in memory */
	struct buffer body;
	char *content_type;
};

static int fetch_verify(const struct fetch *f, const struct http_get *g, enum next_step *step,
			struct berth_error **err)
{
	char digest[DIGEST_LEN + 1];
	*step = STEP_NEXT_ENDPOINT;
	if (f->blob && f->blob->delivered < f->blob->size) {
		*step = STEP_RETRY;
		return berth_error_set(err, ECONNRESET,
				       "GET %s: the body ended after byte %" PRIu64 " of %" PRIu64,
				       g->url, f->blob->delivered, f->blob->size);
	}
	if (!f->digest)
		return 0;
	int k = digest_of_buffer(g->resp.body.data ? g->resp.body.data : "", g->resp.body.len,
				 digest, err);
	if (k >= 0 && strcmp(digest, f->digest) != 0)
		k = berth_error_set(err, EBADMSG,
				    "GET %s: the body's digest is %s, not the one asked for",
				    g->url, digest);
	return k;
}

/* Turns the final response of an attempt into the result: the body kept, or an error. */
static int fetch_outcome(struct fetch *f, struct endpoint *ep, struct http_get *g,
			 enum next_step *step, struct berth_error **err)
{
	_cleanup_free_ char *what = NULL;
	if (asprintf(&what, "GET %s", g->url) < 0)
		return berth_error_set(err, ENOMEM, "GET: out of memory");
	if (f->blob && f->blob->failure < 0) {
		*step = f->blob->fatal ? STEP_STOP : STEP_NEXT_ENDPOINT;
		return berth_error_move(err, &f->blob->err);
	}
	if (g->too_large) {
		*step = STEP_NEXT_ENDPOINT;
		return berth_error_set(err, EFBIG, "%s: the body is larger than %zu bytes", what,
				       f->limit);
	}
	if (g->code == CURLE_OK && g->resp.status == 404 && f->not_found) {
		*step = STEP_NEXT_ENDPOINT;
		return berth_error_set(err, ENOENT, "%s", f->not_found);
	}
	if (g->code != CURLE_OK || g->resp.status < 200 || g->resp.status >= 300) {
		char hint[300] = "";
		if (g->resp.status == 401 && !ep->username)
			snprintf(hint, sizeof(hint), " (no credentials for %s)", ep->name);
		return http_failure(g, what, hint, step, err);
	}
	int k = fetch_verify(f, g, step, err);
	if (k < 0)
		return k;
	f->body = g->resp.body;
	f->content_type = TAKE_PTR(g->resp.content_type);
	g->resp.body = (struct buffer){ 0 };
	return 0;
}

/* One attempt at ep: the request, and again with credentials when a 401 asks for them. */
static int fetch_attempt(struct registry *r, struct endpoint *ep, CURL *curl, struct fetch *f,
			 enum next_step *step, struct berth_error **err)
{
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s%s", ep->base, f->path) < 0)
		return berth_error_set(err, ENOMEM, "%s: out of memory", ep->name);
	for (unsigned round = 0;; round++) {
		struct auth a;
		int k = auth_prepare(r, ep, curl, &a, step, err);
		if (k < 0)
			return k;
		struct http_get g = { .url = url,
				      .headers = f->headers,
				      .auth = &a,
				      .limit = f->limit,
				      .blob = f->blob };
		if (f->blob) {
			f->blob->asked = g.range_from = f->blob->delivered;
			f->blob->skip = 0;
			f->blob->started = false;
			f->blob->failure = 0;
		}
		http_perform(r, curl, &g);
		bool again = g.code == CURLE_OK && g.resp.status == 401 &&
			     round + 1 < MAX_AUTH_ROUNDS && auth_after_401(r, ep, &g.resp, &a);
		if (!again)
			k = fetch_outcome(f, ep, &g, step, err);
		response_clear(&g.resp);
		auth_clear(&a);
		if (!again)
			return k;
	}
}

static unsigned backoff_ms(unsigned failures)
{
	unsigned ms = BACKOFF_FIRST_MS;
	while (failures-- > 0 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Connection failures at a mirror move on at once: the registry itself is still there. */
static bool mirror_unreachable(const struct endpoint *ep, const struct berth_error *e)
{
	return ep->mirror && e && (e->code == ECONNREFUSED || e->code == EHOSTUNREACH);
}

/* Attempts at one endpoint, with backoff between them; a blob attempt that got further than the
 * last one starts the count again (the retries are for a stuck transfer, not a long one). */
static int fetch_at(struct registry *r, struct endpoint *ep, CURL *curl, struct fetch *f,
		    enum next_step *step, struct berth_error **err)
{
	unsigned failures = 0, attempts = 0;
	for (;;) {
		_cleanup_error_ struct berth_error *e = NULL;
		uint64_t before = f->blob ? f->blob->delivered : 0;
		attempts++;
		int k = fetch_attempt(r, ep, curl, f, step, &e);
		if (k >= 0)
			return k;
		if (f->blob && f->blob->delivered > before)
			failures = 0;
		if (*step != STEP_RETRY || failures >= r->retries || mirror_unreachable(ep, e)) {
			if (*step != STEP_RETRY || !e || attempts == 1)
				return berth_error_move(err, &e);
			*step = STEP_NEXT_ENDPOINT;
			return berth_error_set(err, e->code, "%s (gave up after %u attempts)",
					       e->msg, attempts);
		}
		unsigned ms = backoff_ms(failures++);
		log_debug("%s; trying again in %u ms", e ? e->msg : "failed", ms);
		sleep_ms(ms);
	}
}

/* The mirrors in order, then the registry; the last endpoint's error is the one reported. */
static int fetch_run(struct registry *r, struct fetch *f, struct berth_error **err)
{
	_cleanup_(handle_releasep) struct handle h = { 0 };
	_cleanup_error_ struct berth_error *e = NULL;
	int k = handle_take(r, &h, err);
	if (k < 0)
		return k;
	for (size_t i = 0; i < r->n_endpoints; i++) {
		enum next_step step = STEP_NEXT_ENDPOINT;
		berth_error_freep(&e);
		k = fetch_at(r, &r->endpoints[i], h.curl, f, &step, &e);
		if (k >= 0)
			return k;
		if (step == STEP_STOP)
			break;
		if (i + 1 < r->n_endpoints)
			log_debug("%s; trying %s", e ? e->msg : "failed", r->endpoints[i + 1].base);
	}
	return berth_error_move(err, &e);
}

static void fetch_clear(struct fetch *f)
{
	curl_slist_free_all(f->headers);
	free(f->body.data);
	free(f->content_type);
}

/* "application/vnd.oci.image.manifest.v1+json; charset=utf-8" -> its media type alone. */
static char *media_type_of(const char *content_type)
{
	if (!content_type)
		return NULL;
	size_t n = strcspn(content_type, ";");
	while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
		n--;
	return n ? strndup(content_type, n) : NULL;
}

int registry_get_manifest(struct registry *r, const char *reference, char **ret_body,
			  size_t *ret_len, char **ret_media_type, struct berth_error **err)
{
	bool by_digest = strchr(reference, ':') != NULL;
	int k = by_digest ? digest_validate(reference, "manifest reference", err) : 0;
	if (k < 0)
		return k;
	if (!by_digest && !valid_tag(reference))
		return berth_error_set(err, EINVAL, "%s/%s: \"%s\" is not a tag or a digest",
				       r->domain, r->repository, reference);

	_cleanup_free_ char *path = NULL, *not_found = NULL;
	struct fetch f = { .limit = MANIFEST_LIMIT, .digest = by_digest ? reference : NULL };
	if (asprintf(&path, "/v2/%s/manifests/%s", r->repository, reference) < 0 ||
	    asprintf(&not_found, "manifest unknown: %s/%s%c%s", r->domain, r->repository,
		     by_digest ? '@' : ':', reference) < 0 ||
	    !(f.headers = curl_slist_append(NULL, manifest_accept)))
		return berth_error_set(err, ENOMEM, "%s: out of memory", reference);
	f.path = path;
	f.not_found = not_found;
	k = fetch_run(r, &f, err);
	if (k >= 0 && !f.body.data && !(f.body.data = strdup("")))
		k = berth_error_set(err, ENOMEM, "%s: out of memory", reference);
	if (k >= 0) {
		*ret_media_type = media_type_of(f.content_type);
		*ret_len = f.body.len;
		*ret_body = TAKE_PTR(f.body.data);
	}
	fetch_clear(&f);
	return k;
}

int registry_fetch_blob(struct registry *r, const char *digest, uint64_t offset, uint64_t size,
			registry_write_fn write_fn, void *opaque, struct berth_error **err)
{
	int k = digest_validate(digest, "blob", err);
	if (k < 0)
		return k;
	if (offset > size)
		return berth_error_set(err, EINVAL,
				       "blob %s: offset %" PRIu64 " is past its size %" PRIu64,
				       digest, offset, size);
	if (offset == size)
		return 0;

	_cleanup_free_ char *path = NULL, *not_found = NULL;
	struct blob_sink b = {
		.size = size, .delivered = offset, .write = write_fn, .opaque = opaque
	};
	struct fetch f = { .blob = &b };
	if (asprintf(&path, "/v2/%s/blobs/%s", r->repository, digest) < 0 ||
	    asprintf(&not_found, "blob unknown: %s/%s@%s", r->domain, r->repository, digest) < 0)
		return berth_error_set(err, ENOMEM, "blob %s: out of memory", digest);
	f.path = path;
	f.not_found = not_found;
	k = fetch_run(r, &f, err);
	berth_error_free(b.err);
	fetch_clear(&f);
	return k;
}
