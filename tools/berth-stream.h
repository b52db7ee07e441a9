/* berth's commands that talk to berthd's streaming server: exec, attach, port-forward. Each takes
 * the berthd socket (berthd_socket_path) and argv from the first argument after the command's
 * name; it returns the exit status (the process's own for exec and attach; 1 for an error of
 * berth's, with one line on standard error; 2 for bad usage). */
#ifndef BERTH_TOOLS_BERTH_STREAM_H
#define BERTH_TOOLS_BERTH_STREAM_H

int berth_exec(const char *socket_path, int argc, char **argv, int i);
int berth_attach(const char *socket_path, int argc, char **argv, int i);
int berth_port_forward(const char *socket_path, int argc, char **argv, int i);

#endif
