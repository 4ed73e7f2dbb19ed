/* dpnet's rte_log types. Set-up and control code only: the fast path logs nothing. */
#ifndef DPNET_LOG_H
#define DPNET_LOG_H

#include <rte_log.h>

extern int dpn_logtype_stack;
extern int dpn_logtype_port;
extern int dpn_logtype_app;

#define DPN_LOG(level, type, fmt, ...)                                                             \
    rte_log(RTE_LOG_##level, dpn_logtype_##type, "dpnet: " fmt "\n", ##__VA_ARGS__)

void dpn_log_init(void);

#endif
