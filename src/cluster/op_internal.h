/*
 * op_internal.h - what op.c (phases, per-client order) and op_keys.c (keys,
 * read answers, the coordinated keyspace) share.  Nothing outside the
 * op module includes this.  Thread: the machine's loop only.
 */
#ifndef RINGKV_CLUSTER_OP_INTERNAL_H
#define RINGKV_CLUSTER_OP_INTERNAL_H

#include "cluster/op.h"

/* Actions one operation can have queued at once: EXEC, DONE, REPLY or
 * DISPATCH, and the RESUME of the progress that answered it. */
#define OP_ACTS_PER_OP 4

enum op_kind
{
    OP_KEYS = 1, /* a coordinated key command */
    OP_HOLD,     /* answered by the driver (op_hold_done) */
    OP_DEFER,    /* a command that must wait for the ones before it */
};

enum op_phase
{
    PH_NEW = 0, /* created, not begun (or waiting) */
    PH_READ,
    PH_EXEC, /* OP_ACT_EXEC emitted, op_exec_done not yet called */
    PH_WRITE,
    PH_DONE,
};

enum key_state
{
    KEY_IDLE = 0, /* not started in this phase */
    KEY_INFLIGHT, /* a node request is in flight */
    KEY_ANSWERED, /* done in this phase */
};

struct op_key
{
    size_t off, len;   /* into op->kbuf */
    uint64_t hash;     /* XXH3 of the key: compared before the bytes */
    uint64_t op_id;    /* node request in flight for this key */
    uint8_t state;     /* enum key_state */
    bool live;         /* a live value exists (read, then as the
                          handler leaves it) */
    bool live0;        /* live when read */
    bool read;         /* read: answered (ctx holds the merged clock) */
    bool write;        /* write phase: this key is written */
    bool tomb;         /* write phase: as a tombstone */
    bool own_ctx;      /* write: supersede what the coordinating replica
                          has seen (no read context) */
    bool ctype;        /* val starts with a content type (dvv.h) */
    uint64_t ts, exp;  /* read: its version; write: what to write */
    struct rk_buf val; /* read: the value; write: what to write */
    struct rk_buf obj; /* read: merged object */
    struct rk_buf ctx; /* write: context (clock-only dvv encoding) */
};

struct op
{
    struct op_machine *m;
    /* Actions one operation can have queued at once: EXEC, DONE, REPLY or
     * DISPATCH, and the RESUME of the progress that answered it. */
#define OP_ACTS_PER_OP 4

    enum op_kind kind;
    enum op_phase phase;
    struct op_client *client;
    const void *cmd; /* the driver's */
    uint64_t stamp;  /* the driver's */
    unsigned flags;  /* OP_F_* */
    struct route_quorum over;
    uint32_t timeout_ms;
    size_t argc;
    struct resp_arg *argv; /* copied into one allocation */
    size_t argv_cap;       /* bytes of the argv allocation */
    struct op_key *keys;
    size_t nkeys;
    size_t keys_cap;  /* slots allocated */
    size_t keys_init; /* slots whose buffers are initialised (a pooled
                         operation keeps them between commands) */
    struct rk_buf kbuf;
    size_t next;     /* next key to start in this phase */
    size_t inflight; /* node requests in flight */
    bool failed;
    char err[NODE_MESSAGE_MAX];
    struct rk_buf reply; /* captured handler output */
    bool queued;         /* on m->ready */
    bool stalled;        /* start refused RK_EBUSY with nothing in flight */
    bool waiting;        /* not started: shares a key with an earlier
                            unfinished operation of the same client */
    bool finished;       /* reply (or err) final; waits for its turn */
    bool barrier;        /* later input waits until this one is answered */
    struct op *rnext;    /* m->ready */
    struct op *snext;    /* m->stalled */
    struct op *cnext;    /* the client's FIFO */
    struct op *pnext;    /* m->pool */
};

struct op_machine
{
    struct op_config cfg;
    bool in_process;
    struct op *ready;
    struct op *stalled;
    struct op *pool; /* at most OP_POOL */
    size_t n_pool;
    size_t n_live; /* operations not freed or pooled */
    /* Actions not yet taken: a ring, kept at OP_ACTS_PER_OP per live
     * operation or more (op_new), so emitting never allocates. */
    struct op_action *acts;
    size_t acts_head, acts_len, acts_cap; /* cap: 0 or a power of two */
    struct op *replied; /* op of the REPLY taken last: freed at the next
                           op_next_action */
};

/* Sorts big key lists (over 64 keys) and drops their duplicates (small
 * ones are deduplicated as they are added); op_find relies on it. */
void op__dedupe_keys(struct op *op);

/* Keeps a read answer in k: the merged object (bounded as the replicas
 * will store it under set), its clock as the write context, its live
 * winner for the handler.  RK_OK, RK_ENOMEM, or a decode error. */
int op__take_read(struct op_machine *m,
                  struct op_key *k,
                  const struct node_result *r,
                  const struct node_settings *set);

#endif /* RINGKV_CLUSTER_OP_INTERNAL_H */
