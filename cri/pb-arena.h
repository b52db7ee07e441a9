/* Building one protobuf response: every allocation of it is kept in an arena and freed at once
 * after packing, so a CRI handler never frees a message tree field by field. An arena starts
 * zeroed ({0}); reply() packs the response (or passes the handler's error on) and clears it. */
#ifndef BERTH_CRI_PB_ARENA_H
#define BERTH_CRI_PB_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

struct arena {
	void **v;
	size_t n, cap;
};

/* Keeps p (freed with the arena); NULL when p is NULL or memory runs out (p is freed then). */
void *arena_keep(struct arena *a, void *p);
void *arena_alloc(struct arena *a, size_t size);
/* A copy of s ("" for NULL). */
char *arena_str(struct arena *a, const char *s);
/* A message of the descriptor's type, initialised to its defaults. */
void *arena_msg(struct arena *a, const ProtobufCMessageDescriptor *d);
void arena_clear(struct arena *a);

#define NEW(a, type, desc) ((type *)arena_msg((a), &(desc)))

/* Packs msg into a malloc'd buffer (the transport frees it). */
int pack_reply(const ProtobufCMessage *msg, uint8_t **ret_buf, size_t *ret_len);
/* Packs the response when r >= 0 (msg NULL: -ENOMEM), or passes r on; clears the arena. */
int reply(struct arena *a, int r, const void *msg, uint8_t **ret_buf, size_t *ret_len);

#endif
