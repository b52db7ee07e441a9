/* A small option parser with urfave/cli's habits (what runc users type): --name value,
 * --name=value, -name value, -n value, boolean flags (also --flag=true|false), repeatable
 * options; option parsing stops at the first positional argument or at "--". */
#ifndef BERTH_TOOLS_OPTIONS_H
#define BERTH_TOOLS_OPTIONS_H

#include <stdbool.h>

enum opt_kind { OPT_FLAG, OPT_STRING, OPT_LIST };

struct opt {
	const char *name;
	char short_name;
	enum opt_kind kind;
	void *dest; /* bool *, const char **, or char *** (NULL-terminated, caller frees the array) */
};

/* Parses argv[*index...]; on success *index is the first positional argument. On failure
 * prints nothing and returns -1 with a message in *ret_msg (static or caller-freed). */
int options_parse(int argc, char **argv, int *index, const struct opt *opts, char **ret_msg);

#endif
