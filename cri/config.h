/* berthd's configuration: defaults, then the config file, then the command line.
 *
 * The file (berthd.conf(5); default /etc/berth/berthd.conf, missing is fine unless named with
 * --config) is lines of `key = value`; '#' starts a comment; blank lines are skipped; values
 * may be quoted with "" (for leading/trailing spaces). Sizes take K/M/G/T (binary) suffixes,
 * durations s/ms/m suffixes (plain numbers are seconds). An unknown key, a repeated key or a bad
 * value is an error naming the file, line and key:
 *   /etc/berth/berthd.conf:12: log_level: unknown level "loud" (error, warn, info, debug)
 *
 * berthd_config_keys[] lists every key the parser knows, for the man page test. */
#ifndef BERTH_CRI_CONFIG_H
#define BERTH_CRI_CONFIG_H

#include "base/error.h"
#include "base/log.h"

#include <stdbool.h>
#include <stdint.h>

/* <sysconfdir>/berth/berthd.conf, where meson installs the commented default file */
#ifndef BERTHD_DEFAULT_CONFIG
#define BERTHD_DEFAULT_CONFIG "/etc/berth/berthd.conf"
#endif

struct berthd_config {
	char *root;            /* root = /var/lib/berth: images, containers/, berth.db */
	char *state;           /* state = /run/berth: shims/, runtime/, pods, sockets */
	char *socket;          /* socket = <state>/berth.sock */
	char *socket_group;    /* socket_group = (none): group owning the socket (mode 0660) */
	enum log_level log_level; /* log_level = info */
	bool log_json;         /* log_format = text | json */
	char *shim_path;       /* shim_path = <libexecdir>/berth/berth-shim */
	char *berth_path;      /* berth_path = <bindir>/berth: runs the pulls */
	unsigned workers;      /* workers = 8: worker threads for blocking work */
	uint64_t container_log_max_size; /* container_log_max_size = 10M (0: never rotate) */
	unsigned container_log_max_files; /* container_log_max_files = 5 */
	char *log_dir;         /* log_dir = /var/log/berth: container logs when a request names none */
	char *cgroup_parent;   /* cgroup_parent = berth: where pods' cgroups go (cgroupfs) */
	bool systemd_cgroup;   /* cgroup_driver = cgroupfs | systemd (slice names, no D-Bus) */
	char *network;         /* network = bridge | cni | none */
	char *bridge;          /* bridge = berth0 */
	char *subnet;          /* subnet = 10.88.0.0/16 */
	char *subnet6;         /* subnet6 = (none) */
	unsigned mtu;          /* mtu = 0 (the bridge's default) */
	char *cni_conf_dir;    /* cni_conf_dir = /etc/cni/net.d */
	char *cni_bin_dir;     /* cni_bin_dir = /usr/lib/cni */
	char *registries;      /* registries = /etc/berth/registries.json (missing is fine) */
	char *auth_file;       /* auth_file = (none: $REGISTRY_AUTH_FILE, docker's config) */
	unsigned stop_timeout; /* stop_timeout = 10s: default grace before SIGKILL */
	/* the streaming server (Exec, Attach, PortForward: cri/stream.c) */
	char *stream_address;           /* stream_address = 127.0.0.1 */
	unsigned stream_port;           /* stream_port = 0 (any free port) */
	unsigned stream_url_timeout;    /* stream_url_timeout = 1m: a URL's life, unused */
	unsigned stream_idle_timeout;   /* stream_idle_timeout = 4h: a silent session's */
	unsigned stream_max_per_client; /* stream_max_per_client = 16: sessions per address */
	/* the kubelet loop (cri/kubelet.h): static pods from manifests */
	char *manifest_dir;		  /* manifest_dir = /etc/berth/manifests ("": none) */
	unsigned manifest_check_interval; /* manifest_check_interval = 20s: the rescan period */
	char *config_map_dir;		  /* config_map_dir = /etc/berth/configmaps */
	char *secret_dir;		  /* secret_dir = /etc/berth/secrets */
	unsigned restart_backoff;	  /* restart_backoff = 10s: the first restart's delay */
	unsigned restart_backoff_max;	  /* restart_backoff_max = 5m */
	unsigned restart_backoff_reset;	  /* restart_backoff_reset = 10m: running that long resets */
};

/* Defaults (as listed above); state-derived paths follow a later state change unless set. */
int berthd_config_init(struct berthd_config *c, struct berth_error **err);
/* Reads a file over *c. required: a missing file is an error (else it is skipped). */
int berthd_config_load(struct berthd_config *c, const char *path, bool required,
		       struct berth_error **err);
/* One `key = value` setting (the command line's --root etc. go through here too); where names
 * the source in errors ("--root", "berthd.conf:3"). */
int berthd_config_set(struct berthd_config *c, const char *key, const char *value,
		      const char *where, struct berth_error **err);
/* Fills paths left unset from root/state (socket, ...). Call once after loading. */
int berthd_config_finish(struct berthd_config *c, struct berth_error **err);
void berthd_config_clear(struct berthd_config *c);
/* The settings as `key = value` lines (berth info, the man page test). */
int berthd_config_dump(const struct berthd_config *c, char **ret);

extern const char *const berthd_config_keys[];

#endif
