/* The client side of berthd's streaming sessions (exec, attach, port-forward): a WebSocket over a
 * blocking TCP socket, speaking the Kubernetes channel protocols (every data message is binary,
 * its first byte the channel).
 *
 * Lifecycle: stream_session_open connects to the URL berthd handed out, makes the upgrade
 * handshake and returns an open session; stream_session_run then bridges until the server
 * closes it (or a callback stops it); stream_session_free sends a close frame when none was
 * exchanged yet, waits briefly for the server's, and closes the socket. One session belongs to one
 * thread; separate sessions share nothing.
 */
#ifndef BERTH_TOOLS_STREAM_CLIENT_H
#define BERTH_TOOLS_STREAM_CLIENT_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stream_session;

enum stream_kind {
	STREAM_CHANNELS,    /* exec, attach: v5.channel.k8s.io, else v4.channel.k8s.io */
	STREAM_PORTFORWARD, /* portforward.k8s.io */
};

/* Channels of exec and attach (the contract's numbering). */
enum {
	STREAM_STDIN = 0,
	STREAM_STDOUT = 1,
	STREAM_STDERR = 2,
	STREAM_STATUS = 3,
	STREAM_RESIZE = 4,
	STREAM_CLOSE = 255, /* v5: payload one byte, the channel to close */
};

/* Connects to url (http://HOST:PORT/PATH only) and upgrades. A refusal (404 for a used token, 429,
 * ...) is an error carrying the status line and the server's reason. */
int stream_session_open(const char *url, enum stream_kind kind, struct stream_session **ret,
			struct berth_error **err);
struct stream_session *stream_session_free(struct stream_session *s);
void stream_session_freep(struct stream_session **s);

/* The subprotocol the server chose ("v5.channel.k8s.io", ...). */
const char *stream_session_protocol(const struct stream_session *s);
/* Whether the protocol can close one channel (v5: [255, channel]). */
bool stream_session_can_close_channel(const struct stream_session *s);

/* Sends one binary message: the channel byte, then data. */
int stream_session_send(struct stream_session *s, uint8_t channel, const void *data, size_t len,
			struct berth_error **err);
/* Sends the close frame (once; later calls do nothing). */
int stream_session_close(struct stream_session *s, uint16_t code, struct berth_error **err);
/* After run returned 0: the server's close code (1005 when it sent none or just hung up), and its
 * reason (NUL-terminated, "" when none). */
uint16_t stream_session_close_code(const struct stream_session *s, const char **ret_reason);

/* What happens when in_fd reaches end of file. */
enum stream_eof {
	STREAM_EOF_CLOSE_CHANNEL, /* v5: send [255, in_channel]; v4: just stop reading */
	STREAM_EOF_CLOSE_SESSION, /* send a close frame (the server then closes too) */
};

/* What stream_session_run bridges. Callbacks return < 0 (an error, err set) or > 0 to end the run
 * with that value, 0 to go on. */
struct stream_bridge {
	int in_fd; /* read and sent on in_channel; < 0: none */
	uint8_t in_channel;
	enum stream_eof on_eof;
	int event_fd; /* polled too; event_cb runs when it is readable; < 0: none */
	int (*event_cb)(void *userdata, struct stream_session *s, struct berth_error **err);
	/* every message the server sends, whole (fragments joined) */
	int (*message_cb)(void *userdata, struct stream_session *s, uint8_t channel,
			  const uint8_t *data, size_t len, struct berth_error **err);
	void *userdata;
};

/* Bridges until the server closes the session (returns 0: after its close frame, or when it hangs
 * up), a callback ends it (its value), or an error (< 0). Pings are answered. */
int stream_session_run(struct stream_session *s, const struct stream_bridge *b,
		       struct berth_error **err);

/* Writes all of buf to fd (a pipe, a terminal or a socket; also when it is non-blocking). */
int stream_write_all(int fd, const void *buf, size_t len);

#endif
