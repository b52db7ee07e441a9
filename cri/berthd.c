/* berthd: the daemon. Configuration (defaults, the file, the command line), one instance per
 * state directory, recovery before serving, the libuv loop, and a shutdown on SIGTERM/SIGINT that
 * leaves every container and shim running. */
#include "base/cleanup.h"
#include "base/log.h"
#include "cri/api.h"
#include "cri/config.h"
#include "cri/cri-services.h"
#include "cri/kubelet.h"
#include "cri/manager.h"
#include "cri/server.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* Requests still running this long after SIGTERM are abandoned: the database and the shims stay
 * consistent (a create cut short is undone by the next start's recovery). */
#define SHUTDOWN_GRACE_MS 10000

struct daemon {
	uv_loop_t *loop;
	struct berthd_config cfg;
	struct api_context ctx;
	struct cri_services services;
	struct grpc_method *methods; /* RuntimeService's then ImageService's, NULL-path-ended */
	struct grpc_service_table grpc;
	struct manager *manager;
	struct kubelet *kubelet;
	struct stream_server *streams;
	struct server *server;
	uv_signal_t sigterm, sigint;
	uv_timer_t grace;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: berthd [--config FILE] [--root DIR] [--state DIR] [--socket PATH]\n"
		   "              [--manifest-dir DIR] [--log-level error|warn|info|debug]\n"
		   "       berthd --version\n");
}

/* Command-line settings, applied over the file's as `key = value` lines named by the option. */
struct cli {
	const char *config;
	const char *keys[8], *values[8], *options[8];
	size_t n;
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "root", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "manifest-dir", required_argument, NULL, 'm' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		int opt;
		const char *key, *option;
	} map[] = { { 'r', "root", "--root" },
		    { 's', "state", "--state" },
		    { 'S', "socket", "--socket" },
		    { 'm', "manifest_dir", "--manifest-dir" },
		    { 'l', "log_level", "--log-level" } };
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'c') {
			cli->config = optarg;
			continue;
		}
		if (o == 'h' || o == 'V') {
			if (o == 'h')
				usage(stdout);
			else
				printf("berthd %s\n", BERTH_VERSION);
			return 0;
		}
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(map) && !known; i++) {
			if (map[i].opt != o)
				continue;
			known = true;
			cli->keys[cli->n] = map[i].key;
			cli->options[cli->n] = map[i].option;
			cli->values[cli->n++] = optarg;
		}
		if (!known || cli->n >= ARRAY_SIZE(cli->keys)) {
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "berthd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1; /* go on */
}

static int load_config(struct berthd_config *cfg, const struct cli *cli, struct berth_error **err)
{
	int r = berthd_config_init(cfg, err);
	if (r < 0)
		return r;
	r = berthd_config_load(cfg, cli->config ? cli->config : BERTHD_DEFAULT_CONFIG,
			       cli->config != NULL, err);
	for (size_t i = 0; r == 0 && i < cli->n; i++)
		r = berthd_config_set(cfg, cli->keys[i], cli->values[i], cli->options[i], err);
	return r < 0 ? r : berthd_config_finish(cfg, err);
}

/* berthd's memory is mostly what malloc keeps, not what it uses: a worker's burst (libnftables
 * asks for a 2 MiB batch per pod network) would otherwise raise glibc's mmap threshold to its
 * size, and every later burst would be carved from a per-thread arena that never shrinks. One
 * arena for the few workers, big blocks always mapped (and unmapped when freed), and free memory
 * at the top of the heap returned early. */
static void limit_malloc_footprint(void)
{
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

/* The process's own setup: memory, threads, fds, signals, and the one-daemon-per-state lock. */
static int prepare_process(const struct berthd_config *cfg, int *ret_lock, struct berth_error **err)
{
	limit_malloc_footprint();
	char n[16];
	snprintf(n, sizeof(n), "%u", cfg->workers);
	/* libuv reads it once, at the first uv_queue_work */
	setenv("UV_THREADPOOL_SIZE", n, 1);
	/* a watch connection per live container: the soft limit goes up to the hard one */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("raising the open files limit to %llu: %m",
				 (unsigned long long)rl.rlim_max);
	}
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(cfg->state, 0711) < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "state: %s", cfg->state);
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/berthd.lock", cfg->state) < 0)
		return -ENOMEM;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return berth_error_setsys(err, errno, "%s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK
			       ? berth_error_set(err, EBUSY, "another berthd runs with state %s",
						 cfg->state)
			       : berth_error_setsys(err, e, "locking %s", path);
	}
	*ret_lock = fd;
	return 0;
}

/* ---- shutdown ---- */

static void grace_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	log_warn("%u requests still running %d s after the signal: exiting without them",
		 server_inflight(d->server), SHUTDOWN_GRACE_MS / 1000);
	/* workers may still use the database: SQLite's WAL keeps it whole without a close */
	_exit(0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("%s: shutting down; containers and their shims keep running",
		 signum == SIGTERM ? "SIGTERM" : "SIGINT");
	server_close(d->server);
	manager_close(d->manager);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	/* the loop ends once requests in flight are done; the timer does not keep it alive */
	uv_timer_init(d->loop, &d->grace);
	d->grace.data = d;
	uv_timer_start(&d->grace, grace_cb, SHUTDOWN_GRACE_MS, 0);
	uv_unref((uv_handle_t *)&d->grace);
}

static int watch_signals(struct daemon *d, struct berth_error **err)
{
	int r;
	d->sigterm.data = d->sigint.data = d;
	if ((r = uv_signal_init(d->loop, &d->sigterm)) < 0 ||
	    (r = uv_signal_start(&d->sigterm, on_signal, SIGTERM)) < 0 ||
	    (r = uv_signal_init(d->loop, &d->sigint)) < 0 ||
	    (r = uv_signal_start(&d->sigint, on_signal, SIGINT)) < 0)
		return berth_error_set(err, -r, "signals: %s", uv_strerror(r));
	return 0;
}

/* ---- main ---- */

static size_t count_methods(const struct grpc_method *m)
{
	size_t n = 0;
	while (m && m[n].path)
		n++;
	return n;
}

/* The gRPC server's one table: both CRI services' methods. */
static int join_services(struct daemon *d)
{
	d->services = (struct cri_services){ .manager = d->manager, .config = &d->cfg,
					     .loop = d->loop, .streams = d->streams };
	const struct grpc_method *rt = cri_runtime_methods(&d->services);
	const struct grpc_method *img = cri_image_methods(&d->services);
	size_t nrt = count_methods(rt), nimg = count_methods(img);
	d->methods = calloc(nrt + nimg + 1, sizeof(*d->methods));
	if (!d->methods)
		return -ENOMEM;
	if (nrt)
		memcpy(d->methods, rt, nrt * sizeof(*rt));
	if (nimg)
		memcpy(d->methods + nrt, img, nimg * sizeof(*img));
	d->grpc.methods = d->methods;
	return 0;
}

static int serve(struct daemon *d, struct berth_error **err)
{
	int r;
	if ((r = manager_new(&d->cfg, d->loop, &d->manager, err)) < 0 ||
	    (r = manager_recover(d->manager, err)) < 0 ||
	    (r = kubelet_start(&d->cfg, d->manager, &d->kubelet, err)) < 0)
		return r;
	if ((r = stream_server_start(&d->cfg, d->manager, &d->streams, err)) < 0)
		return r;
	d->ctx = (struct api_context){ .manager = d->manager, .config = &d->cfg,
				       .streams = d->streams, .kubelet = d->kubelet };
	if ((r = join_services(d)) < 0)
		return berth_error_set(err, -r, "out of memory");
	if ((r = server_new(d->loop, &d->ctx, &d->grpc, &d->server, err)) < 0 ||
	    (r = watch_signals(d, err)) < 0)
		return r;
	log_info("berthd %s ready (root %s, state %s, %u workers)", BERTH_VERSION, d->cfg.root,
		 d->cfg.state, d->cfg.workers);
	uv_run(d->loop, UV_RUN_DEFAULT);
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	int rc = parse_args(argc, argv, &cli);
	if (rc >= 0)
		return rc;
	static struct daemon d;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_close_ int lock = -EBADF;
	log_setup("berthd", STDERR_FILENO, false, LOG_LEVEL_INFO);
	int r = load_config(&d.cfg, &cli, &err);
	if (r == 0) {
		log_setup("berthd", STDERR_FILENO, d.cfg.log_json, d.cfg.log_level);
		if (geteuid() != 0)
			r = berth_error_set(&err, EPERM, "berthd must run as root");
	}
	if (r == 0 && (r = prepare_process(&d.cfg, &lock, &err)) == 0) {
		d.loop = uv_default_loop();
		r = serve(&d, &err);
		if (r < 0 && d.manager)
			manager_close(d.manager);
		if (r < 0 && d.server)
			server_close(d.server);
		uv_run(d.loop, UV_RUN_DEFAULT); /* lets closed handles finish */
		server_free(d.server);
		stream_server_free(d.streams);
		kubelet_free(d.kubelet); /* its pods keep running */
		manager_free(d.manager);
		free(d.methods);
		uv_loop_close(d.loop);
	}
	if (r < 0)
		log_error("%s", err ? err->msg : strerror(-r));
	berthd_config_clear(&d.cfg);
	return r < 0 ? 1 : 0;
}
