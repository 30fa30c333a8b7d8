/*
 * test_replica.c - cluster/replica: keys kept as versioned objects
 * (cluster/dvv.h) in the local engine (issue 5; the contract and the
 * stored form are in replica.h).
 *
 * Covered: the stored form (object bit, largest sibling ts, the deleted
 * bit, expiry plus grace), legacy records written by a standalone node,
 * KV_PUT merges (idempotent, independent of order, no concurrent sibling
 * dropped), KV_GET answers, KV_UPDATE writes (contexts, dots above the
 * floor, one-shot fallback actors, tombstones, rejected input), the lww
 * policy and the bounds, replica_winner, engine errors in replies, a
 * bitcask reopen and every allocation failure (STYLE.md 1.7).
 *
 * Most tests use the memory engine; the reopen test uses bitcask in a
 * temporary directory.  The order-independence test applies one set of
 * objects in many random orders (with repetitions) under fixed seeds and
 * requires the stored bytes to equal the merge of them all every time;
 * RK_REPLICA_SEED=<n> replays one seed.
 */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "cluster/chunk.h"
#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/hlc.h"
#include "storage/engine.h"

#define ACTOR 7 /* the replica's own actor in most tests */

/* ---- engines ------------------------------------------------------------- */

static struct engine *open_engine(const char *kind,
                                  const char *dir,
                                  uint64_t max_value_len)
{
    struct engine_opts o;
    engine_opts_init(&o);
    o.dir = dir;
    o.sync_mode = ENGINE_SYNC_NONE;
    o.merge_disabled = true;
    if (max_value_len) {
        o.max_value_len = max_value_len;
    }
    struct engine *e = NULL;
    char err[256] = "";
    int rc = engine_open(kind, &o, &e, err, sizeof(err));
    if (rc != RK_OK) {
        fprintf(stderr, "engine_open(%s): %s: %s\n", kind, rk_errname(rc), err);
    }
    assert_int_equal(rc, RK_OK);
    return e;
}

static struct engine *open_memory(void)
{
    return open_engine("memory", "unused", 0);
}

static uint64_t engine_writes(struct engine *e)
{
    struct engine_stats s;
    engine_stats(e, &s);
    return s.writes;
}

static int rm_entry(const char *path,
                    const struct stat *sb,
                    int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh, not yet created directory path in out: 0, or -1. */
static int tmpdir_make(char *out, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/rk-replica-%d-XXXXXX", base ? base : "/tmp",
             (int)getpid());
    if (mkdtemp(out) == NULL) {
        return -1;
    }
    rmdir(out); /* the engine creates it */
    return 0;
}

static void tmpdir_remove(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- fixture: a replica configuration ------------------------------------ */

/* Holds pointers into itself: never copy one. */
struct fx
{
    struct engine *e;
    uint64_t floor, oneshot;
    struct replica_stats stats;
    struct replica_cfg cfg;
};

static void fx_init(struct fx *f, struct engine *e)
{
    memset(f, 0, sizeof(*f));
    f->e = e;
    f->cfg = (struct replica_cfg){
        .actor = ACTOR,
        .floor = &f->floor,
        .oneshot = &f->oneshot,
        .grace_ms = REPLICA_DEFAULT_GRACE_MS,
        .stats = &f->stats,
    };
}

/* ---- objects ------------------------------------------------------------- */

/*
 * Adds a write by `actor` to o (dvv_update with context ctx: NULL for
 * none, o for o's own clock).  val NULL: a tombstone.  floor: as dvv.h.
 */
static struct dvv_dot obj_write(struct dvv_obj *o,
                                const struct dvv_obj *ctx,
                                uint64_t actor,
                                uint64_t floor,
                                const char *val,
                                uint64_t ts,
                                uint64_t exp)
{
    struct dvv_write w = {val,         val ? strlen(val) : 0,
                          ts,          val ? exp : 0,
                          val == NULL, false,
                          false,       false};
    struct dvv_dot d;
    assert_int_equal(dvv_update(o, ctx, actor, floor, &w, &d), RK_OK);
    return d;
}

/* A fresh object holding one write by actor (dot (actor, 1)). */
static void obj_one(struct dvv_obj *o,
                    uint64_t actor,
                    const char *val,
                    uint64_t ts,
                    uint64_t exp)
{
    dvv_init(o);
    obj_write(o, NULL, actor, 0, val, ts, exp);
}

static void encode(const struct dvv_obj *o, struct rk_buf *out)
{
    rk_buf_clear(out);
    assert_int_equal(dvv_encode(o, out), RK_OK);
}

/* The binary context of o (its clock, no siblings), as KV_UPDATE takes it:
 * the client text form decoded, then encoded (what the server does). */
static void ctx_of(const struct dvv_obj *o, struct rk_buf *out)
{
    struct rk_buf text;
    rk_buf_init(&text);
    assert_int_equal(dvv_context_encode(o, &text), RK_OK);
    struct dvv_obj c;
    dvv_init(&c);
    assert_int_equal(dvv_context_decode(&c, text.base, text.len), RK_OK);
    assert_int_equal(c.n_sibs, 0);
    encode(&c, out);
    dvv_fini(&c);
    rk_buf_fini(&text);
}

/* Index of the sibling holding value val (NULL: a tombstone), or -1. */
static long sib_of(const struct dvv_obj *o, const char *val)
{
    for (size_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sibling *s = &o->sibs[i];
        if (val == NULL ? s->tombstone
                        : !s->tombstone && s->vlen == strlen(val) &&
                              memcmp(dvv_value(o, i), val, s->vlen) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static void assert_bytes(const struct rk_buf *a, const void *p, size_t len)
{
    assert_int_equal(a->len, len);
    if (len) {
        assert_memory_equal(a->base, p, len);
    }
}

/* ---- stored records ------------------------------------------------------ */

/* The raw engine record of key (bytes into val, cleared first). */
static int stored(struct fx *f,
                  const char *key,
                  struct rk_buf *val,
                  struct engine_meta *m)
{
    rk_buf_clear(val);
    return engine_get(f->e, key, strlen(key), val, m);
}

static void read_obj(struct fx *f, const char *key, struct dvv_obj *o)
{
    assert_int_equal(replica_read(f->e, key, strlen(key), o), RK_OK);
}

/* Writes a record the way a standalone node does (no object flag), with
 * meta flags `flags`. */
static void put_plain(struct fx *f,
                      const char *key,
                      const char *val,
                      uint64_t ts,
                      uint64_t exp,
                      uint8_t flags)
{
    struct engine_meta m = {
        .timestamp = ts, .expire_at_ms = exp, .flags = flags};
    assert_int_equal(
        engine_put(f->e, key, strlen(key), val, strlen(val), &m, NULL), RK_OK);
}

/* The same without flags. */
static void put_legacy(struct fx *f,
                       const char *key,
                       const char *val,
                       uint64_t ts,
                       uint64_t exp)
{
    put_plain(f, key, val, ts, exp, 0);
}

/* ---- messages ------------------------------------------------------------ */

/* KV_PUT of len bytes at p; checks the reply's type and req_id. */
static int put_bytes(struct fx *f,
                     const char *key,
                     const void *p,
                     size_t len,
                     bool *changed,
                     uint64_t *seq)
{
    struct peer_kv_put req = {
        .req_id = 0x1234,
        .key = {key, strlen(key)},
        .object = {p, len},
    };
    struct peer_msg reply;
    memset(&reply, 0xa5, sizeof(reply));
    replica_handle_put(f->e, &f->cfg, &req, &reply, changed, seq);
    assert_int_equal(reply.type, PEER_KV_PUT_REPLY);
    assert_int_equal(reply.kv_put_reply.req_id, 0x1234);
    return reply.kv_put_reply.status;
}

static int put_obj(struct fx *f,
                   const char *key,
                   const struct dvv_obj *o,
                   bool *changed,
                   uint64_t *seq)
{
    struct rk_buf b;
    rk_buf_init(&b);
    encode(o, &b);
    int rc = put_bytes(f, key, b.base, b.len, changed, seq);
    rk_buf_fini(&b);
    return rc;
}

/* A KV_UPDATE request; ctx (may be NULL) is a binary context. */
static struct peer_kv_update mk_update(const char *key,
                                       const struct rk_buf *ctx,
                                       const char *val,
                                       uint64_t ts,
                                       uint32_t flags)
{
    struct peer_kv_update u = {
        .req_id = 0x5678,
        .key = {key, strlen(key)},
        .timestamp = ts,
        .flags = flags,
    };
    if (ctx) {
        u.context = (struct peer_bytes){ctx->base, ctx->len};
    }
    if (val) {
        u.value = (struct peer_bytes){val, strlen(val)};
    }
    return u;
}

/*
 * Runs a KV_UPDATE and checks the reply: type, req_id; on RK_OK the reply
 * object is exactly the stored record (decoded into res, may be NULL) and
 * *seq is set; on an error the reply carries no object and *seq is 0.
 */
static int run_update(struct fx *f,
                      const struct peer_kv_update *u,
                      struct dvv_obj *res,
                      uint64_t *seq_out)
{
    struct rk_buf out, raw;
    rk_buf_init(&out);
    rk_buf_init(&raw);
    assert_int_equal(rk_buf_append(&out, "junk", 4), RK_OK);
    struct peer_msg reply;
    memset(&reply, 0xa5, sizeof(reply));
    uint64_t seq = 99;
    replica_handle_update(f->e, &f->cfg, u, &out, &reply, &seq);
    assert_int_equal(reply.type, PEER_KV_UPDATE_REPLY);
    const struct peer_kv_update_reply *r = &reply.kv_update_reply;
    assert_int_equal(r->req_id, u->req_id);
    if (r->status == RK_OK) {
        assert_true(seq > 0);
        assert_ptr_equal(r->object.ptr, out.base);
        assert_int_equal(r->object.len, out.len);
        struct engine_meta m;
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)u->key.len, u->key.ptr);
        assert_int_equal(stored(f, key, &raw, &m), RK_OK);
        assert_true(replica_meta_is_object(&m));
        assert_bytes(&raw, r->object.ptr, r->object.len);
        if (res) {
            assert_int_equal(dvv_decode(res, r->object.ptr, r->object.len),
                             RK_OK);
        }
    } else {
        assert_int_equal(seq, 0);
        assert_int_equal(r->object.len, 0);
    }
    if (seq_out) {
        *seq_out = seq;
    }
    rk_buf_fini(&out);
    rk_buf_fini(&raw);
    return r->status;
}

static int update(struct fx *f,
                  const char *key,
                  const struct rk_buf *ctx,
                  const char *val,
                  uint64_t ts,
                  uint32_t flags,
                  struct dvv_obj *res)
{
    struct peer_kv_update u = mk_update(key, ctx, val, ts, flags);
    return run_update(f, &u, res, NULL);
}

/* KV_GET of key; the reply object (on RK_OK) is copied into obj. */
static int get(struct fx *f, const char *key, struct rk_buf *obj)
{
    struct peer_kv_get req = {.req_id = 0x9abc, .key = {key, strlen(key)}};
    struct rk_buf out;
    rk_buf_init(&out);
    assert_int_equal(rk_buf_append(&out, "junk", 4), RK_OK);
    struct peer_msg reply;
    memset(&reply, 0xa5, sizeof(reply));
    replica_handle_get(f->e, NULL, &req, &out, &reply);
    assert_int_equal(reply.type, PEER_KV_GET_REPLY);
    const struct peer_kv_get_reply *r = &reply.kv_get_reply;
    assert_int_equal(r->req_id, 0x9abc);
    rk_buf_clear(obj);
    if (r->status == RK_OK) {
        assert_ptr_equal(r->object.ptr, out.base);
        assert_int_equal(rk_buf_append(obj, r->object.ptr ? r->object.ptr : "",
                                       r->object.len),
                         RK_OK);
    } else {
        assert_int_equal(r->object.len, 0);
    }
    rk_buf_fini(&out);
    return r->status;
}

/* ---- stored form --------------------------------------------------------- */

static void test_replica_meta_has_object_bit_and_max_sibling_ts(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, b, o;
    obj_one(&a, 1, "old", 10, 0);
    obj_one(&b, 2, "new", 30, 0);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &b, NULL, NULL), RK_OK);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    struct rk_buf raw;
    rk_buf_init(&raw);
    struct engine_meta m;
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    /* The ts is the largest sibling ts, whatever order they arrived in. */
    assert_true(m.timestamp == 30);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT);
    assert_int_equal(m.type, OBJTYPE_STRING);
    assert_true(replica_meta_is_object(&m));
    assert_false(replica_meta_is_tombstone(&m));
    assert_int_equal(m.expire_at_ms, 0);
    assert_int_equal(m.value_len, raw.len);
    /* The record is the object's canonical encoding. */
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 2);
    struct rk_buf enc;
    rk_buf_init(&enc);
    encode(&o, &enc);
    assert_bytes(&raw, enc.base, enc.len);
    rk_buf_fini(&enc);
    rk_buf_fini(&raw);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&o);
    engine_close(f.e);
}

static void test_replica_meta_deleted_exactly_when_all_siblings_are_tombstones(
    void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct rk_buf raw;
    rk_buf_init(&raw);
    struct engine_meta m;
    /* One tombstone. */
    struct dvv_obj t1, t2, v;
    obj_one(&t1, 1, NULL, 40, 0);
    assert_int_equal(put_obj(&f, "k", &t1, NULL, NULL), RK_OK);
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_true(m.timestamp == 40);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT | REPLICA_FLAG_DELETED);
    assert_true(replica_meta_is_tombstone(&m));
    assert_int_equal(m.expire_at_ms, 0);
    /* Two concurrent tombstones: still deleted. */
    obj_one(&t2, 2, NULL, 50, 0);
    assert_int_equal(put_obj(&f, "k", &t2, NULL, NULL), RK_OK);
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_true(m.timestamp == 50);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT | REPLICA_FLAG_DELETED);
    assert_true(replica_meta_is_tombstone(&m));
    /* A concurrent value, even an older one, makes the key live. */
    obj_one(&v, 3, "v", 20, 0);
    assert_int_equal(put_obj(&f, "k", &v, NULL, NULL), RK_OK);
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_true(m.timestamp == 50);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT);
    assert_false(replica_meta_is_tombstone(&m));
    /* A delete over everything stored: deleted again; then a write. */
    assert_int_equal(update(&f, "k", NULL, NULL, 60,
                            PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT, NULL),
                     RK_OK);
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_true(m.timestamp == 60);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT | REPLICA_FLAG_DELETED);
    assert_true(replica_meta_is_tombstone(&m));
    assert_int_equal(
        update(&f, "k", NULL, "back", 70, PEER_KV_OWN_CONTEXT, NULL), RK_OK);
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_true(m.timestamp == 70);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT);
    assert_false(replica_meta_is_tombstone(&m));
    rk_buf_fini(&raw);
    dvv_fini(&t1);
    dvv_fini(&t2);
    dvv_fini(&v);
    engine_close(f.e);
}

/* Review of issue 5: an expired object is never dropped by the engine on
 * its own (an older copy elsewhere could then come back); the metadata
 * says when it is dead, and reaping agrees on it cluster-wide. */
static void test_replica_meta_marks_when_an_object_is_dead(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    f.cfg.grace_ms = 7000;
    struct rk_buf raw;
    rk_buf_init(&raw);
    struct engine_meta m;
    struct dvv_obj a, b, c, t, x;
    dvv_init(&x);
    /* Every sibling expires: dead from the latest expiry, no engine
     * expiry. */
    obj_one(&a, 1, "a", 10, 5000);
    obj_one(&b, 2, "b", 20, 1000);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(put_obj(&f, "k", &b, NULL, NULL), RK_OK);
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_int_equal(m.expire_at_ms, 0);
    assert_true(m.flags & REPLICA_FLAG_EXPIRING);
    assert_int_equal(hlc_physical_ms(m.timestamp), 5000);
    assert_false(replica_meta_is_tombstone(&m));
    assert_false(replica_meta_is_dead(&m, 4999));
    assert_true(replica_meta_is_dead(&m, 5000));
    read_obj(&f, "k", &x);
    assert_int_equal(replica_dead_at(&x), (uint64_t)5000 << 16);
    /* One sibling without an expiry: never dead. */
    obj_one(&c, 3, "c", 5, 0);
    assert_int_equal(put_obj(&f, "k", &c, NULL, NULL), RK_OK);
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_false(m.flags & REPLICA_FLAG_EXPIRING);
    assert_false(replica_meta_is_dead(&m, UINT64_MAX / 2));
    /* A tombstone beside an expiring value: dead from the later of the
     * two. */
    obj_one(&t, 1, "t", 10, 3000);
    obj_write(&t, NULL, 4, 0, NULL, (uint64_t)4000 << 16, 0);
    assert_int_equal(put_obj(&f, "j", &t, NULL, NULL), RK_OK);
    assert_int_equal(stored(&f, "j", &raw, &m), RK_OK);
    assert_false(replica_meta_is_tombstone(&m));
    assert_true(replica_meta_is_dead(&m, 4000));
    assert_false(replica_meta_is_dead(&m, 3999));
    assert_int_equal(m.expire_at_ms, 0);
    /* Through KV_UPDATE too; a plain value superseding it: alive. */
    struct peer_kv_update u =
        mk_update("u", NULL, "v", 10, PEER_KV_OWN_CONTEXT);
    u.expire_at_ms = 123456;
    assert_int_equal(run_update(&f, &u, NULL, NULL), RK_OK);
    assert_int_equal(stored(&f, "u", &raw, &m), RK_OK);
    assert_true(replica_meta_is_dead(&m, 123456));
    u = mk_update("u", NULL, "w", 20, PEER_KV_OWN_CONTEXT);
    assert_int_equal(run_update(&f, &u, &x, NULL), RK_OK);
    assert_int_equal(stored(&f, "u", &raw, &m), RK_OK);
    assert_false(replica_meta_is_dead(&m, UINT64_MAX / 2));
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&c);
    dvv_fini(&t);
    dvv_fini(&x);
    rk_buf_fini(&raw);
    engine_close(f.e);
}

/* ---- legacy records ------------------------------------------------------ */

static void test_replica_reads_legacy_record_as_one_legacy_sibling(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    put_legacy(&f, "k", "old", 42, 9000);
    struct engine_meta m;
    assert_int_equal(engine_get(f.e, "k", 1, NULL, &m), RK_OK);
    assert_false(replica_meta_is_object(&m));
    assert_false(replica_meta_is_tombstone(&m));
    struct dvv_obj o;
    dvv_init(&o);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(o.sibs[0].dot.actor, DVV_ACTOR_LEGACY);
    assert_int_equal(o.sibs[0].dot.counter, 1);
    assert_false(o.sibs[0].tombstone);
    assert_int_equal(o.sibs[0].ts, 42);
    assert_int_equal(o.sibs[0].expire_at_ms, 9000);
    assert_int_equal(o.sibs[0].vlen, 3);
    assert_memory_equal(dvv_value(&o, 0), "old", 3);
    assert_int_equal(o.n_clock, 1);
    assert_int_equal(dvv_counter(&o, DVV_ACTOR_LEGACY), 1);
    /* KV_GET serves that object, and it survives an encode/decode. */
    struct rk_buf got, enc;
    rk_buf_init(&got);
    rk_buf_init(&enc);
    assert_int_equal(get(&f, "k", &got), RK_OK);
    encode(&o, &enc);
    assert_bytes(&got, enc.base, enc.len);
    struct dvv_obj d;
    dvv_init(&d);
    assert_int_equal(dvv_decode(&d, got.base, got.len), RK_OK);
    assert_true(dvv_equal(&d, &o));
    /* Reading does not rewrite the record. */
    assert_int_equal(engine_writes(f.e), 1);
    /* An empty value without the marker expiry is a value. */
    put_legacy(&f, "e", "", 5, 0);
    read_obj(&f, "e", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_false(o.sibs[0].tombstone);
    assert_int_equal(o.sibs[0].vlen, 0);
    assert_int_equal(o.sibs[0].ts, 5);
    rk_buf_fini(&got);
    rk_buf_fini(&enc);
    dvv_fini(&o);
    dvv_fini(&d);
    engine_close(f.e);
}

/* A standalone record with HTTP PUT's content type (REPLICA_FLAG_CTYPE,
 * value prefixed) reads as a sibling with the type and its plain HLC; a
 * flagged record without a valid prefix is corrupt, not served. */
static void test_replica_legacy_record_with_content_type(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    put_plain(&f, "k",
              "\x04text"
              "abc",
              42, 0, REPLICA_FLAG_CTYPE);
    struct dvv_obj o;
    dvv_init(&o);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].ctype);
    assert_int_equal(o.sibs[0].ts, 42);
    size_t n = 0;
    assert_memory_equal(dvv_payload(&o, 0, &n), "abc", 3);
    assert_int_equal(n, 3);
    assert_memory_equal(dvv_ctype(&o, 0, &n), "text", 4);
    assert_int_equal(n, 4);
    put_plain(&f, "bad", "\x09text", 42, 0, REPLICA_FLAG_CTYPE);
    assert_int_equal(replica_read(f.e, "bad", 3, &o), RK_ECORRUPT);
    /* A KV_UPDATE with CTYPE stores the type with the new sibling. */
    struct peer_kv_update u = mk_update("n", NULL, NULL, 20, PEER_KV_CTYPE);
    u.value = (struct peer_bytes){"\003a/bxyz", 7};
    assert_int_equal(run_update(&f, &u, NULL, NULL), RK_OK);
    read_obj(&f, "n", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].ctype);
    assert_memory_equal(dvv_payload(&o, 0, &n), "xyz", 3);
    dvv_fini(&o);
    engine_close(f.e);
}

static void test_replica_legacy_tombstone_marker_reads_as_not_found(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    put_legacy(&f, "k", "", 42, REPLICA_TOMBSTONE_EXPIRE);
    struct engine_meta m;
    assert_int_equal(engine_get(f.e, "k", 1, NULL, &m), RK_OK);
    assert_true(replica_meta_is_tombstone(&m));
    assert_false(replica_meta_is_object(&m));
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(replica_read(f.e, "k", 1, &o), RK_ENOTFOUND);
    assert_int_equal(o.n_sibs, 0);
    struct rk_buf got;
    rk_buf_init(&got);
    assert_int_equal(get(&f, "k", &got), RK_ENOTFOUND);
    /* Only the empty value with that expiry is the marker. */
    put_legacy(&f, "v", "x", 42, REPLICA_TOMBSTONE_EXPIRE);
    assert_int_equal(engine_get(f.e, "v", 1, NULL, &m), RK_OK);
    assert_false(replica_meta_is_tombstone(&m));
    read_obj(&f, "v", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_false(o.sibs[0].tombstone);
    /* A write over the marker starts a fresh object. */
    assert_int_equal(update(&f, "k", NULL, "new", 50, 0, &o), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(o.n_clock, 1);
    assert_int_equal(o.sibs[0].dot.actor, ACTOR);
    rk_buf_fini(&got);
    dvv_fini(&o);
    engine_close(f.e);
}

static void test_replica_put_over_legacy_record_keeps_it_when_concurrent(
    void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    put_legacy(&f, "k", "old", 42, 0);
    struct dvv_obj in, o;
    obj_one(&in, 5, "new", 10, 0);
    dvv_init(&o);
    bool changed = false;
    assert_int_equal(put_obj(&f, "k", &in, &changed, NULL), RK_OK);
    assert_true(changed);
    struct engine_meta m;
    assert_int_equal(engine_get(f.e, "k", 1, NULL, &m), RK_OK);
    assert_true(replica_meta_is_object(&m));
    assert_true(m.timestamp == 42);
    assert_int_equal(m.flags, REPLICA_FLAG_OBJECT);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 2);
    long l = sib_of(&o, "old");
    assert_true(l >= 0);
    assert_int_equal(o.sibs[l].dot.actor, DVV_ACTOR_LEGACY);
    assert_int_equal(o.sibs[l].dot.counter, 1);
    assert_int_equal(o.sibs[l].ts, 42);
    assert_true(sib_of(&o, "new") >= 0);
    /* An object written from a read of the legacy value supersedes it. */
    put_legacy(&f, "j", "old", 42, 0);
    struct dvv_obj seen;
    dvv_init(&seen);
    read_obj(&f, "j", &seen);
    obj_write(&seen, &seen, 5, 0, "over", 50, 0);
    assert_int_equal(put_obj(&f, "j", &seen, &changed, NULL), RK_OK);
    assert_true(changed);
    read_obj(&f, "j", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_true(sib_of(&o, "over") == 0);
    assert_int_equal(dvv_counter(&o, DVV_ACTOR_LEGACY), 1);
    dvv_fini(&in);
    dvv_fini(&o);
    dvv_fini(&seen);
    engine_close(f.e);
}

/* ---- KV_PUT -------------------------------------------------------------- */

static void test_replica_put_is_idempotent(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a;
    obj_one(&a, 1, "a", 10, 0);
    bool changed = false;
    uint64_t seq = 0;
    assert_int_equal(put_obj(&f, "k", &a, &changed, &seq), RK_OK);
    assert_true(changed);
    assert_true(seq > 0);
    assert_int_equal(f.stats.merges_written, 1);
    struct rk_buf before, after;
    rk_buf_init(&before);
    rk_buf_init(&after);
    struct engine_meta m1, m2;
    assert_int_equal(stored(&f, "k", &before, &m1), RK_OK);
    uint64_t writes = engine_writes(f.e);
    /* Again, and again with NULL outputs: nothing written. */
    changed = true;
    seq = 99;
    assert_int_equal(put_obj(&f, "k", &a, &changed, &seq), RK_OK);
    assert_false(changed);
    assert_int_equal(seq, 0);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(engine_writes(f.e), writes);
    assert_int_equal(f.stats.merges_written, 1);
    assert_int_equal(stored(&f, "k", &after, &m2), RK_OK);
    assert_bytes(&after, before.base, before.len);
    assert_memory_equal(&m1, &m2, sizeof(m1));
    /* An object without siblings is refused (a peer never sends one):
     * stored, it would be a key that reads as nothing yet counts as live. */
    struct dvv_obj empty;
    dvv_init(&empty);
    uint64_t bad = f.stats.bad_objects;
    assert_int_equal(put_obj(&f, "none", &empty, &changed, &seq), RK_EINVAL);
    assert_false(changed);
    assert_int_equal(seq, 0);
    assert_int_equal(f.stats.bad_objects, bad + 1);
    assert_int_equal(engine_get(f.e, "none", 4, NULL, NULL), RK_ENOTFOUND);
    assert_int_equal(engine_writes(f.e), writes);
    rk_buf_fini(&before);
    rk_buf_fini(&after);
    dvv_fini(&a);
    dvv_fini(&empty);
    engine_close(f.e);
}

/* What the stored hook saw (issue 14 item 4: anti-entropy trees). */
struct hook_log
{
    int calls;
    uint64_t old_hash, new_hash;
};

static void hook_cb(void *data,
                    struct engine *e,
                    const void *key,
                    size_t klen,
                    uint64_t old_hash,
                    uint64_t new_hash)
{
    (void)e;
    (void)key;
    (void)klen;
    struct hook_log *h = data;
    h->calls++;
    h->old_hash = old_hash;
    h->new_hash = new_hash;
}

/* XXH3 of key's stored record (0: none). */
static uint64_t record_hash_of(struct fx *f, const char *key)
{
    struct rk_buf v;
    rk_buf_init(&v);
    struct engine_meta m;
    uint64_t h = stored(f, key, &v, &m) == RK_OK
                     ? XXH3_64bits(v.base ? v.base : "", v.len)
                     : 0;
    rk_buf_fini(&v);
    return h;
}

/* replica_cfg.stored is called once per record written, with the hashes
 * of the record before (0: none) and after; not when nothing is written
 * (an idempotent merge). */
static void test_replica_stored_hook_sees_every_write_with_its_hashes(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct hook_log h = {0};
    f.cfg.stored = hook_cb;
    f.cfg.stored_data = &h;
    struct dvv_obj a, b, res;
    obj_one(&a, 1, "a", 10, 0);
    obj_one(&b, 2, "b", 11, 0);
    dvv_init(&res);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.old_hash, 0);
    uint64_t h1 = record_hash_of(&f, "k");
    assert_int_equal(h.new_hash, h1);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(h.calls, 1); /* unchanged: no write, no call */
    assert_int_equal(put_obj(&f, "k", &b, NULL, NULL), RK_OK);
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.old_hash, h1);
    uint64_t h2 = record_hash_of(&f, "k");
    assert_int_equal(h.new_hash, h2);
    assert_int_equal(update(&f, "k", NULL, "c", 12, PEER_KV_OWN_CONTEXT, &res),
                     RK_OK);
    assert_int_equal(h.calls, 3);
    assert_int_equal(h.old_hash, h2);
    assert_int_equal(h.new_hash, record_hash_of(&f, "k"));
    assert_int_equal(
        update(&f, "new", NULL, "v", 13, PEER_KV_OWN_CONTEXT, &res), RK_OK);
    assert_int_equal(h.calls, 4);
    assert_int_equal(h.old_hash, 0);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&res);
    engine_close(f.e);
}

/* ---- KV_PUT's short paths (handoff, issue 14) ---------------------------- */

/* Two concurrent writes in one object, a content type on one of them and
 * an expiry on the other: a first copy of a key as a handoff source
 * sends it. */
static void obj_two(struct dvv_obj *o)
{
    obj_one(o, 1, "a", 10, 0);
    struct dvv_obj b;
    obj_one(&b, 2, "bb", 12, 4000000000000ull);
    struct dvv_obj m;
    dvv_init(&m);
    assert_int_equal(dvv_merge(&m, o, &b), RK_OK);
    assert_int_equal(dvv_copy(o, &m), RK_OK);
    dvv_fini(&b);
    dvv_fini(&m);
}

/* A key with no record stores the received bytes as they are, with the
 * meta replica_store gives the same object, and the stored hook sees the
 * write (old hash 0, new hash of those bytes). */
static void test_replica_put_absent_key_stores_the_received_bytes(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct hook_log h = {0};
    f.cfg.stored = hook_cb;
    f.cfg.stored_data = &h;
    struct dvv_obj objs[3];
    obj_two(&objs[0]);
    obj_one(&objs[1], 3, NULL, 20, 0);   /* a tombstone */
    obj_one(&objs[2], 4, "e", 30, 5000); /* every value expiring */
    struct rk_buf enc, got, ref;
    rk_buf_init(&enc);
    rk_buf_init(&got);
    rk_buf_init(&ref);
    for (int i = 0; i < 3; i++) {
        encode(&objs[i], &enc);
        bool changed = false;
        uint64_t seq = 0;
        int calls = h.calls;
        assert_int_equal(put_bytes(&f, "k", enc.base, enc.len, &changed, &seq),
                         RK_OK);
        assert_true(changed);
        assert_true(seq > 0);
        struct engine_meta m, mref;
        assert_int_equal(stored(&f, "k", &got, &m), RK_OK);
        assert_bytes(&got, enc.base, enc.len);
        assert_int_equal(h.calls, calls + 1);
        assert_int_equal(h.old_hash, 0);
        assert_int_equal(h.new_hash, XXH3_64bits(enc.base, enc.len));
        /* the general path's meta for the same object */
        assert_int_equal(replica_store(f.e, &f.cfg, "ref", 3, &objs[i], NULL),
                         RK_OK);
        assert_int_equal(stored(&f, "ref", &ref, &mref), RK_OK);
        assert_bytes(&ref, enc.base, enc.len);
        assert_int_equal(m.timestamp, mref.timestamp);
        assert_int_equal(m.flags, mref.flags);
        assert_int_equal(m.type, mref.type);
        assert_int_equal(m.expire_at_ms, mref.expire_at_ms);
        assert_int_equal(m.value_len, enc.len);
        assert_int_equal(engine_delete(f.e, "k", 1, 1, NULL), RK_OK);
        assert_int_equal(engine_delete(f.e, "ref", 3, 1, NULL), RK_OK);
    }
    assert_int_equal(f.stats.merges_written, 3);
    /* Over a legacy tombstone marker (no object): the same. */
    put_legacy(&f, "t", "", 42, REPLICA_TOMBSTONE_EXPIRE);
    encode(&objs[0], &enc);
    int calls = h.calls;
    assert_int_equal(put_bytes(&f, "t", enc.base, enc.len, NULL, NULL), RK_OK);
    struct engine_meta m;
    assert_int_equal(stored(&f, "t", &got, &m), RK_OK);
    assert_bytes(&got, enc.base, enc.len);
    assert_int_equal(h.calls, calls + 1);
    assert_int_equal(h.old_hash, 0);
    for (int i = 0; i < 3; i++) {
        dvv_fini(&objs[i]);
    }
    rk_buf_fini(&enc);
    rk_buf_fini(&got);
    rk_buf_fini(&ref);
    engine_close(f.e);
}

/* An incoming object the policy or the bounds would change is not stored
 * as received, even for a key with no record: lww keeps one sibling,
 * max_sibs drops the oldest (what the general path stores). */
static void test_replica_put_absent_key_applies_policy_and_bounds(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, o;
    obj_two(&a);
    dvv_init(&o);
    struct rk_buf enc, got;
    rk_buf_init(&enc);
    rk_buf_init(&got);
    encode(&a, &enc);
    f.cfg.lww = true;
    assert_int_equal(put_bytes(&f, "k", enc.base, enc.len, NULL, NULL), RK_OK);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "bb"), 0);
    assert_int_equal(f.stats.lww_discards, 1);
    f.cfg.lww = false;
    f.cfg.max_sibs = 1;
    assert_int_equal(put_bytes(&f, "m", enc.base, enc.len, NULL, NULL), RK_OK);
    read_obj(&f, "m", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "bb"), 0);
    assert_int_equal(f.stats.bound_dropped, 1);
    struct engine_meta m;
    assert_int_equal(stored(&f, "m", &got, &m), RK_OK);
    assert_true(got.len < enc.len);
    dvv_fini(&a);
    dvv_fini(&o);
    rk_buf_fini(&enc);
    rk_buf_fini(&got);
    engine_close(f.e);
}

/* A handoff's pattern: the same key from three sources.  The first copy
 * is stored; an identical or dominated copy writes nothing (no engine
 * write, no stored hook call, *changed false, *seq 0); a concurrent copy
 * is merged into siblings, with the hook's old hash that of the record it
 * replaced. */
static void test_replica_put_second_copies_merge_or_change_nothing(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct hook_log h = {0};
    f.cfg.stored = hook_cb;
    f.cfg.stored_data = &h;
    struct dvv_obj a, old, conc, o;
    obj_one(&old, 1, "v1", 10, 0);
    dvv_init(&a);
    assert_int_equal(dvv_copy(&a, &old), RK_OK);
    obj_write(&a, &a, 1, 0, "v2", 11, 0); /* a supersedes old */
    obj_one(&conc, 2, "c", 5, 0);         /* concurrent with both */
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    uint64_t writes = engine_writes(f.e);
    int calls = h.calls;
    bool changed = true;
    uint64_t seq = 99;
    assert_int_equal(put_obj(&f, "k", &a, &changed, &seq), RK_OK);
    assert_false(changed);
    assert_int_equal(seq, 0);
    changed = true;
    assert_int_equal(put_obj(&f, "k", &old, &changed, &seq), RK_OK);
    assert_false(changed);
    assert_int_equal(seq, 0);
    assert_int_equal(engine_writes(f.e), writes);
    assert_int_equal(h.calls, calls);
    uint64_t before = record_hash_of(&f, "k");
    assert_int_equal(put_obj(&f, "k", &conc, &changed, &seq), RK_OK);
    assert_true(changed);
    assert_true(seq > 0);
    assert_int_equal(h.calls, calls + 1);
    assert_int_equal(h.old_hash, before);
    assert_int_equal(h.new_hash, record_hash_of(&f, "k"));
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 2);
    assert_true(sib_of(&o, "v2") >= 0);
    assert_true(sib_of(&o, "c") >= 0);
    assert_true(sib_of(&o, "v1") < 0);
    assert_int_equal(f.stats.siblings_created, 1);
    dvv_fini(&a);
    dvv_fini(&old);
    dvv_fini(&conc);
    dvv_fini(&o);
    engine_close(f.e);
}

/* A stored object byte-identical to the incoming one that the policy now
 * changes (lww turned on since it was stored) is written normalized, as
 * the general path does; the short path is only for normal objects. */
static void test_replica_put_identical_but_not_normal_is_normalized(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, o;
    obj_two(&a);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    f.cfg.lww = true;
    bool changed = false;
    assert_int_equal(put_obj(&f, "k", &a, &changed, NULL), RK_OK);
    assert_true(changed);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "bb"), 0);
    dvv_fini(&a);
    dvv_fini(&o);
    engine_close(f.e);
}

/* Malformed objects are refused before any short path: trailing bytes,
 * siblings out of order, a flags byte, even when the stored record holds
 * exactly the same bytes (a record that does not decode), and for a key
 * with no record; nothing is written. */
static void test_replica_put_refuses_malformed_before_short_paths(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a;
    obj_two(&a);
    struct rk_buf enc, bad;
    rk_buf_init(&enc);
    rk_buf_init(&bad);
    encode(&a, &enc);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    /* trailing byte */
    rk_buf_clear(&bad);
    assert_int_equal(rk_buf_append(&bad, enc.base, enc.len), RK_OK);
    assert_int_equal(rk_buf_append(&bad, "x", 1), RK_OK);
    uint64_t writes = engine_writes(f.e);
    bool changed = true;
    assert_int_equal(put_bytes(&f, "k", bad.base, bad.len, &changed, NULL),
                     RK_EINVAL);
    assert_false(changed);
    assert_int_equal(put_bytes(&f, "new", bad.base, bad.len, NULL, NULL),
                     RK_EINVAL);
    /* a nonzero header flags byte */
    rk_buf_clear(&bad);
    assert_int_equal(rk_buf_append(&bad, enc.base, enc.len), RK_OK);
    bad.base[1] = 1;
    assert_int_equal(put_bytes(&f, "new", bad.base, bad.len, NULL, NULL),
                     RK_EINVAL);
    /* the two siblings swapped: out of order */
    rk_buf_clear(&bad);
    size_t s0 = DVV_HDR + a.n_clock * DVV_CLOCK_ENTRY;
    size_t l0 = DVV_SIB_HDR + a.sibs[0].vlen;
    assert_int_equal(rk_buf_append(&bad, enc.base, s0), RK_OK);
    assert_int_equal(rk_buf_append(&bad, enc.base + s0 + l0, enc.len - s0 - l0),
                     RK_OK);
    assert_int_equal(rk_buf_append(&bad, enc.base + s0, l0), RK_OK);
    assert_int_equal(bad.len, enc.len);
    assert_int_equal(put_bytes(&f, "new", bad.base, bad.len, NULL, NULL),
                     RK_EINVAL);
    /* a stored "object" that does not decode, and the same bytes again */
    struct engine_meta m = {.timestamp = 1, .flags = REPLICA_FLAG_OBJECT};
    assert_int_equal(engine_put(f.e, "c", 1, bad.base, bad.len, &m, NULL),
                     RK_OK);
    writes = engine_writes(f.e);
    assert_int_equal(put_bytes(&f, "c", bad.base, bad.len, NULL, NULL),
                     RK_EINVAL);
    assert_int_equal(engine_writes(f.e), writes);
    assert_int_equal(engine_get(f.e, "new", 3, NULL, NULL), RK_ENOTFOUND);
    assert_int_equal(f.stats.bad_objects, 5);
    dvv_fini(&a);
    rk_buf_fini(&enc);
    rk_buf_fini(&bad);
    engine_close(f.e);
}

static void test_replica_put_keeps_concurrent_and_drops_dominated(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, b, c, o;
    obj_one(&a, 1, "a", 10, 0);
    obj_one(&b, 2, "b", 5, 0); /* older, but concurrent: kept */
    dvv_init(&c);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(put_obj(&f, "k", &b, NULL, NULL), RK_OK);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 2);
    assert_true(sib_of(&o, "a") >= 0);
    assert_true(sib_of(&o, "b") >= 0);
    /* c saw a and b: it replaces both. */
    assert_int_equal(dvv_copy(&c, &o), RK_OK);
    obj_write(&c, &c, 3, 0, "c", 20, 0);
    bool changed = false;
    assert_int_equal(put_obj(&f, "k", &c, &changed, NULL), RK_OK);
    assert_true(changed);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "c"), 0);
    /* a and b arriving late change nothing. */
    uint64_t seq = 99;
    assert_int_equal(put_obj(&f, "k", &a, &changed, &seq), RK_OK);
    assert_false(changed);
    assert_int_equal(seq, 0);
    assert_int_equal(put_obj(&f, "k", &b, &changed, NULL), RK_OK);
    assert_false(changed);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(f.stats.merges_written, 3);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&c);
    dvv_fini(&o);
    engine_close(f.e);
}

static void test_replica_put_result_is_independent_of_order(void **st)
{
    (void)st;
    /* a and b concurrent; c supersedes a.  Every order: {b, c}. */
    struct dvv_obj objs[3];
    obj_one(&objs[0], 1, "a", 1, 0);
    obj_one(&objs[1], 2, "b", 2, 0);
    dvv_init(&objs[2]);
    assert_int_equal(dvv_copy(&objs[2], &objs[0]), RK_OK);
    obj_write(&objs[2], &objs[2], 1, 0, "c", 3, 0);
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    struct rk_buf first, raw;
    rk_buf_init(&first);
    rk_buf_init(&raw);
    struct engine_meta m0 = {0}, m;
    for (int p = 0; p < 6; p++) {
        struct fx f;
        fx_init(&f, open_memory());
        for (int i = 0; i < 3; i++) {
            assert_int_equal(put_obj(&f, "k", &objs[perms[p][i]], NULL, NULL),
                             RK_OK);
        }
        assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
        if (p == 0) {
            assert_int_equal(rk_buf_append(&first, raw.base, raw.len), RK_OK);
            m0 = m;
            struct dvv_obj o;
            dvv_init(&o);
            read_obj(&f, "k", &o);
            assert_int_equal(o.n_sibs, 2);
            assert_true(sib_of(&o, "b") >= 0);
            assert_true(sib_of(&o, "c") >= 0);
            dvv_fini(&o);
        } else {
            assert_bytes(&raw, first.base, first.len);
            assert_memory_equal(&m, &m0, sizeof(m));
        }
        engine_close(f.e);
    }
    rk_buf_fini(&first);
    rk_buf_fini(&raw);
    for (int i = 0; i < 3; i++) {
        dvv_fini(&objs[i]);
    }
}

/* ---- order independence over random histories ---------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

#define OI_WRITES 16
#define OI_ACTORS 3
#define OI_ORDERS 30

/*
 * Builds OI_WRITES objects: write i is made at a replica that has seen a
 * random subset of the earlier objects, with no context, the context of
 * an earlier object (read elsewhere) or its own clock, by a random actor above
 * that actor's floor (so dots are never reused) and HLC ts i + 1 (causally
 * consistent).
 */
static void oi_history(uint64_t *rng, struct dvv_obj *objs)
{
    uint64_t floors[OI_ACTORS + 1] = {0};
    for (int i = 0; i < OI_WRITES; i++) {
        dvv_init(&objs[i]);
        for (int j = 0; j < i; j++) {
            if (rng_next(rng) % 3 == 0) {
                assert_int_equal(dvv_merge_into(&objs[i], &objs[j]), RK_OK);
            }
        }
        uint64_t actor = 1 + rng_next(rng) % OI_ACTORS;
        uint64_t how = rng_next(rng) % 3;
        struct dvv_obj ctx;
        dvv_init(&ctx);
        if (how == 1 && i > 0) {
            /* the client read another replica's (older) copy */
            const struct dvv_obj *src = &objs[rng_next(rng) % (uint64_t)i];
            assert_int_equal(dvv_copy(&ctx, src), RK_OK);
        }
        char v[16];
        snprintf(v, sizeof(v), "w%d", i);
        bool tomb = rng_next(rng) % 5 == 0;
        struct dvv_dot d =
            obj_write(&objs[i], how == 2 ? &objs[i] : &ctx, actor,
                      floors[actor], tomb ? NULL : v, (uint64_t)i + 1, 0);
        floors[actor] = d.counter;
        dvv_fini(&ctx);
    }
}

static void oi_run(uint64_t seed, bool lww)
{
    printf("# seed %" PRIu64 " lww %d (RK_REPLICA_SEED=%" PRIu64 " replays)\n",
           seed, (int)lww, seed);
    uint64_t rng = seed;
    struct dvv_obj objs[OI_WRITES];
    oi_history(&rng, objs);
    /* Expected: the merge of all, with the policy applied once. */
    struct dvv_obj all;
    dvv_init(&all);
    for (int i = 0; i < OI_WRITES; i++) {
        assert_int_equal(dvv_merge_into(&all, &objs[i]), RK_OK);
    }
    if (lww) {
        dvv_lww(&all);
    }
    struct rk_buf want, raw;
    rk_buf_init(&want);
    rk_buf_init(&raw);
    encode(&all, &want);
    int order[OI_WRITES * 2];
    for (int round = 0; round < OI_ORDERS; round++) {
        int n = 0;
        for (int i = 0; i < OI_WRITES; i++) {
            order[n++] = i;
            if (rng_next(&rng) % 4 == 0) {
                order[n++] = i;
            }
        }
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rng_next(&rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        struct fx f;
        fx_init(&f, open_memory());
        f.cfg.lww = lww;
        for (int i = 0; i < n; i++) {
            assert_int_equal(put_obj(&f, "k", &objs[order[i]], NULL, NULL),
                             RK_OK);
        }
        struct engine_meta m;
        assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
        assert_bytes(&raw, want.base, want.len);
        assert_true(m.timestamp == dvv_max_ts(&all));
        assert_int_equal(
            m.flags, REPLICA_FLAG_OBJECT |
                         (dvv_all_tombstones(&all) ? REPLICA_FLAG_DELETED : 0));
        engine_close(f.e);
    }
    rk_buf_fini(&want);
    rk_buf_fini(&raw);
    dvv_fini(&all);
    for (int i = 0; i < OI_WRITES; i++) {
        dvv_fini(&objs[i]);
    }
}

static void test_replica_put_random_orders_store_the_same_bytes(void **st)
{
    (void)st;
    const char *env = getenv("RK_REPLICA_SEED");
    if (env != NULL) {
        oi_run(strtoull(env, NULL, 10), false);
        oi_run(strtoull(env, NULL, 10), true);
        return;
    }
    for (uint64_t seed = 1; seed <= 20; seed++) {
        oi_run(seed, false);
        oi_run(seed, true);
    }
}

static void test_replica_put_rejects_empty_key_and_undecodable_objects(
    void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a;
    obj_one(&a, 1, "a", 10, 0);
    struct rk_buf good, bad;
    rk_buf_init(&good);
    rk_buf_init(&bad);
    encode(&a, &good);
    bool changed = true;
    uint64_t seq = 99;
    /* Empty key: rejected before the object is looked at. */
    assert_int_equal(put_bytes(&f, "", good.base, good.len, &changed, &seq),
                     RK_EINVAL);
    assert_false(changed);
    assert_int_equal(seq, 0);
    assert_int_equal(f.stats.bad_objects, 0);
    /* Objects that do not decode. */
    uint64_t bad_count = 0;
    for (int c = 0; c < 6; c++) {
        rk_buf_clear(&bad);
        assert_int_equal(rk_buf_append(&bad, good.base, good.len), RK_OK);
        switch (c) {
            case 0:
                bad.len = 0; /* nothing */
                break;
            case 1:
                bad.len = DVV_HDR - 1; /* a short header */
                break;
            case 2:
                bad.len--; /* truncated value */
                break;
            case 3:
                assert_int_equal(rk_buf_append(&bad, "", 1),
                                 RK_OK); /* trailer */
                break;
            case 4:
                bad.base[0] = DVV_FORMAT_VERSION + 1; /* unknown version */
                break;
            default:
                bad.base[1] = 1; /* reserved flags */
                break;
        }
        changed = true;
        seq = 99;
        assert_int_equal(put_bytes(&f, "k", bad.base, bad.len, &changed, &seq),
                         RK_EINVAL);
        assert_false(changed);
        assert_int_equal(seq, 0);
        assert_int_equal(f.stats.bad_objects, ++bad_count);
    }
    /* Without stats, too. */
    f.cfg.stats = NULL;
    assert_int_equal(put_bytes(&f, "k", "x", 1, NULL, NULL), RK_EINVAL);
    assert_int_equal(engine_writes(f.e), 0);
    assert_int_equal(f.stats.merges_written, 0);
    rk_buf_fini(&good);
    rk_buf_fini(&bad);
    dvv_fini(&a);
    engine_close(f.e);
}

static void test_replica_put_reply_echoes_req_id(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a;
    obj_one(&a, 1, "a", 10, 0);
    struct rk_buf b;
    rk_buf_init(&b);
    encode(&a, &b);
    static const uint64_t ids[] = {0, 1, UINT64_MAX};
    for (size_t i = 0; i < 3; i++) {
        for (int good = 0; good < 2; good++) {
            struct peer_kv_put req = {
                .req_id = ids[i],
                .key = {"k", good ? 1 : 0},
                .object = {b.base, b.len},
            };
            struct peer_msg reply;
            memset(&reply, 0xa5, sizeof(reply));
            replica_handle_put(f.e, &f.cfg, &req, &reply, NULL, NULL);
            assert_int_equal(reply.type, PEER_KV_PUT_REPLY);
            assert_true(reply.kv_put_reply.req_id == ids[i]);
            assert_int_equal(reply.kv_put_reply.status,
                             good ? RK_OK : RK_EINVAL);
        }
    }
    rk_buf_fini(&b);
    dvv_fini(&a);
    engine_close(f.e);
}

/* ---- KV_GET -------------------------------------------------------------- */

static void test_replica_get_returns_the_canonical_encoding(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, b, o;
    obj_one(&a, 2, "a", 10, 500);
    obj_one(&b, 1, NULL, 20, 0);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(put_obj(&f, "k", &b, NULL, NULL), RK_OK);
    struct rk_buf got, raw, enc;
    rk_buf_init(&got);
    rk_buf_init(&raw);
    rk_buf_init(&enc);
    assert_int_equal(get(&f, "k", &got), RK_OK);
    struct engine_meta m;
    assert_int_equal(stored(&f, "k", &raw, &m), RK_OK);
    assert_bytes(&got, raw.base, raw.len);
    /* It decodes to the merge and encodes back to the same bytes. */
    assert_int_equal(dvv_decode(&o, got.base, got.len), RK_OK);
    struct dvv_obj want;
    dvv_init(&want);
    assert_int_equal(dvv_merge(&want, &a, &b), RK_OK);
    assert_true(dvv_equal(&o, &want));
    encode(&o, &enc);
    assert_bytes(&got, enc.base, enc.len);
    /* A key whose siblings are all tombstones is still an object. */
    assert_int_equal(update(&f, "k", NULL, NULL, 30,
                            PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT, NULL),
                     RK_OK);
    assert_int_equal(get(&f, "k", &got), RK_OK);
    assert_int_equal(dvv_decode(&o, got.base, got.len), RK_OK);
    assert_true(dvv_all_tombstones(&o));
    rk_buf_fini(&got);
    rk_buf_fini(&raw);
    rk_buf_fini(&enc);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&o);
    dvv_fini(&want);
    engine_close(f.e);
}

static void test_replica_get_missing_is_not_found_and_empty_key_invalid(
    void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct rk_buf got;
    rk_buf_init(&got);
    assert_int_equal(get(&f, "nope", &got), RK_ENOTFOUND);
    assert_int_equal(get(&f, "", &got), RK_EINVAL);
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(replica_read(f.e, "nope", 4, &o), RK_ENOTFOUND);
    assert_int_equal(o.n_sibs, 0);
    assert_int_equal(o.n_clock, 0);
    rk_buf_fini(&got);
    dvv_fini(&o);
    engine_close(f.e);
}

static void test_replica_corrupt_stored_object_is_never_served(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, o;
    obj_one(&a, 1, "value", 10, 0);
    dvv_init(&o);
    struct rk_buf enc, got, raw;
    rk_buf_init(&enc);
    rk_buf_init(&got);
    rk_buf_init(&raw);
    for (int c = 0; c < 3; c++) {
        encode(&a, &enc);
        if (c == 0) {
            enc.len -= 2; /* torn */
        } else if (c == 1) {
            enc.base[0] = DVV_FORMAT_VERSION + 1; /* a format we don't know */
        } else {
            enc.base[4] = 9; /* more siblings than the bytes hold */
        }
        struct engine_meta m = {.timestamp = 10, .flags = REPLICA_FLAG_OBJECT};
        assert_int_equal(engine_put(f.e, "k", 1, enc.base, enc.len, &m, NULL),
                         RK_OK);
        assert_int_equal(replica_read(f.e, "k", 1, &o), RK_ECORRUPT);
        assert_int_equal(o.n_sibs, 0);
        assert_int_equal(get(&f, "k", &got), RK_ECORRUPT);
        /* Writes do not paper over it: the record stays as it was. */
        assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_ECORRUPT);
        assert_int_equal(
            update(&f, "k", NULL, "v", 20, PEER_KV_OWN_CONTEXT, NULL),
            RK_ECORRUPT);
        assert_int_equal(stored(&f, "k", &raw, NULL), RK_OK);
        assert_bytes(&raw, enc.base, enc.len);
    }
    assert_int_equal(f.stats.merges_written, 0);
    assert_int_equal(f.stats.updates, 0);
    rk_buf_fini(&enc);
    rk_buf_fini(&got);
    rk_buf_fini(&raw);
    dvv_fini(&a);
    dvv_fini(&o);
    engine_close(f.e);
}

/* ---- KV_UPDATE ----------------------------------------------------------- */

static void test_replica_update_own_context_never_makes_siblings(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj o;
    dvv_init(&o);
    for (uint64_t i = 1; i <= 20; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%" PRIu64, i);
        assert_int_equal(
            update(&f, "k", NULL, v, 100 + i, PEER_KV_OWN_CONTEXT, &o), RK_OK);
        assert_int_equal(o.n_sibs, 1);
        assert_int_equal(sib_of(&o, v), 0);
        assert_int_equal(o.sibs[0].dot.actor, ACTOR);
        assert_int_equal(o.sibs[0].dot.counter, i);
        assert_int_equal(o.sibs[0].ts, 100 + i);
    }
    assert_int_equal(f.floor, 20);
    assert_int_equal(f.stats.updates, 20);
    /* It supersedes concurrent siblings from elsewhere too. */
    struct dvv_obj x, y;
    obj_one(&x, 1, "x", 5, 0);
    obj_one(&y, 2, "y", 6, 0);
    assert_int_equal(put_obj(&f, "k", &x, NULL, NULL), RK_OK);
    assert_int_equal(put_obj(&f, "k", &y, NULL, NULL), RK_OK);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 3);
    assert_int_equal(update(&f, "k", NULL, "z", 200, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "z"), 0);
    /* And a legacy record. */
    put_legacy(&f, "l", "old", 9, 0);
    assert_int_equal(update(&f, "l", NULL, "new", 10, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "new"), 0);
    assert_int_equal(dvv_counter(&o, DVV_ACTOR_LEGACY), 1);
    dvv_fini(&o);
    dvv_fini(&x);
    dvv_fini(&y);
    engine_close(f.e);
}

static void test_replica_update_context_supersedes_exactly_covered_siblings(
    void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, b, o;
    obj_one(&a, 1, "a", 10, 0);
    obj_one(&b, 2, "b", 11, 0);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(put_obj(&f, "k", &b, NULL, NULL), RK_OK);
    /* A client that read only a: b stays. */
    struct rk_buf ctx;
    rk_buf_init(&ctx);
    ctx_of(&a, &ctx);
    assert_int_equal(update(&f, "k", &ctx, "c", 20, 0, &o), RK_OK);
    assert_int_equal(o.n_sibs, 2);
    assert_true(sib_of(&o, "a") < 0);
    assert_true(sib_of(&o, "b") >= 0);
    long c = sib_of(&o, "c");
    assert_true(c >= 0);
    assert_int_equal(o.sibs[c].dot.actor, ACTOR);
    /* The context joined the clock. */
    assert_int_equal(dvv_counter(&o, 1), 1);
    /* A client that read everything: one sibling left. */
    ctx_of(&o, &ctx);
    assert_int_equal(update(&f, "k", &ctx, "d", 30, 0, &o), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "d"), 0);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&o);
    rk_buf_fini(&ctx);
    engine_close(f.e);
}

static void test_replica_update_empty_context_adds_a_sibling(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a, o;
    obj_one(&a, 2, "a", 10, 0);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(update(&f, "k", NULL, "blind", 5, 0, &o), RK_OK);
    assert_int_equal(o.n_sibs, 2);
    assert_true(sib_of(&o, "a") >= 0);
    assert_true(sib_of(&o, "blind") >= 0);
    /* Even over this replica's own earlier write. */
    assert_int_equal(update(&f, "k", NULL, "again", 6, 0, &o), RK_OK);
    assert_int_equal(o.n_sibs, 3);
    dvv_fini(&a);
    dvv_fini(&o);
    engine_close(f.e);
}

/* A duplicated UPDATE of a chunk manifest that arrives after a later
 * write superseded the manifest is the same write: it must not bring the
 * manifest back under a new dot (its blocks may be deleted by then; the
 * simulator's I9, seed 93).  Without the recent-manifest memory it
 * would. */
static void test_replica_update_late_duplicate_manifest_is_not_reapplied(
    void **st)
{
    (void)st;
    for (int with_memory = 1; with_memory >= 0; with_memory--) {
        struct fx f;
        fx_init(&f, open_memory());
        struct replica_recent *recent = rk_calloc(1, sizeof(*recent));
        assert_non_null(recent);
        f.cfg.recent = with_memory ? recent : NULL;
        unsigned char id[CHUNK_ID_LEN];
        memset(id, 0x5c, sizeof(id));
        uint64_t h = 42;
        struct rk_buf man;
        rk_buf_init(&man);
        assert_int_equal(chunk_manifest_encode(10, 16, id, &h, &man), RK_OK);
        struct peer_kv_update u =
            mk_update("k", NULL, NULL, 10, PEER_KV_CHUNKED);
        u.value = (struct peer_bytes){man.base, man.len};
        struct dvv_obj o;
        dvv_init(&o);
        assert_int_equal(run_update(&f, &u, &o, NULL), RK_OK);
        assert_int_equal(o.n_sibs, 1);
        /* a SET over it (own context) supersedes the manifest */
        assert_int_equal(
            update(&f, "k", NULL, "small", 11, PEER_KV_OWN_CONTEXT, &o), RK_OK);
        assert_int_equal(o.n_sibs, 1);
        /* the first UPDATE once more (same context: none) */
        assert_int_equal(run_update(&f, &u, &o, NULL), RK_OK);
        if (with_memory) {
            assert_int_equal(o.n_sibs, 1);
            assert_true(sib_of(&o, "small") >= 0);
        } else {
            assert_int_equal(o.n_sibs, 2); /* what the memory prevents */
        }
        dvv_fini(&o);
        rk_buf_fini(&man);
        rk_free(recent);
        engine_close(f.e);
    }
}

static void test_replica_update_dots_come_from_actor_above_floor(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    f.floor = 100; /* this actor issued counters up to 100 on other keys */
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(update(&f, "k", NULL, "1", 10, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.sibs[0].dot.actor, ACTOR);
    assert_int_equal(o.sibs[0].dot.counter, 101);
    assert_int_equal(f.floor, 101);
    /* Another key continues from the floor, not from 1. */
    assert_int_equal(update(&f, "j", NULL, "2", 11, 0, &o), RK_OK);
    assert_int_equal(o.sibs[0].dot.counter, 102);
    assert_int_equal(f.floor, 102);
    assert_int_equal(update(&f, "k", NULL, "3", 12, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(o.sibs[0].dot.counter, 103);
    assert_int_equal(dvv_counter(&o, ACTOR), 103);
    assert_int_equal(f.floor, 103);
    /* A stored clock above the floor wins: the dot is above both. */
    struct dvv_obj x;
    dvv_init(&x);
    obj_write(&x, NULL, ACTOR, 499, "x", 5, 0);
    assert_int_equal(put_obj(&f, "m", &x, NULL, NULL), RK_OK);
    assert_int_equal(update(&f, "m", NULL, "4", 13, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.sibs[0].dot.counter, 501);
    assert_int_equal(f.floor, 501);
    /* Rejected writes leave the floor alone. */
    assert_int_equal(update(&f, "", NULL, "5", 14, 0, NULL), RK_EINVAL);
    assert_int_equal(f.floor, 501);
    assert_int_equal(f.oneshot, 0);
    dvv_fini(&o);
    dvv_fini(&x);
    engine_close(f.e);
}

static void test_replica_fallback_update_uses_fresh_one_shot_actor(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    f.floor = 100;
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(update(&f, "k", NULL, "a", 10, PEER_KV_FALLBACK, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    uint64_t a1 = o.sibs[0].dot.actor;
    assert_true(a1 != ACTOR && a1 != DVV_ACTOR_LEGACY);
    assert_int_equal(o.sibs[0].dot.counter, 1);
    assert_int_equal(f.floor, 100);
    assert_int_equal(f.oneshot, 1);
    /* A second fallback write, even to the same key: another actor. */
    assert_int_equal(update(&f, "k", NULL, "b", 11, PEER_KV_FALLBACK, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 2);
    long b = sib_of(&o, "b");
    assert_true(b >= 0);
    uint64_t a2 = o.sibs[b].dot.actor;
    assert_true(a2 != a1 && a2 != ACTOR && a2 != DVV_ACTOR_LEGACY);
    assert_int_equal(o.sibs[b].dot.counter, 1);
    assert_int_equal(f.floor, 100);
    assert_int_equal(f.oneshot, 2);
    /* With its own context it supersedes, still from a fresh actor. */
    assert_int_equal(update(&f, "k", NULL, "c", 12,
                            PEER_KV_FALLBACK | PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    uint64_t a3 = o.sibs[0].dot.actor;
    assert_true(a3 != a1 && a3 != a2 && a3 != ACTOR);
    assert_int_equal(o.sibs[0].dot.counter, 1);
    assert_int_equal(f.oneshot, 3);
    assert_int_equal(f.floor, 100);
    /* A normal write afterwards uses the node's actor above its floor. */
    assert_int_equal(update(&f, "k", NULL, "d", 13, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.sibs[0].dot.actor, ACTOR);
    assert_int_equal(o.sibs[0].dot.counter, 101);
    assert_int_equal(f.oneshot, 3);
    /* Derived from (actor, oneshot) alone: no hidden randomness. */
    struct fx g;
    fx_init(&g, open_memory());
    assert_int_equal(update(&g, "other", NULL, "a", 10, PEER_KV_FALLBACK, &o),
                     RK_OK);
    assert_true(o.sibs[0].dot.actor == a1);
    engine_close(g.e);
    dvv_fini(&o);
    engine_close(f.e);
}

static void test_replica_update_tombstone_deletes(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(update(&f, "k", NULL, "v", 10, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(update(&f, "k", NULL, NULL, 20,
                            PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].tombstone);
    assert_int_equal(o.sibs[0].vlen, 0);
    assert_int_equal(o.sibs[0].expire_at_ms, 0);
    assert_int_equal(o.sibs[0].ts, 20);
    struct engine_meta m;
    assert_int_equal(engine_get(f.e, "k", 1, NULL, &m), RK_OK);
    assert_true(replica_meta_is_tombstone(&m));
    size_t idx = 77;
    assert_int_equal(replica_winner(&o, 0, &idx), RK_ENOTFOUND);
    assert_int_equal(idx, 77);
    /* A delete of a key never seen is stored, and orders later writes. */
    assert_int_equal(update(&f, "fresh", NULL, NULL, 5, PEER_KV_TOMBSTONE, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_true(o.sibs[0].tombstone);
    /* A blind delete beside a value: concurrent, the key stays live. */
    struct dvv_obj v;
    obj_one(&v, 3, "live", 1, 0);
    assert_int_equal(put_obj(&f, "j", &v, NULL, NULL), RK_OK);
    assert_int_equal(update(&f, "j", NULL, NULL, 30, PEER_KV_TOMBSTONE, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 2);
    assert_int_equal(engine_get(f.e, "j", 1, NULL, &m), RK_OK);
    assert_false(replica_meta_is_tombstone(&m));
    dvv_fini(&v);
    dvv_fini(&o);
    engine_close(f.e);
}

/* A replica with key "k" = one sibling by actor 1, floor 10; `before`
 * receives the record. */
static void rej_setup(struct fx *f, struct dvv_obj *a, struct rk_buf *before)
{
    fx_init(f, open_memory());
    f->floor = 10;
    obj_one(a, 1, "a", 10, 0);
    assert_int_equal(put_obj(f, "k", a, NULL, NULL), RK_OK);
    assert_int_equal(stored(f, "k", before, NULL), RK_OK);
}

/* Nothing was written, no dot issued, no update counted. */
static void rej_check(struct fx *f, const struct rk_buf *before)
{
    struct rk_buf raw;
    rk_buf_init(&raw);
    assert_int_equal(engine_writes(f->e), 1);
    assert_int_equal(stored(f, "k", &raw, NULL), RK_OK);
    assert_bytes(&raw, before->base, before->len);
    assert_int_equal(f->floor, 10);
    assert_int_equal(f->oneshot, 0);
    assert_int_equal(f->stats.updates, 0);
    rk_buf_fini(&raw);
}

static void test_replica_update_rejects_bad_flags_and_fields(void **st)
{
    (void)st;
    struct fx f;
    struct dvv_obj a;
    struct rk_buf before, ctx;
    rk_buf_init(&before);
    rk_buf_init(&ctx);
    rej_setup(&f, &a, &before);
    ctx_of(&a, &ctx);
    struct peer_kv_update u;
    for (int c = 0; c < 12; c++) {
        u = mk_update("k", NULL, "v", 20, 0);
        switch (c) {
            case 0:
                u.flags = 0x20; /* unknown bit */
                break;
            case 1:
                u.flags = PEER_KV_OWN_CONTEXT | 0x80000000u;
                break;
            case 2:
                u.flags = PEER_KV_TOMBSTONE; /* with a value */
                break;
            case 3:
                u = mk_update("k", NULL, NULL, 20, PEER_KV_TOMBSTONE);
                u.expire_at_ms = 5; /* a tombstone with an expiry */
                break;
            case 4:
                u = mk_update("k", &ctx, "v", 20, PEER_KV_OWN_CONTEXT);
                break;
            case 5:
                u.key.len = 0;
                break;
            case 6:
                u.timestamp = UINT64_C(1) << 62; /* over REPLICA_MAX_TS */
                break;
            case 7:
                /* content type longer than the value ('v' = 118) */
                u.flags = PEER_KV_CTYPE;
                break;
            case 8:
                u = mk_update("k", NULL, NULL, 20, PEER_KV_CTYPE);
                u.value = (struct peer_bytes){"\0x", 2}; /* empty type */
                break;
            case 9:
                u = mk_update("k", NULL, NULL, 20, PEER_KV_CTYPE);
                u.value = (struct peer_bytes){"\2a\nv", 4}; /* a newline */
                break;
            case 10:
                u.timestamp = REPLICA_MAX_TS + 1; /* just over */
                break;
            default:
                u.timestamp = (UINT64_C(1) << 63) | 20;
                break;
        }
        assert_int_equal(run_update(&f, &u, NULL, NULL), RK_EINVAL);
        u.flags |= PEER_KV_FALLBACK;
        assert_int_equal(run_update(&f, &u, NULL, NULL), RK_EINVAL);
    }
    /* Not bad objects: those count undecodable bytes only. */
    assert_int_equal(f.stats.bad_objects, 0);
    /* The replica's actor must not be the legacy one. */
    f.cfg.actor = DVV_ACTOR_LEGACY;
    u = mk_update("k", NULL, "v", 20, PEER_KV_OWN_CONTEXT);
    assert_int_equal(run_update(&f, &u, NULL, NULL), RK_EINVAL);
    rej_check(&f, &before);
    rk_buf_fini(&before);
    rk_buf_fini(&ctx);
    dvv_fini(&a);
    engine_close(f.e);
}

static void test_replica_update_rejects_undecodable_contexts(void **st)
{
    (void)st;
    struct fx f;
    struct dvv_obj a, full;
    struct rk_buf before, ctx, objbytes, text;
    rk_buf_init(&before);
    rk_buf_init(&ctx);
    rk_buf_init(&objbytes);
    rk_buf_init(&text);
    dvv_init(&full);
    rej_setup(&f, &a, &before);
    ctx_of(&a, &ctx);
    encode(&a, &objbytes); /* an object with a sibling is not a context */
    assert_int_equal(dvv_context_encode(&a, &text), RK_OK); /* client form */
    const struct peer_bytes bad_ctx[] = {
        {"xyz", 3},
        {text.base, text.len},
        {objbytes.base, objbytes.len},
        {ctx.base, ctx.len - 1},
        {ctx.base, DVV_HDR - 1},
    };
    for (size_t c = 0; c < sizeof(bad_ctx) / sizeof(bad_ctx[0]); c++) {
        struct peer_kv_update u = mk_update("k", NULL, "v", 20, 0);
        u.context = bad_ctx[c];
        assert_int_equal(run_update(&f, &u, NULL, NULL), RK_EINVAL);
        assert_int_equal(f.stats.bad_objects, c + 1);
    }
    rej_check(&f, &before);
    /* The same context, well formed, is taken. */
    struct peer_kv_update u = mk_update("k", &ctx, "v", 20, 0);
    assert_int_equal(run_update(&f, &u, &full, NULL), RK_OK);
    assert_int_equal(full.n_sibs, 1);
    assert_int_equal(sib_of(&full, "v"), 0);
    rk_buf_fini(&before);
    rk_buf_fini(&ctx);
    rk_buf_fini(&objbytes);
    rk_buf_fini(&text);
    dvv_fini(&a);
    dvv_fini(&full);
    engine_close(f.e);
}

static void test_replica_update_reply_object_is_what_is_stored(void **st)
{
    (void)st;
    /* run_update checks reply == record on every call; here under the
     * policy and a bound, which rewrite the object before it is stored. */
    struct fx f;
    fx_init(&f, open_memory());
    f.cfg.max_sibs = 2;
    struct dvv_obj o;
    dvv_init(&o);
    uint64_t last = 0;
    for (uint64_t i = 1; i <= 5; i++) {
        uint64_t seq = 0;
        struct peer_kv_update u = mk_update("k", NULL, "v", 10 + i, 0);
        assert_int_equal(run_update(&f, &u, &o, &seq), RK_OK);
        assert_true(seq > last); /* the engine write's sequence */
        last = seq;
        assert_int_equal(o.n_sibs, i < 2 ? i : 2);
    }
    f.cfg.lww = true;
    struct peer_kv_update u = mk_update("k", NULL, "w", 99, 0);
    assert_int_equal(run_update(&f, &u, &o, NULL), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "w"), 0);
    dvv_fini(&o);
    engine_close(f.e);
}

/* Regression (review of issue 5): a KV_PUT whose sibling timestamp had the
 * metadata flag bits set was stored as deleted (format 1 kept flags in the
 * timestamp), so a live value read as deleted to DBSIZE/SCAN.  Flags are
 * explicit now, but a format-1 node in the cluster would still misread
 * such a timestamp: it stays refused (REPLICA_MAX_TS). */
static void test_replica_put_refuses_timestamps_with_flag_bits(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj a;
    obj_one(&a, 1, "v", UINT64_C(1) << 62, 0);
    bool changed = true;
    uint64_t seq = 7;
    assert_int_equal(put_obj(&f, "k", &a, &changed, &seq), RK_EINVAL);
    assert_false(changed);
    assert_int_equal(seq, 0);
    assert_int_equal(f.stats.bad_objects, 1);
    struct dvv_obj o;
    dvv_init(&o);
    assert_int_equal(replica_read(f.e, "k", 1, &o), RK_ENOTFOUND);
    dvv_fini(&o);
    dvv_fini(&a);
    engine_close(f.e);
}

/* Regression (review of issue 5): with the clock bound on, a repeated
 * KV_PUT rewrote the record every time (the merge was compared before the
 * bound was applied, the stored object after). */
static void test_replica_put_is_idempotent_under_the_clock_bound(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    f.cfg.max_clock = 2;
    struct dvv_obj a;
    obj_one(&a, 1, "a", 10, 0);
    for (uint64_t actor = 2; actor <= 4; actor++) {
        obj_write(&a, &a, actor, 0, "b", 10 + actor, 0);
    }
    assert_int_equal(a.n_clock, 4);
    assert_int_equal(a.n_sibs, 1);
    for (int i = 0; i < 3; i++) {
        bool changed = false;
        uint64_t seq = 0;
        assert_int_equal(put_obj(&f, "k", &a, &changed, &seq), RK_OK);
        assert_int_equal(changed, i == 0);
        assert_int_equal(seq == 0, i != 0);
    }
    assert_int_equal(f.stats.merges_written, 1);
    assert_int_equal(f.stats.clock_pruned, 2);
    dvv_fini(&a);
    engine_close(f.e);
}

/* Issue 5 item 6: a write timestamped beyond max_skew_ms ahead of the
 * caller's clock is counted with its lead; siblings are unaffected. */
static void test_replica_counts_writes_from_a_clock_ahead(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    f.cfg.now_ms = 1000000;
    f.cfg.max_skew_ms = 60000;
    struct dvv_obj near, far;
    obj_one(&near, 1, "n", (uint64_t)(1000000 + 59000) << 16, 0);
    obj_one(&far, 2, "f", (uint64_t)(1000000 + 300000) << 16, 0);
    assert_int_equal(put_obj(&f, "a", &near, NULL, NULL), RK_OK);
    assert_int_equal(f.stats.clock_ahead, 0);
    assert_int_equal(put_obj(&f, "b", &far, NULL, NULL), RK_OK);
    assert_int_equal(f.stats.clock_ahead, 1);
    assert_int_equal(f.stats.clock_ahead_max_ms, 300000);
    f.cfg.now_ms = 0; /* no check */
    assert_int_equal(put_obj(&f, "c", &far, NULL, NULL), RK_OK);
    assert_int_equal(f.stats.clock_ahead, 1);
    dvv_fini(&near);
    dvv_fini(&far);
    engine_close(f.e);
}

/* Regression (issue 5 review): a context claiming counters of this
 * replica's actor beyond any it issued is refused, so it can neither
 * exhaust the actor nor cover its future dots. */
static void test_replica_update_refuses_context_beyond_own_counter(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj ctx;
    dvv_init(&ctx);
    obj_write(&ctx, NULL, ACTOR, 10, "v", 1, 0); /* (ACTOR, 11) */
    ctx.n_sibs = 0;
    struct rk_buf cb;
    rk_buf_init(&cb);
    encode(&ctx, &cb);
    struct peer_kv_update u = mk_update("k", &cb, "v", 5, 0);
    assert_int_equal(run_update(&f, &u, NULL, NULL), RK_EINVAL);
    assert_int_equal(f.stats.bad_objects, 1);
    assert_int_equal(f.floor, 0);
    /* once the actor issued that many, the same context is fine */
    f.floor = 11;
    assert_int_equal(run_update(&f, &u, NULL, NULL), RK_OK);
    assert_int_equal(f.floor, 12);
    rk_buf_fini(&cb);
    dvv_fini(&ctx);
    engine_close(f.e);
}

/* ---- policy and bounds --------------------------------------------------- */

static void test_replica_lww_keeps_one_sibling_and_counts_discards(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    f.cfg.lww = true;
    struct dvv_obj a, b, c, o;
    obj_one(&a, 1, "a", 10, 0);
    obj_one(&b, 2, "b", 20, 0);
    obj_one(&c, 3, "c", 5, 0);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(f.stats.lww_discards, 0);
    assert_int_equal(put_obj(&f, "k", &b, NULL, NULL), RK_OK);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "b"), 0);
    assert_int_equal(f.stats.lww_discards, 1);
    /* An older concurrent write loses, but its dot is remembered... */
    assert_int_equal(put_obj(&f, "k", &c, NULL, NULL), RK_OK);
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "b"), 0);
    assert_int_equal(dvv_counter(&o, 3), 1);
    assert_int_equal(f.stats.lww_discards, 2);
    /* ...so it does not come back, and a repeat writes nothing. */
    bool changed = true;
    assert_int_equal(put_obj(&f, "k", &c, &changed, NULL), RK_OK);
    assert_false(changed);
    assert_int_equal(put_obj(&f, "k", &a, &changed, NULL), RK_OK);
    assert_false(changed);
    assert_int_equal(f.stats.lww_discards, 2);
    /* A blind update under lww leaves one sibling too. */
    assert_int_equal(update(&f, "k", NULL, "d", 30, 0, &o), RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(sib_of(&o, "d"), 0);
    assert_int_equal(f.stats.lww_discards, 3);
    dvv_fini(&a);
    dvv_fini(&b);
    dvv_fini(&c);
    dvv_fini(&o);
    engine_close(f.e);
}

static void test_replica_max_sibs_drops_the_oldest_and_counts(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_memory());
    f.cfg.max_sibs = 3;
    struct dvv_obj s[5], o;
    dvv_init(&o);
    /* Five concurrent writes, arriving newest first. */
    for (int i = 4; i >= 0; i--) {
        char v[8];
        snprintf(v, sizeof(v), "s%d", i);
        obj_one(&s[i], 10 + (uint64_t)i, v, 100 + (uint64_t)i, 0);
        assert_int_equal(put_obj(&f, "k", &s[i], NULL, NULL), RK_OK);
    }
    read_obj(&f, "k", &o);
    assert_int_equal(o.n_sibs, 3);
    assert_true(sib_of(&o, "s2") >= 0);
    assert_true(sib_of(&o, "s3") >= 0);
    assert_true(sib_of(&o, "s4") >= 0);
    assert_int_equal(f.stats.bound_dropped, 2);
    /* A dropped write arriving again stays dropped. */
    bool changed = true;
    assert_int_equal(put_obj(&f, "k", &s[0], &changed, NULL), RK_OK);
    assert_false(changed);
    assert_int_equal(f.stats.bound_dropped, 2);
    /* A blind update at the bound drops the oldest. */
    assert_int_equal(update(&f, "k", NULL, "new", 200, 0, &o), RK_OK);
    assert_int_equal(o.n_sibs, 3);
    assert_true(sib_of(&o, "s2") < 0);
    assert_true(sib_of(&o, "new") >= 0);
    assert_int_equal(f.stats.bound_dropped, 3);
    /* The clock bound prunes entries no sibling needs, with a count. */
    f.cfg.max_clock = 2;
    assert_int_equal(update(&f, "k", NULL, "one", 300, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(o.n_clock, 2);
    assert_int_equal(dvv_counter(&o, ACTOR), 2);
    assert_int_equal(f.stats.clock_pruned, 4); /* actors 10..14 minus one */
    for (int i = 0; i < 5; i++) {
        dvv_fini(&s[i]);
    }
    dvv_fini(&o);
    engine_close(f.e);
}

/* ---- replica_winner ------------------------------------------------------ */

static void test_replica_winner_is_newest_live_value(void **st)
{
    (void)st;
    struct dvv_obj o;
    dvv_init(&o);
    size_t idx = 77;
    assert_int_equal(replica_winner(&o, 0, &idx), RK_ENOTFOUND);
    assert_int_equal(idx, 77);
    obj_write(&o, NULL, 1, 0, "a", 10, 0);
    obj_write(&o, NULL, 2, 0, "b", 20, 0);
    obj_write(&o, NULL, 3, 0, "c", 15, 0);
    assert_int_equal(replica_winner(&o, 1000, &idx), RK_OK);
    assert_int_equal(idx, (size_t)sib_of(&o, "b"));
    /* An expiring winner: live before its expiry, gone at it; an older
     * live sibling does not take over. */
    obj_write(&o, NULL, 4, 0, "e", 30, 5000);
    assert_int_equal(replica_winner(&o, 4999, &idx), RK_OK);
    assert_int_equal(idx, (size_t)sib_of(&o, "e"));
    idx = 77;
    assert_int_equal(replica_winner(&o, 5000, &idx), RK_ENOTFOUND);
    assert_int_equal(replica_winner(&o, 9000, &idx), RK_ENOTFOUND);
    assert_int_equal(idx, 77);
    /* A tombstone winner: not found, whatever older values exist. */
    obj_write(&o, NULL, 5, 0, NULL, 40, 0);
    assert_int_equal(replica_winner(&o, 0, &idx), RK_ENOTFOUND);
    /* A newer value beats the tombstone. */
    obj_write(&o, NULL, 6, 0, "f", 50, 0);
    assert_int_equal(replica_winner(&o, 0, &idx), RK_OK);
    assert_int_equal(idx, (size_t)sib_of(&o, "f"));
    /* Equal ts: the higher actor wins (the total order of dvv.h). */
    struct dvv_obj t;
    dvv_init(&t);
    obj_write(&t, NULL, 9, 0, "nine", 60, 0);
    obj_write(&t, NULL, 8, 0, "eight", 60, 0);
    assert_int_equal(replica_winner(&t, 0, &idx), RK_OK);
    assert_int_equal(idx, (size_t)sib_of(&t, "nine"));
    dvv_fini(&o);
    dvv_fini(&t);
}

/* ---- engine errors ------------------------------------------------------- */

static void test_replica_engine_error_is_the_reply_status(void **st)
{
    (void)st;
    struct fx f;
    fx_init(&f, open_engine("memory", "unused", 128));
    char big[100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* A small object fits... */
    struct dvv_obj small, large, o;
    obj_one(&small, 1, "s", 10, 0);
    obj_one(&large, 2, big, 20, 0);
    dvv_init(&o);
    assert_int_equal(put_obj(&f, "k", &small, NULL, NULL), RK_OK);
    struct rk_buf before, raw;
    rk_buf_init(&before);
    rk_buf_init(&raw);
    assert_int_equal(stored(&f, "k", &before, NULL), RK_OK);
    uint64_t writes = engine_writes(f.e);
    /* ...a merged object over the engine's limit is refused. */
    bool changed = true;
    uint64_t seq = 99;
    assert_int_equal(put_obj(&f, "k", &large, &changed, &seq), RK_ETOOBIG);
    assert_false(changed);
    assert_int_equal(seq, 0);
    assert_int_equal(f.stats.merges_written, 1);
    assert_int_equal(put_obj(&f, "new", &large, NULL, NULL), RK_ETOOBIG);
    assert_int_equal(engine_get(f.e, "new", 3, NULL, NULL), RK_ENOTFOUND);
    /* The same for KV_UPDATE (run_update: no object, seq 0). */
    assert_int_equal(update(&f, "k", NULL, big, 30, PEER_KV_OWN_CONTEXT, NULL),
                     RK_ETOOBIG);
    assert_int_equal(update(&f, "k", NULL, big, 30, PEER_KV_FALLBACK, NULL),
                     RK_ETOOBIG);
    assert_int_equal(f.stats.updates, 0);
    assert_int_equal(engine_writes(f.e), writes);
    assert_int_equal(stored(&f, "k", &raw, NULL), RK_OK);
    assert_bytes(&raw, before.base, before.len);
    /* The key still takes writes that fit. */
    assert_int_equal(update(&f, "k", NULL, "t", 40, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    rk_buf_fini(&before);
    rk_buf_fini(&raw);
    dvv_fini(&small);
    dvv_fini(&large);
    dvv_fini(&o);
    engine_close(f.e);
}

/* ---- bitcask ------------------------------------------------------------- */

struct snap
{
    const char *key;
    struct rk_buf raw;
    struct engine_meta m;
};

/* Setup/teardown: *st is a temporary directory path, removed even when
 * the test fails. */
static int bitcask_dir_setup(void **st)
{
    char *dir = malloc(512);
    if (dir == NULL) {
        return -1;
    }
    if (tmpdir_make(dir, 512) != 0) {
        free(dir);
        return -1;
    }
    *st = dir;
    return 0;
}

static int bitcask_dir_teardown(void **st)
{
    tmpdir_remove(*st);
    free(*st);
    return 0;
}

static void test_replica_objects_survive_bitcask_reopen(void **st)
{
    const char *dir = *st;
    struct fx f;
    fx_init(&f, open_engine("bitcask", dir, 0));
    struct dvv_obj x, o;
    obj_one(&x, 3, "other", 15, 0);
    dvv_init(&o);
    put_legacy(&f, "legacy", "old", 5, 0);
    assert_int_equal(update(&f, "a", NULL, "a1", 10, PEER_KV_OWN_CONTEXT, NULL),
                     RK_OK);
    assert_int_equal(update(&f, "a", NULL, "a2", 11, PEER_KV_OWN_CONTEXT, NULL),
                     RK_OK);
    assert_int_equal(put_obj(&f, "a", &x, NULL, NULL), RK_OK);
    assert_int_equal(update(&f, "d", NULL, NULL, 12,
                            PEER_KV_TOMBSTONE | PEER_KV_OWN_CONTEXT, NULL),
                     RK_OK);
    struct peer_kv_update u =
        mk_update("x", NULL, "exp", 13, PEER_KV_OWN_CONTEXT);
    u.expire_at_ms = 777;
    assert_int_equal(run_update(&f, &u, NULL, NULL), RK_OK);
    struct snap s[] = {
        {.key = "legacy"}, {.key = "a"}, {.key = "d"}, {.key = "x"}};
    const size_t ns = sizeof(s) / sizeof(s[0]);
    for (size_t i = 0; i < ns; i++) {
        rk_buf_init(&s[i].raw);
        assert_int_equal(stored(&f, s[i].key, &s[i].raw, &s[i].m), RK_OK);
    }
    assert_int_equal(engine_close(f.e), RK_OK);
    /* A new run: same records, same answers. */
    fx_init(&f, open_engine("bitcask", dir, 0));
    f.cfg.actor = ACTOR + 1; /* a fresh actor every start (dvv.h) */
    struct rk_buf raw, got;
    rk_buf_init(&raw);
    rk_buf_init(&got);
    for (size_t i = 0; i < ns; i++) {
        struct engine_meta m;
        assert_int_equal(stored(&f, s[i].key, &raw, &m), RK_OK);
        assert_bytes(&raw, s[i].raw.base, s[i].raw.len);
        assert_memory_equal(&m, &s[i].m, sizeof(m));
    }
    assert_int_equal(get(&f, "a", &got), RK_OK);
    assert_bytes(&got, s[1].raw.base, s[1].raw.len);
    read_obj(&f, "a", &o);
    assert_int_equal(o.n_sibs, 2);
    assert_true(sib_of(&o, "a2") >= 0);
    assert_true(sib_of(&o, "other") >= 0);
    read_obj(&f, "legacy", &o);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(o.sibs[0].dot.actor, DVV_ACTOR_LEGACY);
    struct engine_meta m;
    assert_int_equal(engine_get(f.e, "d", 1, NULL, &m), RK_OK);
    assert_true(replica_meta_is_tombstone(&m));
    assert_int_equal(engine_get(f.e, "x", 1, NULL, &m), RK_OK);
    assert_int_equal(m.expire_at_ms, 0);
    assert_true(replica_meta_is_dead(&m, 777));
    /* The new actor supersedes the old run's siblings. */
    assert_int_equal(update(&f, "a", NULL, "a3", 20, PEER_KV_OWN_CONTEXT, &o),
                     RK_OK);
    assert_int_equal(o.n_sibs, 1);
    assert_int_equal(o.sibs[0].dot.actor, ACTOR + 1);
    assert_int_equal(o.sibs[0].dot.counter, 1);
    assert_int_equal(dvv_counter(&o, ACTOR), 2);
    assert_int_equal(engine_close(f.e), RK_OK);
    for (size_t i = 0; i < ns; i++) {
        rk_buf_fini(&s[i].raw);
    }
    rk_buf_fini(&raw);
    rk_buf_fini(&got);
    dvv_fini(&x);
    dvv_fini(&o);
}

/* ---- allocation failures (STYLE.md 1.7) ---------------------------------- */

static long g_alloc_calls, g_alloc_fail_at;

static bool alloc_fails(void)
{
    return ++g_alloc_calls == g_alloc_fail_at;
}

static void *t_malloc(void *data, size_t size)
{
    (void)data;
    return alloc_fails() ? NULL : malloc(size);
}

static void *t_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return alloc_fails() ? NULL : calloc(n, size);
}

static void *t_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return alloc_fails() ? NULL : realloc(ptr, size);
}

static void t_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static const struct rk_allocator g_failing = {
    .malloc_fn = t_malloc,
    .calloc_fn = t_calloc,
    .realloc_fn = t_realloc,
    .free_fn = t_free,
};

static void fail_nth(long n)
{
    g_alloc_calls = 0;
    g_alloc_fail_at = n;
    rk_set_allocator(&g_failing);
}

enum oom_op
{
    OOM_PUT,
    OOM_UPDATE,
    OOM_GET,
};

/* Key "k" with two concurrent siblings, plus a KV_PUT object in `in`. */
static void oom_seed(struct fx *f, struct dvv_obj *in)
{
    struct dvv_obj a, b;
    obj_one(&a, 1, "a", 10, 0);
    obj_one(&b, 2, "b", 11, 0);
    assert_int_equal(put_obj(f, "k", &a, NULL, NULL), RK_OK);
    assert_int_equal(put_obj(f, "k", &b, NULL, NULL), RK_OK);
    obj_one(in, 3, "c", 12, 0);
    dvv_fini(&a);
    dvv_fini(&b);
}

/* Runs op once with allocation n failing (0: none); returns its status and
 * the record of "k" afterwards in raw. */
static int oom_once(enum oom_op op, long n, struct rk_buf *raw)
{
    struct fx f;
    fx_init(&f, open_memory());
    struct dvv_obj in;
    oom_seed(&f, &in);
    struct rk_buf enc, out;
    rk_buf_init(&enc);
    rk_buf_init(&out);
    encode(&in, &enc);
    struct peer_kv_put p = {
        .req_id = 1, .key = {"k", 1}, .object = {enc.base, enc.len}};
    struct peer_kv_update u = mk_update("k", NULL, "u", 20, 0);
    struct peer_kv_get g = {.req_id = 1, .key = {"k", 1}};
    struct peer_msg reply;
    int rc;
    if (n > 0) {
        fail_nth(n);
    }
    if (op == OOM_PUT) {
        replica_handle_put(f.e, &f.cfg, &p, &reply, NULL, NULL);
        rc = reply.kv_put_reply.status;
    } else if (op == OOM_UPDATE) {
        replica_handle_update(f.e, &f.cfg, &u, &out, &reply, NULL);
        rc = reply.kv_update_reply.status;
    } else {
        replica_handle_get(f.e, NULL, &g, &out, &reply);
        rc = reply.kv_get_reply.status;
    }
    rk_set_allocator(NULL);
    if (op == OOM_GET && rc == RK_OK) {
        /* What KV_GET serves is the record. */
        assert_int_equal(stored(&f, "k", raw, NULL), RK_OK);
        assert_bytes(raw, reply.kv_get_reply.object.ptr,
                     reply.kv_get_reply.object.len);
    }
    if (op == OOM_UPDATE && rc == RK_OK) {
        assert_int_equal(stored(&f, "k", raw, NULL), RK_OK);
        assert_bytes(raw, reply.kv_update_reply.object.ptr,
                     reply.kv_update_reply.object.len);
    }
    assert_int_equal(stored(&f, "k", raw, NULL), RK_OK);
    rk_buf_fini(&enc);
    rk_buf_fini(&out);
    dvv_fini(&in);
    engine_close(f.e);
    return rc;
}

static void test_replica_survives_every_allocation_failure(void **st)
{
    (void)st;
    static const char *const names[] = {"KV_PUT", "KV_UPDATE", "KV_GET"};
    struct rk_buf before, after, raw;
    rk_buf_init(&before);
    rk_buf_init(&after);
    rk_buf_init(&raw);
    for (int op = OOM_PUT; op <= OOM_GET; op++) {
        /* The record before, and after an undisturbed run. */
        struct fx f;
        fx_init(&f, open_memory());
        struct dvv_obj in;
        oom_seed(&f, &in);
        assert_int_equal(stored(&f, "k", &before, NULL), RK_OK);
        dvv_fini(&in);
        engine_close(f.e);
        assert_int_equal(oom_once((enum oom_op)op, 0, &after), RK_OK);
        long n;
        int rc = RK_ENOMEM;
        for (n = 1; rc == RK_ENOMEM; n++) {
            rc = oom_once((enum oom_op)op, n, &raw);
            if (rc == RK_OK) {
                assert_bytes(&raw, after.base, after.len);
            } else {
                assert_int_equal(rc, RK_ENOMEM);
                /* Nothing half-written: the old record, or (KV_UPDATE,
                 * when only encoding the reply failed) the new one. */
                bool old = raw.len == before.len &&
                           memcmp(raw.base, before.base, raw.len) == 0;
                bool new = raw.len ==
                           after.len &&memcmp(raw.base, after.base, raw.len) ==
                           0;
                assert_true(old || (op == OOM_UPDATE && new));
            }
        }
        printf("# %s succeeded once %ld allocations could succeed\n", names[op],
               n - 1);
        assert_true(n > 2);
    }
    rk_buf_fini(&before);
    rk_buf_fini(&after);
    rk_buf_fini(&raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_meta_has_object_bit_and_max_sibling_ts),
        cmocka_unit_test(
            test_replica_stored_hook_sees_every_write_with_its_hashes),
        cmocka_unit_test(
            test_replica_meta_deleted_exactly_when_all_siblings_are_tombstones),
        cmocka_unit_test(test_replica_meta_marks_when_an_object_is_dead),
        cmocka_unit_test(
            test_replica_reads_legacy_record_as_one_legacy_sibling),
        cmocka_unit_test(test_replica_legacy_record_with_content_type),
        cmocka_unit_test(
            test_replica_legacy_tombstone_marker_reads_as_not_found),
        cmocka_unit_test(
            test_replica_put_over_legacy_record_keeps_it_when_concurrent),
        cmocka_unit_test(test_replica_put_is_idempotent),
        cmocka_unit_test(
            test_replica_update_refuses_context_beyond_own_counter),
        cmocka_unit_test(test_replica_counts_writes_from_a_clock_ahead),
        cmocka_unit_test(test_replica_put_refuses_timestamps_with_flag_bits),
        cmocka_unit_test(test_replica_put_is_idempotent_under_the_clock_bound),
        cmocka_unit_test(test_replica_put_keeps_concurrent_and_drops_dominated),
        cmocka_unit_test(test_replica_put_absent_key_stores_the_received_bytes),
        cmocka_unit_test(test_replica_put_absent_key_applies_policy_and_bounds),
        cmocka_unit_test(
            test_replica_put_second_copies_merge_or_change_nothing),
        cmocka_unit_test(
            test_replica_put_identical_but_not_normal_is_normalized),
        cmocka_unit_test(test_replica_put_refuses_malformed_before_short_paths),
        cmocka_unit_test(test_replica_put_result_is_independent_of_order),
        cmocka_unit_test(test_replica_put_random_orders_store_the_same_bytes),
        cmocka_unit_test(
            test_replica_put_rejects_empty_key_and_undecodable_objects),
        cmocka_unit_test(test_replica_put_reply_echoes_req_id),
        cmocka_unit_test(test_replica_get_returns_the_canonical_encoding),
        cmocka_unit_test(
            test_replica_get_missing_is_not_found_and_empty_key_invalid),
        cmocka_unit_test(test_replica_corrupt_stored_object_is_never_served),
        cmocka_unit_test(test_replica_update_own_context_never_makes_siblings),
        cmocka_unit_test(
            test_replica_update_context_supersedes_exactly_covered_siblings),
        cmocka_unit_test(test_replica_update_empty_context_adds_a_sibling),
        cmocka_unit_test(
            test_replica_update_late_duplicate_manifest_is_not_reapplied),
        cmocka_unit_test(test_replica_update_dots_come_from_actor_above_floor),
        cmocka_unit_test(
            test_replica_fallback_update_uses_fresh_one_shot_actor),
        cmocka_unit_test(test_replica_update_tombstone_deletes),
        cmocka_unit_test(test_replica_update_rejects_bad_flags_and_fields),
        cmocka_unit_test(test_replica_update_rejects_undecodable_contexts),
        cmocka_unit_test(test_replica_update_reply_object_is_what_is_stored),
        cmocka_unit_test(
            test_replica_lww_keeps_one_sibling_and_counts_discards),
        cmocka_unit_test(test_replica_max_sibs_drops_the_oldest_and_counts),
        cmocka_unit_test(test_replica_winner_is_newest_live_value),
        cmocka_unit_test(test_replica_engine_error_is_the_reply_status),
        cmocka_unit_test_setup_teardown(
            test_replica_objects_survive_bitcask_reopen, bitcask_dir_setup,
            bitcask_dir_teardown),
        cmocka_unit_test(test_replica_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
