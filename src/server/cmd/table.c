/*
 * cmd/table.c - the command table (one row per command: arity, flags, key
 * positions, docs), COMMAND, and dispatch (auth, MULTI queueing, arity, routing
 * to the coordinator), with Redis's semantics, reply types and error texts
 * (https://redis.io/docs/latest/commands/).  Split from commands.c
 * (issue 11 item 3); see cmd/internal.h.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cluster/chunk.h"
#include "cluster/dvv.h"
#include "cluster/replica.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/hlc.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/cmd/internal.h"
#include "server/internal.h"
#include "server/keyspace.h"

/* ---- COMMAND ------------------------------------------------------------ */

static void cmd_command(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv);

/* ACL (cmd/acl.c): Redis 7's subcommands and flags. */
static const struct command acl_subcommands[] = {
    {"acl|cat", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server", "6.0.0",
     "Lists the ACL categories, or the commands inside a category.",
     "O(1) since the categories and commands are a fixed set.", NULL},
    {"acl|deluser", NULL, -3, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0", "Deletes ACL users, and terminates their connections.",
     "O(1) amortized time considering the typical user.", NULL},
    {"acl|dryrun", NULL, -4, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "7.0.0",
     "Simulates the execution of a command by a user, without executing "
     "the command.",
     "O(1).", NULL},
    {"acl|genpass", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "6.0.0",
     "Generates a pseudorandom, secure password that can be used to "
     "identify ACL users.",
     "O(1)", NULL},
    {"acl|getuser", NULL, 3, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0", "Lists the ACL rules of a user.",
     "O(N). Where N is the number of password, command and pattern rules "
     "that the user has.",
     NULL},
    {"acl|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server", "6.0.0",
     "Returns helpful text about the different subcommands.", "O(1)", NULL},
    {"acl|list", NULL, 2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0", "Dumps the effective rules in ACL file format.",
     "O(N). Where N is the number of configured users.", NULL},
    {"acl|load", NULL, 2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0", "Reloads the rules from the configured ACL file.",
     "O(N). Where N is the number of configured users.", NULL},
    {"acl|log", NULL, -2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0",
     "Lists recent security events generated due to ACL rules.",
     "O(N) with N being the number of entries shown.", NULL},
    {"acl|save", NULL, 2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0",
     "Saves the effective ACL rules in the configured ACL file.",
     "O(N). Where N is the number of configured users.", NULL},
    {"acl|setuser", NULL, -3, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0", "Creates and modifies an ACL user and its rules.",
     "O(N). Where N is the number of rules provided.", NULL},
    {"acl|users", NULL, 2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "6.0.0", "Lists all ACL users.",
     "O(N). Where N is the number of configured users.", NULL},
    {"acl|whoami", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server", "6.0.0",
     "Returns the authenticated username of the current connection.", "O(1)",
     NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct command config_subcommands[] = {
    {"config|get", NULL, -3, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0",
     "Returns the effective values of configuration "
     "parameters.",
     "O(N) when N is the number of configuration parameters "
     "provided",
     NULL},
    {"config|set", NULL, -4, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0", "Sets configuration parameters in-flight.",
     "O(N) when N is the number of configuration parameters provided", NULL},
    {"config|resetstat", NULL, 2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0", "Resets the server's statistics.", "O(1)", NULL},
    {"config|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "5.0.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct command object_subcommands[] = {
    {"object|encoding", NULL, 3, CMD_READONLY, 2, 2, 1, "generic", "2.2.3",
     "Returns the internal encoding of a Redis object.", "O(1)", NULL},
    {"object|freq", NULL, 3, CMD_READONLY, 2, 2, 1, "generic", "4.0.0",
     "Returns the logarithmic access frequency counter of a Redis object.",
     "O(1)", NULL},
    {"object|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "generic",
     "6.2.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {"object|idletime", NULL, 3, CMD_READONLY, 2, 2, 1, "generic", "2.2.3",
     "Returns the time since the last access to a Redis object.", "O(1)", NULL},
    {"object|refcount", NULL, 3, CMD_READONLY, 2, 2, 1, "generic", "2.2.3",
     "Returns the reference count of a value of a key.", "O(1)", NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct command client_subcommands[] = {
    {"client|id", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "5.0.0", "Returns the unique client ID of the connection.", "O(1)", NULL},
    {"client|getname", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "2.6.9", "Returns the name of the connection.", "O(1)", NULL},
    {"client|setname", NULL, 3, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "2.6.9", "Sets the connection name.", "O(1)", NULL},
    {"client|setinfo", NULL, 4, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "7.2.0",
     "Sets information specific to the client or "
     "connection.",
     "O(1)", NULL},
    {"client|list", NULL, -2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "connection", "2.4.0", "Lists open connections.",
     "O(N) where N is the number of client connections", NULL},
    {"client|info", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "6.2.0", "Returns information about the connection.", "O(1)", NULL},
    {"client|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "5.0.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* The Redis Cluster commands, answered from the ring (cluster_slots.c). */
static const struct command cluster_subcommands[] = {
    {"cluster|countkeysinslot", NULL, 3, CMD_LOADING | CMD_STALE, 0, 0, 0,
     "cluster", "3.0.0",
     "Returns the number of keys this node stores in a hash slot.",
     "O(N) where N is the number of keys on this node", NULL},
    {"cluster|getkeysinslot", NULL, 4, CMD_LOADING | CMD_STALE, 0, 0, 0,
     "cluster", "3.0.0",
     "Returns the key names this node stores in a hash slot.",
     "O(N) where N is the number of keys on this node", NULL},
    {"cluster|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "5.0.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {"cluster|info", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "3.0.0", "Returns information about the state of a node.", "O(1)", NULL},
    {"cluster|keyslot", NULL, 3, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "3.0.0", "Returns the hash slot for a key.",
     "O(N) where N is the number of bytes in the key", NULL},
    {"cluster|myid", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "3.0.0", "Returns the ID of a node.", "O(1)", NULL},
    {"cluster|nodes", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "3.0.0", "Returns the cluster configuration for a node.",
     "O(N) where N is the total number of Cluster nodes", NULL},
    {"cluster|shards", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "7.0.0", "Returns the mapping of cluster slots to shards.",
     "O(N) where N is the total number of cluster nodes", NULL},
    {"cluster|slots", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "3.0.0", "Returns the mapping of cluster slots to nodes.",
     "O(N) where N is the total number of Cluster nodes", NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct command command_subcommands[] = {
    {"command|count", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.8.13", "Returns a count of commands.", "O(1)", NULL},
    {"command|docs", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "7.0.0",
     "Returns documentary information about one, multiple or all "
     "commands.",
     "O(N) where N is the number of commands to look up", NULL},
    {"command|info", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.8.13", "Returns information about one, multiple or all commands.",
     "O(N) where N is the number of commands to look up", NULL},
    {"command|list", NULL, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "7.0.0", "Returns a list of command names.",
     "O(N) where N is the total number of commands", NULL},
    {"command|help", NULL, 2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "5.0.0", "Returns helpful text about the different subcommands.", "O(1)",
     NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

#define RO   (CMD_READONLY | CMD_FAST)
#define WR   (CMD_WRITE)
#define WRF  (CMD_WRITE | CMD_FAST)
#define CONN (CMD_NOAUTH | CMD_LOADING | CMD_STALE | CMD_FAST)

/* The command table is data, as in Redis (one JSON file per command
 * there); kept sorted by name for binary search. */
static const struct command g_commands[] = {
    {"acl", cmd_acl, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "server", "6.0.0",
     "A container for Access List Control commands.", "Depends on subcommand.",
     acl_subcommands},
    {"append", cmd_append, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "2.0.0",
     "Appends a string to the value of a key. Creates the key if it doesn't "
     "exist.",
     "O(1)", NULL},
    {"asking", cluster_redis_ok_cmd, 1, CMD_FAST, 0, 0, 0, "cluster", "3.0.0",
     "Accepted for Redis Cluster clients (ringkv never answers ASK).", "O(1)",
     NULL},
    {"auth", cmd_auth, -2, CONN, 0, 0, 0, "connection", "1.0.0",
     "Authenticates the connection.",
     "O(N) where N is the number of "
     "passwords defined for the user",
     NULL},
    {"client", cmd_client, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "2.4.0", "A container for client connection commands.",
     "Depends on subcommand.", client_subcommands},
    {"cluster", cmd_cluster, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "cluster",
     "3.0.0", "A container for Redis Cluster commands, answered from the ring.",
     "Depends on subcommand.", cluster_subcommands},
    {"command", cmd_command, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.8.13", "Returns detailed information about all commands.",
     "O(N) where N is the total number of Redis commands", command_subcommands},
    {"config", cmd_config, -2, CMD_ADMIN | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "2.0.0", "A container for server configuration commands.",
     "Depends on subcommand.", config_subcommands},
    {"copy", cmd_copy, -3, (WR | CMD_CREATE), 1, 2, 1, "generic", "6.2.0",
     "Copies the value of a key to a new key.",
     "O(N) worst case for collections, where N is the number of nested "
     "items. O(1) for string values.",
     NULL},
    {"dbsize", cmd_dbsize, 1, RO, 0, 0, 0, "server", "1.0.0",
     "Returns the number of keys in the database (node-local).", "O(1)", NULL},
    {"decr", cmd_decr, 2, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Decrements the integer value of a key by one.", "O(1)", NULL},
    {"decrby", cmd_decrby, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Decrements a number from the integer value of a key.", "O(1)", NULL},
    {"del", cmd_del, -2, WR, 1, -1, 1, "generic", "1.0.0",
     "Deletes one or more keys.", "O(N) where N is the number of keys", NULL},
    {"discard", cmd_discard, 1, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 0, 0, 0,
     "transactions", "2.0.0", "Discards a transaction.",
     "O(N), when N is the number of queued commands", NULL},
    {"echo", cmd_echo, 2, CMD_FAST, 0, 0, 0, "connection", "1.0.0",
     "Returns the given string.", "O(1)", NULL},
    {"exec", cmd_exec, 1, CMD_NOMULTI | CMD_LOADING | CMD_TXKEYS, 0, 0, 0,
     "transactions", "1.2.0", "Executes all commands in a transaction.",
     "Depends on commands in the transaction", NULL},
    {"exists", cmd_exists, -2, RO, 1, -1, 1, "generic", "1.0.0",
     "Determines whether one or more keys exist.",
     "O(N) where N is the number of keys to check.", NULL},
    {"expire", cmd_expire, -3, WRF, 1, 1, 1, "generic", "1.0.0",
     "Sets the expiration time of a key in seconds.", "O(1)", NULL},
    {"expireat", cmd_expireat, -3, WRF, 1, 1, 1, "generic", "1.2.0",
     "Sets the expiration time of a key to a Unix timestamp.", "O(1)", NULL},
    {"expiretime", cmd_expiretime, 2, RO, 1, 1, 1, "generic", "7.0.0",
     "Returns the expiration time of a key as a Unix timestamp.", "O(1)", NULL},
    {"flushall", cmd_flushall, -1, WR, 0, 0, 0, "server", "1.0.0",
     "Removes all keys (requires --enable-flushall yes).",
     "O(N) where N is the total number of keys", NULL},
    {"flushdb", cmd_flushall, -1, WR, 0, 0, 0, "server", "1.0.0",
     "Removes all keys (same as FLUSHALL: one database).",
     "O(N) where N is the number of keys", NULL},
    {"get", cmd_get, 2, RO, 1, 1, 1, "string", "1.0.0",
     "Returns the string value of a key.", "O(1)", NULL},
    {"getdel", cmd_getdel, 2, WRF, 1, 1, 1, "string", "6.2.0",
     "Returns the string value of a key after deleting the key.", "O(1)", NULL},
    {"getex", cmd_getex, -2, WRF, 1, 1, 1, "string", "6.2.0",
     "Returns the string value of a key after setting its expiration time.",
     "O(1)", NULL},
    {"getrange", cmd_getrange, 4, CMD_READONLY, 1, 1, 1, "string", "2.4.0",
     "Returns a substring of the string stored at a key.",
     "O(N) where N is the length of the returned string.", NULL},
    {"getset", cmd_getset, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Returns the previous string value of a key after setting it to a new "
     "value.",
     "O(1)", NULL},
    {"hdel", cmd_hdel, -3, (CMD_COLL | WRF), 1, 1, 1, "hash", "2.0.0",
     "Deletes one or more fields and their values from a hash. Deletes the "
     "hash if no fields remain.",
     "O(N) where N is the number of fields to be removed.", NULL},
    {"hello", cmd_hello, -1, CONN, 0, 0, 0, "connection", "6.0.0",
     "Handshakes with the server.", "O(1)", NULL},
    {"hexists", cmd_hexists, 3, (CMD_COLL | RO), 1, 1, 1, "hash", "2.0.0",
     "Determines whether a field exists in a hash.", "O(1)", NULL},
    {"hget", cmd_hget, 3, (CMD_COLL | RO), 1, 1, 1, "hash", "2.0.0",
     "Returns the value of a field in a hash.", "O(1)", NULL},
    {"hgetall", cmd_hgetall, 2, (CMD_COLL | CMD_READONLY), 1, 1, 1, "hash",
     "2.0.0", "Returns all fields and values in a hash.",
     "O(N) where N is the size of the hash.", NULL},
    {"hincrby", cmd_hincrby, 4, (CMD_COLL | WRF | CMD_CREATE), 1, 1, 1, "hash",
     "2.0.0",
     "Increments the integer value of a field in a hash by a number. Uses 0 as "
     "initial value if the field doesn't exist.",
     "O(1)", NULL},
    {"hincrbyfloat", cmd_hincrbyfloat, 4, (CMD_COLL | WRF | CMD_CREATE), 1, 1,
     1, "hash", "2.6.0",
     "Increments the floating point value of a field by a number. Uses 0 as "
     "initial value if the field doesn't exist.",
     "O(1)", NULL},
    {"hkeys", cmd_hkeys, 2, (CMD_COLL | CMD_READONLY), 1, 1, 1, "hash", "2.0.0",
     "Returns all fields in a hash.", "O(N) where N is the size of the hash.",
     NULL},
    {"hlen", cmd_hlen, 2, (CMD_COLL | RO), 1, 1, 1, "hash", "2.0.0",
     "Returns the number of fields in a hash.", "O(1)", NULL},
    {"hmget", cmd_hmget, -3, (CMD_COLL | RO), 1, 1, 1, "hash", "2.0.0",
     "Returns the values of all fields in a hash.",
     "O(N) where N is the number of fields being requested.", NULL},
    {"hmset", cmd_hmset, -4, (CMD_COLL | WRF | CMD_CREATE), 1, 1, 1, "hash",
     "2.0.0", "Sets the values of multiple fields.",
     "O(N) where N is the number of fields being set.", NULL},
    {"hrandfield", cmd_hrandfield, -2, (CMD_COLL | CMD_READONLY), 1, 1, 1,
     "hash", "6.2.0", "Returns one or more random fields from a hash.",
     "O(N) where N is the size of the hash (ringkv reads every field).", NULL},
    {"hscan", cmd_hscan, -3, (CMD_COLL | CMD_READONLY), 1, 1, 1, "hash",
     "2.8.0", "Iterates over fields and values of a hash.",
     "O(1) for every call. O(N) for a complete iteration.", NULL},
    {"hset", cmd_hset, -4, (CMD_COLL | WRF | CMD_CREATE), 1, 1, 1, "hash",
     "2.0.0", "Creates or modifies the value of a field in a hash.",
     "O(1) for each field/value pair added.", NULL},
    {"hsetnx", cmd_hsetnx, 4, (CMD_COLL | WRF | CMD_CREATE), 1, 1, 1, "hash",
     "2.0.0",
     "Sets the value of a field in a hash only when the field doesn't exist.",
     "O(1)", NULL},
    {"hstrlen", cmd_hstrlen, 3, (CMD_COLL | RO), 1, 1, 1, "hash", "3.2.0",
     "Returns the length of the value of a field.", "O(1)", NULL},
    {"hvals", cmd_hvals, 2, (CMD_COLL | CMD_READONLY), 1, 1, 1, "hash", "2.0.0",
     "Returns all values in a hash.", "O(N) where N is the size of the hash.",
     NULL},
    {"incr", cmd_incr, 2, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Increments the integer value of a key by one.", "O(1)", NULL},
    {"incrby", cmd_incrby, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Increments the integer value of a key by a number.", "O(1)", NULL},
    {"incrbyfloat", cmd_incrbyfloat, 3, (WRF | CMD_CREATE), 1, 1, 1, "string",
     "2.6.0", "Increment the floating point value of a key by a number.",
     "O(1)", NULL},
    {"info", cmd_info, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, "server", "1.0.0",
     "Returns information and statistics about the server.", "O(1)", NULL},
    {"keys", cmd_keys, 2, CMD_READONLY, 0, 0, 0, "generic", "1.0.0",
     "Returns all key names that match a pattern (node-local).",
     "O(N) with N being the number of keys", NULL},
    {"mget", cmd_mget, -2, RO, 1, -1, 1, "string", "1.0.0",
     "Atomically returns the string values of one or more keys.",
     "O(N) where N is the number of keys to retrieve.", NULL},
    {"mset", cmd_mset, -3, (WR | CMD_CREATE | CMD_BLIND), 1, -1, 2, "string",
     "1.0.1",
     "Atomically creates or modifies the string values of one or more keys.",
     "O(N) where N is the number of keys to set.", NULL},
    {"msetnx", cmd_msetnx, -3, (WR | CMD_CREATE), 1, -1, 2, "string", "1.0.1",
     "Atomically modifies the string values of one or more keys only when "
     "all keys don't exist.",
     "O(N) where N is the number of keys to set.", NULL},
    {"multi", cmd_multi, 1, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 0, 0, 0,
     "transactions", "1.2.0", "Starts a transaction.", "O(1)", NULL},
    /* the key positions are the subcommands' (OBJECT ENCODING key):
     * routing, ACL key checks and pipelining read the top-level entry */
    {"object", cmd_object, -2, 0, 2, 2, 1, "generic", "2.2.3",
     "A container for object introspection commands.", "Depends on subcommand.",
     object_subcommands},
    {"persist", cmd_persist, 2, WRF, 1, 1, 1, "generic", "2.2.0",
     "Removes the expiration time of a key.", "O(1)", NULL},
    {"pexpire", cmd_pexpire, -3, WRF, 1, 1, 1, "generic", "2.6.0",
     "Sets the expiration time of a key in milliseconds.", "O(1)", NULL},
    {"pexpireat", cmd_pexpireat, -3, WRF, 1, 1, 1, "generic", "2.6.0",
     "Sets the expiration time of a key to a Unix milliseconds timestamp.",
     "O(1)", NULL},
    {"pexpiretime", cmd_pexpiretime, 2, RO, 1, 1, 1, "generic", "7.0.0",
     "Returns the expiration time of a key as a Unix milliseconds "
     "timestamp.",
     "O(1)", NULL},
    {"ping", cmd_ping, -1, CMD_FAST | CMD_STALE, 0, 0, 0, "connection", "1.0.0",
     "Returns the server's liveliness response.", "O(1)", NULL},
    {"psetex", cmd_psetex, 4, (WR | CMD_CREATE | CMD_BLIND), 1, 1, 1, "string",
     "2.6.0",
     "Sets both string value and expiration time in milliseconds of a key.",
     "O(1)", NULL},
    {"pttl", cmd_pttl, 2, RO, 1, 1, 1, "generic", "2.6.0",
     "Returns the expiration time in milliseconds of a key.", "O(1)", NULL},
    {"quit", cmd_quit, -1, CONN | CMD_NOMULTI, 0, 0, 0, "connection", "1.0.0",
     "Closes the connection.", "O(1)", NULL},
    {"randomkey", cmd_randomkey, 1, CMD_READONLY, 0, 0, 0, "generic", "1.0.0",
     "Returns a random key name from the database (node-local).", "O(1)", NULL},
    {"readonly", cluster_redis_ok_cmd, 1, CMD_FAST | CMD_LOADING | CMD_STALE, 0,
     0, 0, "cluster", "3.0.0",
     "Accepted for Redis Cluster clients (every node serves reads).", "O(1)",
     NULL},
    {"readwrite", cluster_redis_ok_cmd, 1, CMD_FAST | CMD_LOADING | CMD_STALE,
     0, 0, 0, "cluster", "3.0.0",
     "Accepted for Redis Cluster clients (every node serves writes).", "O(1)",
     NULL},
    {"rename", cmd_rename, 3, (WR | CMD_CREATE), 1, 2, 1, "generic", "1.0.0",
     "Renames a key and overwrites the destination.", "O(1)", NULL},
    {"renamenx", cmd_renamenx, 3, (WRF | CMD_CREATE), 1, 2, 1, "generic",
     "1.0.0", "Renames a key only when the target key name doesn't exist.",
     "O(1)", NULL},
    {"ringkv.cluster", cluster_cmd, -2, CMD_ADMIN | CMD_NOMULTI | CMD_NOTX, 0,
     0, 0, "cluster", "0.1.0",
     "Cluster membership: JOIN HOST:PEERPORT, LEAVE, REMOVE NODE, STATUS.",
     "O(N) where N is the number of members", NULL},
    {"ringkv.del", cmd_ringkv_del, 3, WR | CMD_NOTX | CMD_VERSIONED, 1, 1, 1,
     "cluster", "0.1.0",
     "Deletes the siblings a causal context covers (a tombstone).",
     "O(siblings)", NULL},
    {"ringkv.getall", cmd_getall, 2, RO | CMD_NOTX | CMD_VERSIONED, 1, 1, 1,
     "cluster", "0.1.0",
     "Returns every sibling of a key with its causal context.", "O(siblings)",
     NULL},
    {"ringkv.localget", cmd_localget, 2, CMD_READONLY | CMD_LOCAL, 1, 1, 1,
     "cluster", "0.1.0",
     "Returns this node's stored value of a key, without coordination.", "O(1)",
     NULL},
    {"ringkv.localobj", cmd_localobj, 2, CMD_READONLY | CMD_LOCAL, 1, 1, 1,
     "cluster", "0.1.0",
     "Returns this node's stored record of a key (the versioned object), "
     "without coordination.",
     "O(1)", NULL},
    {"ringkv.put", cmd_ringkv_put, 4,
     (WR | CMD_CREATE | CMD_NOTX | CMD_VERSIONED | CMD_TYPED), 1, 1, 1,
     "cluster", "0.1.0",
     "Writes a value that supersedes the siblings a causal context covers.",
     "O(siblings)", NULL},
    {"sadd", cmd_sadd, -3, (CMD_COLL | WRF | CMD_CREATE), 1, 1, 1, "set",
     "1.0.0",
     "Adds one or more members to a set. Creates the key if it doesn't exist.",
     "O(1) for each element added.", NULL},
    {"save", cmd_save, 1, CMD_ADMIN | CMD_NOMULTI | CMD_NOTX, 0, 0, 0, "server",
     "1.0.0", "Makes every write so far durable (fsync).", "O(1)", NULL},
    {"scan", cmd_scan, -2, CMD_READONLY, 0, 0, 0, "generic", "2.8.0",
     "Iterates over the key names in the database (node-local cursor).",
     "O(1) for every call. O(N) for a complete iteration.", NULL},
    {"scard", cmd_scard, 2, (CMD_COLL | RO), 1, 1, 1, "set", "1.0.0",
     "Returns the number of members in a set.", "O(1)", NULL},
    {"sdiff", cmd_sdiff, -2, (CMD_COLL | CMD_READONLY), 1, -1, 1, "set",
     "1.0.0", "Returns the difference of multiple sets.",
     "O(N) where N is the total number of elements in all given sets.", NULL},
    {"sdiffstore", cmd_sdiffstore, -3, (CMD_COLL | WR | CMD_CREATE), 1, -1, 1,
     "set", "1.0.0", "Stores the difference of multiple sets in a key.",
     "O(N) where N is the total number of elements in all given sets.", NULL},
    {"select", cmd_select, 2, CMD_LOADING | CMD_STALE | CMD_FAST, 0, 0, 0,
     "connection", "1.0.0", "Changes the selected database (only 0 exists).",
     "O(1)", NULL},
    {"set", cmd_set, -3, (WR | CMD_CREATE | CMD_BLIND_OPTS | CMD_TYPED), 1, 1,
     1, "string", "1.0.0",
     "Sets the string value of a key, ignoring its type. The key is created "
     "if it doesn't exist.",
     "O(1)", NULL},
    {"setex", cmd_setex, 4, (WR | CMD_CREATE | CMD_BLIND), 1, 1, 1, "string",
     "2.0.0", "Sets the string value and expiration time of a key.", "O(1)",
     NULL},
    {"setnx", cmd_setnx, 3, (WRF | CMD_CREATE), 1, 1, 1, "string", "1.0.0",
     "Set the string value of a key only when the key doesn't exist.", "O(1)",
     NULL},
    {"setrange", cmd_setrange, 4, (WR | CMD_CREATE), 1, 1, 1, "string", "2.2.0",
     "Overwrites a part of a string value with another by an offset. Creates "
     "the key if it doesn't exist.",
     "O(1), not counting the time taken to copy the new string in place.",
     NULL},
    {"shutdown", cmd_shutdown, -1,
     CMD_ADMIN | CMD_NOMULTI | CMD_NOTX | CMD_LOADING, 0, 0, 0, "server",
     "1.0.0",
     "Synchronously saves the database(s) to disk and "
     "shuts down the server.",
     "O(1)", NULL},
    {"sinter", cmd_sinter, -2, (CMD_COLL | CMD_READONLY), 1, -1, 1, "set",
     "1.0.0", "Returns the intersect of multiple sets.",
     "O(N*M) worst case where N is the cardinality of the smallest set and M "
     "is the number of sets.",
     NULL},
    {"sintercard", cmd_sintercard, -3, (CMD_COLL | CMD_READONLY), 2, -1, 1,
     "set", "7.0.0",
     "Returns the number of members of the intersect of multiple sets.",
     "O(N*M) worst case where N is the cardinality of the smallest set and M "
     "is the number of sets.",
     NULL},
    {"sinterstore", cmd_sinterstore, -3, (CMD_COLL | WR | CMD_CREATE), 1, -1, 1,
     "set", "1.0.0", "Stores the intersect of multiple sets in a key.",
     "O(N*M) worst case where N is the cardinality of the smallest set and M "
     "is the number of sets.",
     NULL},
    {"sismember", cmd_sismember, 3, (CMD_COLL | RO), 1, 1, 1, "set", "1.0.0",
     "Determines whether a member belongs to a set.", "O(1)", NULL},
    {"smembers", cmd_smembers, 2, (CMD_COLL | CMD_READONLY), 1, 1, 1, "set",
     "1.0.0", "Returns all members of a set.",
     "O(N) where N is the set cardinality.", NULL},
    {"smismember", cmd_smismember, -3, (CMD_COLL | RO), 1, 1, 1, "set", "6.2.0",
     "Determines whether multiple members belong to a set.",
     "O(N) where N is the number of elements being checked for membership",
     NULL},
    {"smove", cmd_smove, 4, (CMD_COLL | WRF | CMD_CREATE), 1, 2, 1, "set",
     "1.0.0", "Moves a member from one set to another.", "O(1)", NULL},
    {"spop", cmd_spop, -2, (CMD_COLL | WRF), 1, 1, 1, "set", "1.0.0",
     "Returns one or more random members from a set after removing them. "
     "Deletes the set if the last member was popped.",
     "O(N) where N is the set cardinality (ringkv reads every member).", NULL},
    {"srandmember", cmd_srandmember, -2, (CMD_COLL | CMD_READONLY), 1, 1, 1,
     "set", "1.0.0", "Get one or multiple random members from a set",
     "O(N) where N is the set cardinality (ringkv reads every member).", NULL},
    {"srem", cmd_srem, -3, (CMD_COLL | WRF), 1, 1, 1, "set", "1.0.0",
     "Removes one or more members from a set. Deletes the set if the last "
     "member was removed.",
     "O(N) where N is the number of members to be removed.", NULL},
    {"sscan", cmd_sscan, -3, (CMD_COLL | CMD_READONLY), 1, 1, 1, "set", "2.8.0",
     "Iterates over members of a set.",
     "O(1) for every call. O(N) for a complete iteration.", NULL},
    {"strlen", cmd_strlen, 2, RO, 1, 1, 1, "string", "2.2.0",
     "Returns the length of a string value.", "O(1)", NULL},
    {"sunion", cmd_sunion, -2, (CMD_COLL | CMD_READONLY), 1, -1, 1, "set",
     "1.0.0", "Returns the union of multiple sets.",
     "O(N) where N is the total number of elements in all given sets.", NULL},
    {"sunionstore", cmd_sunionstore, -3, (CMD_COLL | WR | CMD_CREATE), 1, -1, 1,
     "set", "1.0.0", "Stores the union of multiple sets in a key.",
     "O(N) where N is the total number of elements in all given sets.", NULL},
    {"time", cmd_time, 1, CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "2.6.0", "Returns the server time.", "O(1)", NULL},
    {"touch", cmd_touch, -2, RO, 1, -1, 1, "generic", "3.2.1",
     "Returns the number of existing keys out of those specified after "
     "updating the time they were last accessed.",
     "O(N) where N is the number of keys that will be touched.", NULL},
    {"ttl", cmd_ttl, 2, RO, 1, 1, 1, "generic", "1.0.0",
     "Returns the expiration time in seconds of a key.", "O(1)", NULL},
    {"type", cmd_type, 2, RO, 1, 1, 1, "generic", "1.0.0",
     "Determines the type of value stored at a key.", "O(1)", NULL},
    {"unlink", cmd_del, -2, WRF, 1, -1, 1, "generic", "4.0.0",
     "Asynchronously deletes one or more keys.",
     "O(1) for each key removed regardless of its size.", NULL},
    {"unwatch", cmd_unwatch, 1, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 0, 0, 0,
     "transactions", "2.2.0", "Forgets about watched keys of a transaction.",
     "O(1)", NULL},
    {"watch", cmd_watch, -2, CMD_NOMULTI | CMD_FAST | CMD_LOADING, 1, -1, 1,
     "transactions", "2.2.0",
     "Monitors changes to keys to determine the execution of a transaction.",
     "O(1) for every key.", NULL},
};

#define N_COMMANDS (sizeof(g_commands) / sizeof(g_commands[0]))

bool command_is_blind(const struct command *cmd,
                      size_t argc,
                      const struct resp_arg *argv)
{
    if (cmd->flags & CMD_BLIND) {
        return true;
    }
    if (!(cmd->flags & CMD_BLIND_OPTS)) {
        return false;
    }
    /* SET k v [NX|XX] [GET] [EX s|PX ms|KEEPTTL]: these options read */
    for (size_t i = 3; i < argc; i++) {
        if (cmd__arg_is(&argv[i], "NX") || cmd__arg_is(&argv[i], "XX") ||
            cmd__arg_is(&argv[i], "GET") || cmd__arg_is(&argv[i], "KEEPTTL")) {
            return false;
        }
    }
    return true;
}

size_t command_count(void)
{
    return N_COMMANDS;
}

size_t command_index(const struct command *cmd)
{
    return (size_t)(cmd - g_commands);
}

const struct command *command_at(size_t i)
{
    return i < N_COMMANDS ? &g_commands[i] : NULL;
}

const struct command *command_lookup(const char *name, size_t len)
{
    char low[32];
    if (len == 0 || len >= sizeof(low)) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        low[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    low[len] = '\0';
    size_t lo = 0, hi = N_COMMANDS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(low, g_commands[mid].name);
        if (cmp == 0) {
            return &g_commands[mid];
        }
        if (cmp < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

static void reply_flag_set(struct client *c, uint32_t flags)
{
    static const struct
    {
        uint32_t bit;
        const char *name;
    } names[] = {
        {CMD_WRITE, "write"},      {CMD_READONLY, "readonly"},
        {CMD_ADMIN, "admin"},      {CMD_NOAUTH, "no_auth"},
        {CMD_NOMULTI, "no_multi"}, {CMD_LOADING, "loading"},
        {CMD_STALE, "stale"},      {CMD_FAST, "fast"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n += (flags & names[i].bit) != 0;
    }
    resp_w_set(&c->obuf, c->proto, n);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (flags & names[i].bit) {
            reply_simple(c, names[i].name);
        }
    }
}

static size_t n_subcommands(const struct command *cmd)
{
    size_t n = 0;
    while (cmd->subcommands && cmd->subcommands[n].name) {
        n++;
    }
    return n;
}

static void reply_command_info(struct client *c,
                               const struct command *cmd,
                               const struct command *parent)
{
    reply_array(c, 10);
    reply_bulk_str(c, cmd->name);
    reply_int(c, cmd->arity);
    reply_flag_set(c, cmd->flags);
    reply_int(c, cmd->first_key);
    reply_int(c, cmd->last_key);
    reply_int(c, cmd->key_step);
    /* the ACL categories, as ACL CAT lists them (cmd/acl.c) */
    uint32_t cats = cmd__acl_categories(cmd, parent);
    size_t nc = 0;
    for (int i = 0; i < ACL_CAT_COUNT; i++) {
        nc += (cats >> i) & 1;
    }
    resp_w_set(&c->obuf, c->proto, nc);
    for (int i = 0; i < ACL_CAT_COUNT; i++) {
        if ((cats >> i) & 1) {
            char cat[32];
            snprintf(cat, sizeof(cat), "@%s", acl_category_name(i));
            reply_simple(c, cat);
        }
    }
    reply_array(c, 0); /* tips */
    reply_array(c, 0); /* key specs */
    size_t ns = n_subcommands(cmd);
    reply_array(c, ns);
    for (size_t i = 0; i < ns; i++) {
        reply_command_info(c, &cmd->subcommands[i], cmd);
    }
}

static void reply_command_docs(struct client *c, const struct command *cmd)
{
    size_t ns = n_subcommands(cmd);
    reply_map(c, 4 + (ns > 0));
    reply_bulk_str(c, "summary");
    reply_bulk_str(c, cmd->summary);
    reply_bulk_str(c, "since");
    reply_bulk_str(c, cmd->since);
    reply_bulk_str(c, "group");
    reply_bulk_str(c, cmd->group);
    reply_bulk_str(c, "complexity");
    reply_bulk_str(c, cmd->complexity);
    if (ns) {
        reply_bulk_str(c, "subcommands");
        reply_map(c, ns);
        for (size_t i = 0; i < ns; i++) {
            reply_bulk_str(c, cmd->subcommands[i].name);
            reply_command_docs(c, &cmd->subcommands[i]);
        }
    }
}

static void cmd_command(struct client *c,
                        size_t argc,
                        const struct resp_arg *argv)
{
    if (argc == 1) {
        reply_array(c, N_COMMANDS);
        for (size_t i = 0; i < N_COMMANDS; i++) {
            reply_command_info(c, &g_commands[i], NULL);
        }
        return;
    }
    const struct resp_arg *sub = &argv[1];
    if (cmd__arg_is(sub, "COUNT") && argc == 2) {
        reply_int(c, (int64_t)N_COMMANDS);
    } else if (cmd__arg_is(sub, "LIST")) {
        /* COMMAND LIST [FILTERBY MODULE m | ACLCAT cat | PATTERN p] */
        const struct resp_arg *pat = NULL, *cat = NULL;
        bool module = false;
        if (argc == 5 && cmd__arg_is(&argv[2], "FILTERBY")) {
            if (cmd__arg_is(&argv[3], "PATTERN")) {
                pat = &argv[4];
            } else if (cmd__arg_is(&argv[3], "ACLCAT")) {
                cat = &argv[4];
            } else if (cmd__arg_is(&argv[3], "MODULE")) {
                module = true;
            } else {
                reply_error(c, ERR_SYNTAX);
                return;
            }
        } else if (argc != 2) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
        bool keep[N_COMMANDS];
        size_t n = 0;
        for (size_t i = 0; i < N_COMMANDS; i++) {
            const struct command *cmd = &g_commands[i];
            bool k = !module;
            if (k && pat) {
                k = rk_glob_match(pat->ptr, pat->len, cmd->name,
                                  strlen(cmd->name), true);
            }
            if (k && cat) {
                const char *cn = cat->ptr;
                size_t cl = cat->len;
                if (cl > 0 && cn[0] == '@') {
                    cn++;
                    cl--;
                }
                int ci = acl_category_lookup(cn, cl);
                k = ci >= 0 && ((cmd__acl_categories(cmd, NULL) >> ci) & 1);
            }
            keep[i] = k;
            n += k;
        }
        reply_array(c, n);
        for (size_t i = 0; i < N_COMMANDS; i++) {
            if (keep[i]) {
                reply_bulk_str(c, g_commands[i].name);
            }
        }
    } else if (cmd__arg_is(sub, "INFO")) {
        if (argc == 2) {
            reply_array(c, N_COMMANDS);
            for (size_t i = 0; i < N_COMMANDS; i++) {
                reply_command_info(c, &g_commands[i], NULL);
            }
            return;
        }
        reply_array(c, argc - 2);
        for (size_t i = 2; i < argc; i++) {
            const struct command *cmd =
                command_lookup(argv[i].ptr, argv[i].len);
            if (cmd) {
                reply_command_info(c, cmd, NULL);
            } else {
                resp_w_null_array(&c->obuf, c->proto);
            }
        }
    } else if (cmd__arg_is(sub, "HELP")) {
        static const char *help[] = {
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "LIST",
            "    Return a list of all commands.",
            "HELP",
            "    Print this help.",
        };
        cmd__reply_lines(c, help, sizeof(help) / sizeof(help[0]));
    } else if (cmd__arg_is(sub, "DOCS")) {
        size_t n = 0;
        if (argc == 2) {
            n = N_COMMANDS;
        } else {
            for (size_t i = 2; i < argc; i++) {
                n += command_lookup(argv[i].ptr, argv[i].len) != NULL;
            }
        }
        reply_map(c, n);
        for (size_t i = 0; i < (argc == 2 ? N_COMMANDS : argc - 2); i++) {
            const struct command *cmd =
                argc == 2 ? &g_commands[i]
                          : command_lookup(argv[i + 2].ptr, argv[i + 2].len);
            if (cmd) {
                reply_bulk_str(c, cmd->name);
                reply_command_docs(c, cmd);
            }
        }
    } else {
        cmd__reply_bad_subcommand(c, sub, "COMMAND");
    }
}

/* ---- dispatch ------------------------------------------------------------ */

static void reply_unknown_command(struct client *c,
                                  size_t argc,
                                  const struct resp_arg *argv)
{
    char args[512];
    size_t o = 0;
    args[0] = '\0';
    for (size_t i = 1; i < argc && o < 128; i++) {
        int room = 128 - (int)o;
        int n = snprintf(
            args + o, sizeof(args) - o, "'%.*s' ",
            (int)(argv[i].len < (size_t)room ? argv[i].len : (size_t)room),
            argv[i].ptr);
        if (n < 0) {
            break;
        }
        o += (size_t)n;
        if (o >= sizeof(args)) {
            o = sizeof(args) - 1;
            break;
        }
    }
    reply_errorf(c, "ERR unknown command '%.*s', with args beginning with: %s",
                 (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].ptr,
                 args);
}

/* Finds the subcommand entry ("config|get") named by `a`, or NULL. */
static const struct command *subcommand_lookup(const struct command *cmd,
                                               const struct resp_arg *a)
{
    for (const struct command *sc = cmd->subcommands; sc && sc->name; sc++) {
        const char *bar = strchr(sc->name, '|');
        const char *n = bar ? bar + 1 : sc->name;
        if (strlen(n) == a->len && strncasecmp(n, a->ptr, a->len) == 0) {
            return sc;
        }
    }
    return NULL;
}

/*
 * Rejects a command before it runs.  Inside MULTI the transaction is
 * flagged, and EXEC itself being rejected aborts it (Redis rejectCommand).
 */
static void reject(struct client *c, const struct command *cmd, const char *msg)
{
    if (c->srv->cfg->log_requests) {
        log_request(c, cmd ? cmd->name : "unknown", 0, 0, true);
    }
    if (cmd && c->srv->cmdstats) {
        c->srv->cmdstats[command_index(cmd)].calls++;
        c->srv->cmdstats[command_index(cmd)].errors++;
    }
    if (c->in_multi) {
        if (cmd && cmd->proc == cmd_exec) {
            const char *m = strncmp(msg, "ERR ", 4) == 0 ? msg + 4 : msg;
            multi_reset(c);
            reply_errorf(c, "EXECABORT Transaction discarded because of: %s",
                         m);
            return;
        }
        c->multi_dirty = true;
    }
    reply_error(c, msg);
}

static bool arity_ok(int arity, size_t argc)
{
    return arity > 0 ? argc == (size_t)arity : argc >= (size_t)-arity;
}

/*
 * Whether a command may start while earlier coordinated commands of the
 * same client are still in flight (cluster.c pipelines those): a keyed
 * command that will be routed and can fail only inside its handler (not
 * by arity, key checks or the user's ACL rules).
 * Anything else waits its turn (cluster_defer), so replies stay in order.
 */
static bool pipelineable(struct client *c,
                         const struct command *cmd,
                         size_t argc,
                         const struct resp_arg *argv)
{
    if (cmd == NULL || !c->authed || c->in_multi ||
        !arity_ok(cmd->arity, argc) || cmd->subcommands ||
        cmd->first_key <= 0 ||
        (cmd->flags & (CMD_NOMULTI | CMD_LOCAL | CMD_NOTX))) {
        return false;
    }
    size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
    for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
         i += (size_t)cmd->key_step) {
        if (argv[i].len == 0 || argv[i].len > ENGINE_DEFAULT_MAX_KEY) {
            return false;
        }
    }
    /* a command the user may not run is refused before its handler: it
     * waits its turn, so the NOPERM comes after the earlier replies */
    if (!cmd__acl_would_allow(c, cmd, argc, argv)) {
        return false;
    }
    const char *why;
    return cluster_routes(c->srv, c, cmd, &why) && why == NULL;
}

/* True for a first word that an HTTP request puts where RESP has a
 * command: a browser tricked into POSTing to the RESP port ("cross-protocol
 * scripting"; Redis's securityWarningCommand checks the same two). */
static bool looks_like_http(const struct resp_arg *a)
{
    return (a->len == 4 && strncasecmp(a->ptr, "POST", 4) == 0) ||
           (a->len == 5 && strncasecmp(a->ptr, "Host:", 5) == 0);
}

/* Closes a client that sent HTTP to the RESP port, without a reply, and
 * logs it (at most once a minute). */
static void security_attack(struct client *c)
{
    struct server *s = c->srv;
    s->stats.security_attacks++;
    uint64_t now = server_mono_ms();
    if (s->stats.security_logged_ms == 0 ||
        now >= s->stats.security_logged_ms + 60000) {
        s->stats.security_logged_ms = now;
        rk_log(RK_LOG_WARN, "security_attack",
               "client=%s id=%" PRIu64 " total=%" PRIu64
               " msg=\"possible security attack: an HTTP request (POST or "
               "Host:) on the RESP port, likely a web page trying cross "
               "protocol scripting; connection closed\"",
               c->addr, c->id, s->stats.security_attacks);
    }
    c->close_after_reply = true;
}

void command_dispatch(struct client *c,
                      size_t argc,
                      const struct resp_arg *argv)
{
    char msg[512];
    if (looks_like_http(&argv[0])) {
        security_attack(c);
        return;
    }
    const struct command *cmd = command_lookup(argv[0].ptr, argv[0].len);
    if (cluster_client_busy(c) && !pipelineable(c, cmd, argc, argv)) {
        cluster_defer(c, argc, argv);
        return;
    }
    if (cmd == NULL) {
        if (!c->authed) {
            reject(c, NULL, ERR_NOAUTH);
            return;
        }
        if (c->in_multi) {
            c->multi_dirty = true;
        }
        reply_unknown_command(c, argc, argv);
        if (c->srv->cfg->log_requests) {
            log_request(c, "unknown", argc > 1 ? argc - 1 : 0, 0, true);
        }
        return;
    }
    if (!c->authed && !(cmd->flags & CMD_NOAUTH)) {
        reject(c, cmd, ERR_NOAUTH);
        return;
    }
    if (!arity_ok(cmd->arity, argc)) {
        snprintf(msg, sizeof(msg),
                 "ERR wrong number of arguments for '%s' command", cmd->name);
        reject(c, cmd, msg);
        return;
    }
    const struct command *sc = NULL; /* the subcommand's entry, if any */
    if (cmd->subcommands && argc >= 2) {
        sc = subcommand_lookup(cmd, &argv[1]);
        if (sc == NULL) {
            char up[32];
            size_t n = strlen(cmd->name) < sizeof(up) - 1 ? strlen(cmd->name)
                                                          : sizeof(up) - 1;
            for (size_t i = 0; i < n; i++) {
                up[i] = (char)toupper((unsigned char)cmd->name[i]);
            }
            up[n] = '\0';
            snprintf(
                msg, sizeof(msg), "ERR unknown subcommand '%.*s'. Try %s HELP.",
                (int)(argv[1].len > 128 ? 128 : argv[1].len), argv[1].ptr, up);
            reject(c, cmd, msg);
            return;
        }
        if (!arity_ok(sc->arity, argc)) {
            snprintf(msg, sizeof(msg),
                     "ERR wrong number of arguments for '%s' command",
                     sc->name);
            reject(c, cmd, msg);
            return;
        }
    }
    if (!cmd__acl_allows(c, cmd, NULL, argc, argv, msg, sizeof(msg))) {
        reject(c, cmd, msg);
        return;
    }
    if (c->in_multi && (cmd->flags & CMD_NOTX)) {
        reject(c, cmd, "ERR Command not allowed inside a transaction");
        return;
    }
    if (cmd->first_key > 0) {
        /* ringkv's own key space (chunk blocks, hash and set members):
         * no client names a key in it */
        size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
        for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
             i += (size_t)cmd->key_step) {
            if (chunk_key_is_reserved(argv[i].ptr, argv[i].len)) {
                reject(c, cmd,
                       "ERR keys that start with the bytes \\xffrkv\\xff "
                       "are reserved for ringkv's own records");
                return;
            }
        }
    }
    if (cmd->first_key > 0 && (cmd->flags & CMD_CREATE)) {
        /* Refuse writes of empty keys before the command runs, so a
         * multi-key command never writes part of its keys; reads simply
         * find no such key. */
        size_t last = cmd->last_key < 0 ? argc - 1 : (size_t)cmd->last_key;
        for (size_t i = (size_t)cmd->first_key; i <= last && i < argc;
             i += (size_t)cmd->key_step) {
            if (argv[i].len == 0) {
                reject(c, cmd,
                       "ERR invalid key: ringkv does not support "
                       "empty keys");
                return;
            }
            if (argv[i].len > ENGINE_DEFAULT_MAX_KEY) {
                reject(c, cmd, "ERR invalid key: longer than 65536 bytes");
                return;
            }
        }
    }
    if (c->in_multi && !(cmd->flags & CMD_NOMULTI)) {
        if (!cmd__multi_queue(c, cmd, argc, argv)) {
            c->multi_dirty = true;
            reply_error(c, "ERR out of memory");
            return;
        }
        reply_simple(c, "QUEUED");
        return;
    }
    c->last_cmd = cmd->name;
    c->cur_cmd = cmd;
    if (c->srv->cmdstats) {
        c->srv->cmdstats[command_index(cmd)].calls++;
    }
    const char *why;
    /* a keyed container whose subcommand names no key (OBJECT HELP): its
     * own entry says so, and it runs here */
    bool keyless = sc != NULL && cmd->first_key > 0 && sc->first_key == 0;
    if ((cmd->flags & CMD_COLL) && c->ks->ops->mget == NULL) {
        reply_error(c, ERR_COLL_CLUSTER);
        c->cur_cmd = NULL;
        return;
    }
    if ((cmd->flags & CMD_COLL) && cluster_routes(c->srv, c, cmd, &why)) {
        reply_error(c, ERR_COLL_CLUSTER);
        c->cur_cmd = NULL;
        return;
    }
    if (!keyless && cluster_routes(c->srv, c, cmd, &why)) {
        cluster_run(c, cmd, argc, argv);
        c->cur_cmd = NULL;
        return;
    }
    if (c->srv->cfg->log_requests) {
        struct cmd_stat *st =
            c->srv->cmdstats ? &c->srv->cmdstats[command_index(cmd)] : NULL;
        uint64_t errs = st ? st->errors : 0, t0 = server_mono_us();
        cmd->proc(c, argc, argv);
        log_request(c, cmd->name, argc > 1 ? argc - 1 : 0,
                    server_mono_us() - t0, st && st->errors != errs);
    } else {
        cmd->proc(c, argc, argv);
    }
    c->cur_cmd = NULL;
}

void log_request(struct client *c,
                 const char *cmd,
                 size_t nargs,
                 uint64_t us,
                 bool failed)
{
    rk_log(RK_LOG_INFO, "request",
           "command=%s args=%zu ms=%.3f result=%s client=%s", cmd, nargs,
           (double)us / 1000.0, failed ? "error" : "ok", c->addr);
}
