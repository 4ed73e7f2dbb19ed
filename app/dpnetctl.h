/* dpnetctl's commands that live in files of their own. */
#ifndef DPNETCTL_H
#define DPNETCTL_H

/* dpnetctl --file-prefix PREFIX capture ARGS...: exit status. */
int dpnetctl_capture(const char *prefix, int argc, char **argv);

#endif
