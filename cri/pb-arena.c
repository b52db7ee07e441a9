/* The response arena shared by the CRI services (cri/pb-arena.h). */
#include "cri/pb-arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *arena_keep(struct arena *a, void *p)
{
	if (!p)
		return NULL;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		void **nv = realloc(a->v, cap * sizeof(*nv));
		if (!nv) {
			free(p);
			return NULL;
		}
		a->v = nv;
		a->cap = cap;
	}
	return a->v[a->n++] = p;
}

void *arena_alloc(struct arena *a, size_t size)
{
	return arena_keep(a, calloc(1, size ? size : 1));
}

char *arena_str(struct arena *a, const char *s)
{
	return arena_keep(a, strdup(s ? s : ""));
}

void *arena_msg(struct arena *a, const ProtobufCMessageDescriptor *d)
{
	void *m = arena_alloc(a, d->sizeof_message);
	if (m)
		protobuf_c_message_init(d, m);
	return m;
}

void arena_clear(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (struct arena){ 0 };
}

int pack_reply(const ProtobufCMessage *msg, uint8_t **ret_buf, size_t *ret_len)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int reply(struct arena *a, int r, const void *msg, uint8_t **ret_buf, size_t *ret_len)
{
	if (r >= 0)
		r = msg ? pack_reply(msg, ret_buf, ret_len) : -ENOMEM;
	arena_clear(a);
	return r < 0 ? r : 0;
}
