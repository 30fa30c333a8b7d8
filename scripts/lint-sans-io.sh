#!/usr/bin/env bash
# DESIGN.md section 2 / STYLE.md 1.6: src/proto and src/cluster are sans-IO.
# Fails when they call a clock, a socket, threads, sleep or libc randomness,
# or include the headers for them.  Only src/server (and the storage engine's
# file-ops table and worker threads) may.
set -uo pipefail
cd "$(dirname "$0")/.."
pattern='\b(time|clock_gettime|gettimeofday|rand|random|srand|socket|connect|accept|bind|listen|fsync|fdatasync|sleep|usleep|nanosleep|pthread_[a-z_]+)\(|event2/|<pthread\.h>|<time\.h>|<sys/socket\.h>|<unistd\.h>'
if grep -rnE "$pattern" src/proto src/cluster; then
  echo "lint-sans-io: the lines above break the sans-IO rule" >&2
  exit 1
fi
echo "lint-sans-io: src/proto and src/cluster are sans-IO"
