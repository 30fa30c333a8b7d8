/*
 * cli_help.c - the commands `help` lists: ringkvd's command set of
 * DESIGN.md section 5, with synopses in Redis's notation, plus the REPL's
 * own commands.  Keep in step with src/server's command table when a
 * command is added.
 */
#include <stdbool.h>
#include <string.h>

#include "client/internal.h"

static const struct cli_cmd_help help_table[] = {
    /* keys and strings */
    {"GET", "key", "Get the value of a key", "string"},
    {"SET", "key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]",
     "Set the value of a key, optionally with a TTL or a condition", "string"},
    {"SETNX", "key value", "Set a key only if it does not exist", "string"},
    {"GETDEL", "key", "Get the value of a key and delete it", "string"},
    {"GETEX", "key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST]",
     "Get the value of a key and set or clear its TTL", "string"},
    {"GETRANGE", "key start end", "Get a substring of the value of a key",
     "string"},
    {"SETEX", "key seconds value", "Set a key with a TTL in seconds", "string"},
    {"PSETEX", "key milliseconds value", "Set a key with a TTL in milliseconds",
     "string"},
    {"MGET", "key [key ...]", "Get the values of several keys", "string"},
    {"MSET", "key value [key value ...]", "Set several keys at once", "string"},
    {"MSETNX", "key value [key value ...]",
     "Set several keys only if none of them exists", "string"},
    {"STRLEN", "key", "Length in bytes of the value of a key", "string"},
    {"APPEND", "key value", "Append a value to a key", "string"},
    {"SETRANGE", "key offset value",
     "Overwrite part of a string at an offset (zero-padded)", "string"},
    {"GETSET", "key value", "Set a key and return its old value", "string"},
    {"INCR", "key", "Add 1 to the integer value of a key", "string"},
    {"DECR", "key", "Subtract 1 from the integer value of a key", "string"},
    {"INCRBY", "key increment", "Add an integer to the value of a key",
     "string"},
    {"DECRBY", "key decrement", "Subtract an integer from the value of a key",
     "string"},
    {"INCRBYFLOAT", "key increment",
     "Add a floating-point number to the value of a key", "string"},
    /* hashes (a standalone node, for now) */
    {"HSET", "key field value [field value ...]", "Set fields of a hash",
     "hash"},
    {"HSETNX", "key field value", "Set a field only if it does not exist",
     "hash"},
    {"HMSET", "key field value [field value ...]",
     "Set fields of a hash (answers OK)", "hash"},
    {"HGET", "key field", "Get the value of a field", "hash"},
    {"HMGET", "key field [field ...]", "Get the values of fields", "hash"},
    {"HGETALL", "key", "Get every field and value of a hash", "hash"},
    {"HDEL", "key field [field ...]", "Delete fields", "hash"},
    {"HEXISTS", "key field", "Whether a field exists", "hash"},
    {"HLEN", "key", "Number of fields", "hash"},
    {"HKEYS", "key", "Every field of a hash", "hash"},
    {"HVALS", "key", "Every value of a hash", "hash"},
    {"HSTRLEN", "key field", "Length of a field's value", "hash"},
    {"HINCRBY", "key field increment", "Add an integer to a field", "hash"},
    {"HINCRBYFLOAT", "key field increment",
     "Add a floating-point number to a field", "hash"},
    {"HRANDFIELD", "key [count [WITHVALUES]]", "Random fields of a hash",
     "hash"},
    {"HSCAN", "key cursor [MATCH pattern] [COUNT n] [NOVALUES]",
     "Iterate over the fields of a hash", "hash"},
    /* sets (a standalone node, for now) */
    {"SADD", "key member [member ...]", "Add members to a set", "set"},
    {"SREM", "key member [member ...]", "Remove members from a set", "set"},
    {"SMEMBERS", "key", "Every member of a set", "set"},
    {"SISMEMBER", "key member", "Whether a member is in a set", "set"},
    {"SMISMEMBER", "key member [member ...]", "Whether members are in a set",
     "set"},
    {"SCARD", "key", "Number of members", "set"},
    {"SPOP", "key [count]", "Remove and return random members", "set"},
    {"SRANDMEMBER", "key [count]", "Random members of a set", "set"},
    {"SMOVE", "source destination member", "Move a member to another set",
     "set"},
    {"SINTER", "key [key ...]", "Intersection of sets", "set"},
    {"SUNION", "key [key ...]", "Union of sets", "set"},
    {"SDIFF", "key [key ...]", "Members of the first set not in the others",
     "set"},
    {"SINTERSTORE", "destination key [key ...]",
     "Store the intersection of sets", "set"},
    {"SUNIONSTORE", "destination key [key ...]", "Store the union of sets",
     "set"},
    {"SDIFFSTORE", "destination key [key ...]", "Store the difference of sets",
     "set"},
    {"SINTERCARD", "numkeys key [key ...] [LIMIT limit]",
     "Size of the intersection of sets", "set"},
    {"SSCAN", "key cursor [MATCH pattern] [COUNT n]",
     "Iterate over the members of a set", "set"},
    {"DEL", "key [key ...]", "Delete keys", "keyspace"},
    {"UNLINK", "key [key ...]", "Delete keys (same as DEL on ringkv)",
     "keyspace"},
    {"EXISTS", "key [key ...]", "Count how many of the keys exist", "keyspace"},
    {"TOUCH", "key [key ...]", "Count how many of the keys exist (as EXISTS)",
     "keyspace"},
    {"RENAME", "key newkey", "Rename a key, overwriting newkey", "keyspace"},
    {"RENAMENX", "key newkey", "Rename a key only if newkey does not exist",
     "keyspace"},
    {"COPY", "source destination [DB 0] [REPLACE]",
     "Copy a key's value and TTL to another key", "keyspace"},
    {"OBJECT", "ENCODING|REFCOUNT|IDLETIME|FREQ key",
     "What Redis would say of a key's value (encoding int/embstr/raw)",
     "keyspace"},
    {"EXPIRE", "key seconds [NX|XX|GT|LT]", "Set a key's TTL in seconds",
     "keyspace"},
    {"PEXPIRE", "key milliseconds [NX|XX|GT|LT]",
     "Set a key's TTL in milliseconds", "keyspace"},
    {"EXPIREAT", "key unix-time-seconds [NX|XX|GT|LT]",
     "Set a key to expire at a Unix time", "keyspace"},
    {"PEXPIREAT", "key unix-time-milliseconds [NX|XX|GT|LT]",
     "Set a key to expire at a Unix time in milliseconds", "keyspace"},
    {"EXPIRETIME", "key", "Unix time (seconds) at which a key expires",
     "keyspace"},
    {"PEXPIRETIME", "key", "Unix time (milliseconds) at which a key expires",
     "keyspace"},
    {"TTL", "key", "Remaining TTL of a key in seconds (-1 none, -2 no key)",
     "keyspace"},
    {"PTTL", "key", "Remaining TTL of a key in milliseconds", "keyspace"},
    {"PERSIST", "key", "Remove the TTL of a key", "keyspace"},
    {"TYPE", "key", "Type of the value stored at a key", "keyspace"},
    {"SCAN", "cursor [MATCH pattern] [COUNT count]",
     "Iterate over the keys of this node", "keyspace"},
    {"KEYS", "pattern", "Keys of this node matching a glob pattern",
     "keyspace"},
    {"RANDOMKEY", "", "A random key of this node", "keyspace"},
    /* transactions */
    {"MULTI", "", "Start a transaction", "transactions"},
    {"EXEC", "", "Run the commands queued since MULTI", "transactions"},
    {"DISCARD", "", "Drop the commands queued since MULTI", "transactions"},
    {"WATCH", "key [key ...]",
     "Make the next EXEC fail if a key changes before it", "transactions"},
    {"UNWATCH", "", "Forget the watched keys", "transactions"},
    /* connection and server */
    {"PING", "[message]", "Check the connection", "connection"},
    {"ECHO", "message", "Return the message", "connection"},
    {"HELLO", "[protover [AUTH username password] [SETNAME name]]",
     "Switch protocol (2 or 3), authenticate, name the connection",
     "connection"},
    {"AUTH", "[username] password", "Authenticate the connection",
     "connection"},
    {"SELECT", "index", "Select a database (only 0 exists)", "connection"},
    {"QUIT", "", "Close the connection", "connection"},
    {"CLIENT SETNAME", "name", "Name the connection", "connection"},
    {"CLIENT GETNAME", "", "Name of the connection", "connection"},
    {"CLIENT SETINFO", "LIB-NAME name|LIB-VER version",
     "Record the client library's name or version", "connection"},
    {"CLIENT ID", "", "Id of the connection", "connection"},
    {"COMMAND COUNT", "", "Number of commands the server knows", "server"},
    {"COMMAND DOCS", "[command ...]", "Documentation of commands", "server"},
    {"COMMAND INFO", "[command ...]", "Arity, flags and keys of commands",
     "server"},
    {"INFO", "[section ...]", "Server information and statistics", "server"},
    {"ACL SETUSER", "username [rule ...]",
     "Create or change a user: on|off >password ~pattern +@category ...",
     "server"},
    {"ACL GETUSER", "username", "A user's rules", "server"},
    {"ACL DELUSER", "username [username ...]",
     "Delete users and close their connections", "server"},
    {"ACL LIST", "", "Every user's rules, as the ACL file keeps them",
     "server"},
    {"ACL USERS", "", "The user names", "server"},
    {"ACL WHOAMI", "", "The user of this connection", "server"},
    {"ACL CAT", "[category]", "The categories, or a category's commands",
     "server"},
    {"ACL DRYRUN", "username command [arg ...]",
     "Whether the user may run the command", "server"},
    {"ACL GENPASS", "[bits]", "A random password", "server"},
    {"ACL LOG", "[count|RESET]", "Recent denials and failed AUTHs", "server"},
    {"ACL SAVE", "", "Write the users to the ACL file (--aclfile)", "server"},
    {"ACL LOAD", "", "Read the users from the ACL file again", "server"},
    {"CONFIG GET", "pattern [pattern ...]", "Read configuration settings",
     "server"},
    {"CONFIG SET", "name value", "Change a configuration setting", "server"},
    {"DBSIZE", "", "Number of keys on this node", "server"},
    {"FLUSHALL", "", "Delete every key (when the server allows it)", "server"},
    {"FLUSHDB", "", "Delete every key (same as FLUSHALL: one database)",
     "server"},
    {"TIME", "", "The server's time (seconds, microseconds)", "server"},
    {"SAVE", "", "Make every write durable now (fdatasync)", "server"},
    {"SHUTDOWN", "[NOSAVE|SAVE]", "Stop the server gracefully", "server"},
    /* Redis Cluster clients (docs/clients.md) */
    {"CLUSTER SLOTS", "", "Slot ranges with their primary and replicas",
     "cluster"},
    {"CLUSTER SHARDS", "", "Slot ranges as shards, with node health",
     "cluster"},
    {"CLUSTER NODES", "", "The nodes, Redis Cluster's text format", "cluster"},
    {"CLUSTER MYID", "", "This node's 40-hex-character id", "cluster"},
    {"CLUSTER INFO", "", "Cluster state and slot counts", "cluster"},
    {"CLUSTER KEYSLOT", "key", "Hash slot of a key", "cluster"},
    {"CLUSTER COUNTKEYSINSLOT", "slot", "Keys this node stores in a slot",
     "cluster"},
    {"CLUSTER GETKEYSINSLOT", "slot count",
     "Names of keys this node stores in a slot", "cluster"},
    {"READONLY", "", "Accepted for cluster clients (OK)", "cluster"},
    {"READWRITE", "", "Accepted for cluster clients (OK)", "cluster"},
    {"ASKING", "", "Accepted for cluster clients (OK)", "cluster"},
    /* ringkv's own */
    {"RINGKV.GETALL", "key",
     "All concurrent values (siblings) of a key "
     "with their causal context",
     "ringkv"},
    {"RINGKV.PUT", "key context value",
     "Write a value that supersedes the given causal context", "ringkv"},
    {"RINGKV.DEL", "key context",
     "Delete the values the given causal context covers", "ringkv"},
    {"RINGKV.LOCALGET", "key",
     "This node's own copy of a key, without a quorum (diagnostics)", "ringkv"},
    {"RINGKV.LOCALOBJ", "key",
     "This node's stored object of a key, encoded (diagnostics)", "ringkv"},
    {"RINGKV.CLUSTER",
     "STATUS | JOIN HOST:PEERPORT | REPLACE OLD HOST:PEERPORT | LEAVE [FORCE] "
     "| REMOVE NODE [FORCE] | PLAN [SHOW|CLEAR|JOIN|LEAVE|REMOVE|REPLACE ...] "
     "| COMMIT [FORCE]",
     "Cluster membership and status (docs/cluster.md)", "ringkv"},
    /* the REPL itself */
    {"HELP", "[command]", "List commands, or describe one", "repl"},
    {"CONNECT", "host port", "Connect to another server", "repl"},
    {"CLEAR", "", "Clear the screen", "repl"},
    {"QUIT", "", "Leave the REPL (also exit, .exit, Ctrl-D)", "repl"},
};

const struct cli_cmd_help *cli__help_at(size_t i)
{
    if (i >= sizeof(help_table) / sizeof(help_table[0])) {
        return NULL;
    }
    return &help_table[i];
}

/* Compares `name` with `want` ignoring case and runs of blanks. */
static bool same_name(const char *name, const char *want)
{
    while (*want == ' ') {
        want++;
    }
    for (;;) {
        if (*name == '\0' || *want == '\0') {
            while (*want == ' ') {
                want++;
            }
            return *name == '\0' && *want == '\0';
        }
        if (*name == ' ') {
            if (*want != ' ') {
                return false;
            }
            while (*want == ' ') {
                want++;
            }
            name++;
            continue;
        }
        char a = *name, b = *want;
        if (b >= 'a' && b <= 'z') {
            b = (char)(b - 'a' + 'A');
        }
        if (a != b) {
            return false;
        }
        name++;
        want++;
    }
}

const struct cli_cmd_help *cli__help_find(const char *name)
{
    /* The REPL's QUIT entry describes the client side: prefer it, as
     * that is what `help quit` in the REPL is about. */
    const struct cli_cmd_help *found = NULL;
    for (size_t i = 0; cli__help_at(i) != NULL; i++) {
        if (same_name(help_table[i].name, name)) {
            found = &help_table[i];
        }
    }
    return found;
}
