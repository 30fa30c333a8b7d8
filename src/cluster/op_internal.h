/*
 * op_internal.h - what op.c (phases, per-client order) and op_keys.c (keys,
 * read answers, the coordinated keyspace) share.  Nothing outside the
 * op module includes this.  Thread: the machine's loop only.
 */
#ifndef RINGKV_CLUSTER_OP_INTERNAL_H
#define RINGKV_CLUSTER_OP_INTERNAL_H

#include "cluster/chunk.h"
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
    PH_FETCH, /* blocks of chunked values read (op_chunk.c) */
    PH_EXEC,  /* OP_ACT_EXEC emitted, op_exec_done not yet called */
    PH_STORE, /* blocks of large values written (op_chunk.c) */
    PH_WRITE,
    PH_DONE,
};

#define OP_CHUNK_WINDOW 8 /* block requests in flight per operation */

/* The chunk phases' state (op_chunk.c), allocated when first needed. */
struct op_chunks
{
    size_t key;                /* FETCH/STORE: index of the key worked on */
    uint32_t next, done;       /* blocks started / answered */
    struct chunk_manifest man; /* FETCH: views mbuf; STORE: sizes and id
                                  (hashes unset) */
    struct rk_buf mbuf;        /* manifest bytes */
    struct rk_buf data;        /* FETCH: the value being assembled, in a
                                  RESP bulk frame */
    size_t hdr;                /* FETCH: bytes of the frame's header */
    struct rk_buf hashes;      /* STORE: n_blocks x u64, native order */
    struct
    {
        uint64_t op_id;
        uint32_t block;
    } io[OP_CHUNK_WINDOW];
    unsigned n_io;
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
    bool chunked;      /* read: val is the live version's manifest (until
                          FETCH); write: val is a manifest (after STORE) */
    bool had_chunked;  /* the read object holds a manifest */
    bool had_counter;  /* the read object holds counter siblings: a write
                          with its context carries their counts on
                          (PEER_KV_COUNTER_STATE) */
    uint64_t ts, exp;  /* read: its version; write: what to write */
    struct rk_buf val; /* read: the value; write: what to write */
    const char *vview; /* write: when set, the value is these bytes of
                          op->owned instead of val (op_key_put spares a
                          copy of a large argument); no content type */
    size_t vview_len;
    struct rk_buf frame; /* FETCH: "$<len>\r\n" value "\r\n", the value
                            vview views (op_key_take_frame moves it) */
    struct rk_buf obj;   /* read: merged object */
    struct rk_buf ctx;   /* write: context (clock-only dvv encoding) */
    bool counter;        /* write: an increment of `delta` (op_key_incr) */
    int64_t delta;
    unsigned char cid[16]; /* the increment's id (duplicates applied once) */
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
    struct rk_buf reply;  /* captured handler output */
    struct op_chunks *ch; /* op_chunk.c's, or NULL */
    char *owned;          /* op_create_owned: the bytes argv points into */
    size_t owned_len;
    bool queued;      /* on m->ready */
    bool stalled;     /* start refused RK_EBUSY with nothing in flight */
    bool waiting;     /* not started: shares a key with an earlier
                         unfinished operation of the same client */
    bool finished;    /* reply (or err) final; waits for its turn */
    bool barrier;     /* later input waits until this one is answered */
    struct op *rnext; /* m->ready */
    struct op *snext; /* m->stalled */
    struct op *cnext; /* the client's FIFO */
    struct op *pnext; /* m->pool */
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
    struct op_chunk_stats cstats;
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

/* A node request start answered RK_EBUSY: settles the port and, when
 * nothing of op is in flight, parks op until op_retry_stalled. */
void op__stall(struct op_machine *m, struct op *op);

/* The value bytes of k (its view, or val). */
static inline const char *op__kval(const struct op_key *k)
{
    return k->vview ? k->vview : k->val.base;
}

static inline size_t op__kval_len(const struct op_key *k)
{
    return k->vview ? k->vview_len : k->val.len;
}

/* ---- op_chunk.c ---- */

/* The configured block size and threshold (defaults when 0). */
uint32_t op__chunk_size(const struct op_machine *m);
uint64_t op__chunk_threshold(const struct op_machine *m);

/* Enters phase (PH_FETCH or PH_STORE): true when some key needs it (its
 * first key is set up; op->failed on error), false when none does (the
 * phase is left as it was). */
bool op__chunk_phase_begin(struct op_machine *m,
                           struct op *op,
                           enum op_phase phase);

/* Starts block requests up to OP_CHUNK_WINDOW. */
void op__chunk_start_more(struct op_machine *m, struct op *op);

/* A node result: true when it answered one of op's block requests. */
bool op__chunk_on_result(struct op_machine *m,
                         struct op *op,
                         const struct node_result *r);

/* Nothing is in flight: finishes the key whose blocks are all answered
 * and sets up the next one.  true while the phase has work left, false
 * when it is over (or op failed). */
bool op__chunk_step(struct op_machine *m, struct op *op);

/* Frees op's chunk state. */
void op__chunk_free(struct op *op);

#endif /* RINGKV_CLUSTER_OP_INTERNAL_H */
