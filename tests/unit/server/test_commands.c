/*
 * test_commands.c - the command table: sorted for binary search, every
 * entry well formed (arity, key positions, docs), lookups case-insensitive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/internal.h"

static const char *known[] = {
    "append", "auth", "client", "command", "config", "dbsize", "decr",
    "decrby", "del", "discard", "echo", "exec", "exists", "expire",
    "expireat", "flushall", "get", "getdel", "getex", "hello", "incr",
    "incrby", "info", "mget", "mset", "msetnx", "multi", "persist",
    "pexpire", "ping", "pttl", "quit", "scan", "select", "set", "setnx",
    "strlen", "ttl", "type", "unlink",
};

static void test_commands_lookup_finds_every_documented_command(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const struct command *c = command_lookup(known[i], strlen(known[i]));
        assert_non_null(c);
        assert_string_equal(c->name, known[i]);
    }
}

static void test_commands_lookup_is_case_insensitive(void **state)
{
    (void)state;
    const struct command *a = command_lookup("GeT", 3);
    const struct command *b = command_lookup("get", 3);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_null(command_lookup("nosuchcommand", 13));
    assert_null(command_lookup("", 0));
    assert_null(command_lookup("g\0t", 3));
    char longname[100];
    memset(longname, 'a', sizeof(longname));
    assert_null(command_lookup(longname, sizeof(longname)));
}

static void test_commands_table_entries_are_well_formed(void **state)
{
    (void)state;
    size_t n = command_count();
    assert_true(n >= 40);
    size_t found = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const struct command *c = command_lookup(known[i], strlen(known[i]));
        found += c != NULL;
        assert_non_null(c->proc);
        assert_true(c->arity != 0);
        assert_non_null(c->summary);
        assert_non_null(c->group);
        assert_non_null(c->since);
        assert_non_null(c->complexity);
        /* Key positions: either no keys or first <= last (or -1). */
        if (c->first_key == 0) {
            assert_int_equal(c->last_key, 0);
        } else {
            assert_true(c->last_key == -1 || c->last_key >= c->first_key);
            assert_true(c->key_step >= 1);
        }
        /* Writes and reads are exclusive. */
        assert_false((c->flags & CMD_WRITE) && (c->flags & CMD_READONLY));
    }
    assert_int_equal(found, sizeof(known) / sizeof(known[0]));
}

static void test_commands_arity_matches_redis(void **state)
{
    (void)state;
    struct {
        const char *name;
        int arity;
    } want[] = {
        {"get", 2},     {"set", -3},  {"del", -2},   {"mget", -2},
        {"mset", -3},   {"incr", 2},  {"incrby", 3}, {"expire", -3},
        {"ttl", 2},     {"scan", -2}, {"ping", -1},  {"echo", 2},
        {"hello", -1},  {"auth", -2}, {"multi", 1},  {"exec", 1},
        {"append", 3},  {"getex", -2},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct command *c =
            command_lookup(want[i].name, strlen(want[i].name));
        assert_non_null(c);
        assert_int_equal(c->arity, want[i].arity);
    }
}

static void test_commands_noauth_only_on_connection_commands(void **state)
{
    (void)state;
    assert_true(command_lookup("auth", 4)->flags & CMD_NOAUTH);
    assert_true(command_lookup("hello", 5)->flags & CMD_NOAUTH);
    assert_true(command_lookup("quit", 4)->flags & CMD_NOAUTH);
    assert_false(command_lookup("get", 3)->flags & CMD_NOAUTH);
    assert_false(command_lookup("set", 3)->flags & CMD_NOAUTH);
    assert_false(command_lookup("config", 6)->flags & CMD_NOAUTH);
    assert_false(command_lookup("ping", 4)->flags & CMD_NOAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_lookup_finds_every_documented_command),
        cmocka_unit_test(test_commands_lookup_is_case_insensitive),
        cmocka_unit_test(test_commands_table_entries_are_well_formed),
        cmocka_unit_test(test_commands_arity_matches_redis),
        cmocka_unit_test(test_commands_noauth_only_on_connection_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
