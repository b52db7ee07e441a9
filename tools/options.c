#include "tools/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct opt *find(const struct opt *opts, const char *name, size_t len, bool is_short)
{
	for (const struct opt *o = opts; o->name; o++) {
		if (is_short && len == 1 && o->short_name == name[0])
			return o;
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	}
	return NULL;
}

static int list_append(char ***list, const char *v)
{
	size_t n = 0;
	while (*list && (*list)[n])
		n++;
	char **nl = realloc(*list, (n + 2) * sizeof(char *));
	if (!nl)
		return -1;
	nl[n] = (char *)v;
	nl[n + 1] = NULL;
	*list = nl;
	return 0;
}

int options_parse(int argc, char **argv, int *index, const struct opt *opts, char **ret_msg)
{
	int i = *index;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		const char *name = a + (a[1] == '-' ? 2 : 1);
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = find(opts, name, len, a[1] != '-');
		if (!o) {
			if (asprintf(ret_msg, "unknown option %.*s", (int)(len + (size_t)(name - a)), a) < 0)
				*ret_msg = NULL;
			return -1;
		}
		if (o->kind == OPT_FLAG) {
			bool v = true;
			if (eq) {
				if (strcmp(eq + 1, "true") == 0)
					v = true;
				else if (strcmp(eq + 1, "false") == 0)
					v = false;
				else {
					if (asprintf(ret_msg, "--%s: expects true or false", o->name) < 0)
						*ret_msg = NULL;
					return -1;
				}
			}
			*(bool *)o->dest = v;
			continue;
		}
		const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!value) {
			if (asprintf(ret_msg, "--%s: needs a value", o->name) < 0)
				*ret_msg = NULL;
			return -1;
		}
		if (o->kind == OPT_STRING)
			*(const char **)o->dest = value;
		else if (list_append((char ***)o->dest, value) < 0) {
			*ret_msg = NULL; /* the caller reports "out of memory" */
			return -1;
		}
	}
	*index = i;
	return 0;
}
