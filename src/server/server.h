/*
 * server.h - ringkvd: the single-node RESP server on libevent
 * (DESIGN.md sections 1, 2 and 5).
 */
#ifndef RINGKV_SERVER_SERVER_H
#define RINGKV_SERVER_SERVER_H

#include <stdint.h>

#include "server/config.h"

/* Set by main.c when RINGKV_COUNT_ALLOCS=1: ringkv's allocations so far
 * (INFO memory allocations_counted); NULL otherwise.  Thread: any. */
extern uint64_t (*server_alloc_counter)(void);

/*
 * Runs a server with configuration `cfg` (borrowed; must outlive the call)
 * until SIGTERM/SIGINT: opens the engine, listens, serves, then stops
 * accepting, finishes in-flight requests, syncs and closes the engine.
 * Returns the process exit code: 0 after a clean shutdown, 1 when start-up
 * failed (one line on stderr says why).
 * Thread: the calling thread becomes the event-loop thread.
 */
int server_run(struct rk_config *cfg);

#endif /* RINGKV_SERVER_SERVER_H */
