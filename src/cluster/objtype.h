/*
 * objtype.h - the type of a stored object (issue 11 item 3): kept in the
 * engine record (engine_meta.type) and, for a versioned object, in its
 * encoding (dvv.h), so that replicas and node-local readers tell the CRDT
 * types apart without guessing from the value.  Only OBJTYPE_STRING is
 * written today; the others are reserved for the CRDT data types
 * (DESIGN.md 2a, src/cluster/types/), which give them their merge.
 * Values are part of the on-disk and peer formats: never renumber one.
 */
#ifndef RINGKV_CLUSTER_OBJTYPE_H
#define RINGKV_CLUSTER_OBJTYPE_H

enum objtype
{
    OBJTYPE_STRING = 0,  /* a plain value (every record before types) */
    OBJTYPE_HASH = 1,    /* reserved: CRDT map of fields */
    OBJTYPE_SET = 2,     /* reserved: CRDT add-wins set */
    OBJTYPE_COUNTER = 3, /* reserved: CRDT PN-counter */
};

#endif /* RINGKV_CLUSTER_OBJTYPE_H */
