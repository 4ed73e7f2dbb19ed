/* kecho: a Linux-socket TCP+UDP echo server (epoll), the kernel baseline's
 * server side in tests and benchmarks. kecho [-p PORT] [-b ADDR] [-s]
 * (-s: poll without sleeping, as a latency-minded Linux server would) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <getopt.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_sig(int s) {
    (void)s;
    stop = 1;
}

static int open_listener(int type, struct sockaddr_in *sa) {
    int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) != 0 ||
        (type == SOCK_STREAM && listen(fd, 4096) != 0)) {
        perror("kecho: bind/listen");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(7)};
    int o;
    int wait_ms = 200;
    while ((o = getopt(argc, argv, "p:b:s")) != -1) {
        if (o == 's')
            wait_ms = 0; /* spin: poll without sleeping (Linux at its best) */
        else if (o == 'p')
            sa.sin_port = htons((uint16_t)atoi(optarg));
        else if (o == 'b')
            inet_pton(AF_INET, optarg, &sa.sin_addr);
        else
            return 2;
    }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    int lt = open_listener(SOCK_STREAM, &sa), lu = open_listener(SOCK_DGRAM, &sa);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lt};
    epoll_ctl(ep, EPOLL_CTL_ADD, lt, &ev);
    ev.data.fd = lu;
    epoll_ctl(ep, EPOLL_CTL_ADD, lu, &ev);
    static char buf[65536];
    printf("kecho: listening on port %u\n", ntohs(sa.sin_port));
    fflush(stdout);
    while (!stop) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, wait_ms);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lt) {
                int c, one = 1;
                while ((c = accept4(lt, NULL, NULL, 0)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    if (wait_ms == 0) {
                        int us = 50;
                        setsockopt(c, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us));
                    }
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
            } else if (fd == lu) {
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                ssize_t r;
                while ((r = recvfrom(lu, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
                                     &fl)) >= 0)
                    sendto(lu, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
            } else {
                ssize_t r = recv(fd, buf, sizeof(buf), 0);
                if (r <= 0) {
                    close(fd);
                    continue;
                }
                /* Blocking socket: send() writes it all (echo semantics). */
                if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) < 0)
                    close(fd);
            }
        }
    }
    return 0;
}
