/* main.c - ringkvd entry point: configuration, then server_run(). */
#include <stdio.h>

#include "common/log.h"
#include "server/config.h"
#include "server/server.h"

int main(int argc, char **argv)
{
    struct rk_config cfg;
    config_init(&cfg);
    char err[1024];
    switch (config_load(&cfg, argc, argv, err, sizeof(err))) {
        case CONFIG_EXIT_OK:
            return 0;
        case CONFIG_ERROR:
            fprintf(stderr, "%s\n", err);
            return 2;
        case CONFIG_OK:
            break;
    }
    rk_log_set_level(cfg.loglevel);
    rk_log_set_format(cfg.log_format);
    return server_run(&cfg);
}
