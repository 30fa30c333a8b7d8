#!/usr/bin/env bash
# Installs the Debian 12 packages ringkv needs to build, test and benchmark,
# only those that are missing.  Usage: scripts/deps.sh [build|test|bench|all]
# (default all).  Uses sudo when not root.  Idempotent and quick when all
# packages are present.
set -euo pipefail

what="${1:-all}"

build_pkgs=(build-essential cmake pkg-config libevent-dev libssl-dev
  libxxhash-dev libzstd-dev libjansson-dev libinih-dev libedit-dev
  libcmocka-dev)
test_pkgs=(python3 python3-pytest python3-pytest-timeout python3-pytest-xdist
  python3-redis
  redis-tools clang libclang-rt-14-dev nodejs npm procps faketime chromium
  iproute2 openssl redis-server)
bench_pkgs=(redis-server redis-tools wrk librocksdb-dev libleveldb-dev
  liblmdb-dev libhiredis-dev)

pkgs=("${build_pkgs[@]}")
case "$what" in
  build) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${bench_pkgs[@]}") ;;
  all) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "deps.sh: unknown set '$what' (build|test|bench|all)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# nodejs from elsewhere (e.g. nodesource, nvm) also satisfies the test set.
if command -v node >/dev/null && command -v npm >/dev/null; then
  kept=()
  for p in ${missing[@]+"${missing[@]}"}; do
    [ "$p" = nodejs ] || [ "$p" = npm ] || kept+=("$p")
  done
  missing=(${kept[@]+"${kept[@]}"})
fi
# promtool (for the /metrics test): Debian ships it in the prometheus
# package, whose installation starts a Prometheus service, so take only
# the binary out of the .deb into build-tools/ (git-ignored).
promtool_fetch() {
  [ "$what" = test ] || [ "$what" = all ] || return 0
  tool_dir="$(cd "$(dirname "$0")/.." && pwd)/build-tools"
  if [ ! -x "$tool_dir/promtool" ]; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
          { ${SUDO:-} apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; } &&
        dpkg-deb -x prometheus_*.deb x && mkdir -p "$tool_dir" &&
        cp x/usr/bin/promtool "$tool_dir/promtool"); then
      echo "deps.sh: promtool from the prometheus .deb in $tool_dir"
    else
      echo "deps.sh: warning: could not extract promtool from the prometheus .deb (the /metrics test needs it)" >&2
    fi
    rm -rf "$tmp"
  fi
}

# The Node.js cluster clients of tests/integration/test_node_cluster_clients.py,
# pinned in tests/clients/package-lock.json, installed project-locally.
node_clients() {
  [ "$what" = test ] || [ "$what" = all ] || return 0
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/clients"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
      [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "deps.sh: npm ci in tests/clients" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
}

[ ${#missing[@]} -eq 0 ] && { promtool_fetch; node_clients; exit 0; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps package post-install scripts from starting services
# (redis-server) on machines with an init system.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
promtool_fetch
node_clients
