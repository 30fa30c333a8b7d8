#!/usr/bin/env bash
# Makes a test certificate authority and certificates for TLS
# (docs/security.md, "TLS"): for trying TLS out and for the tests, not
# for production (use your own CA there).
#
#   scripts/gen-test-certs.sh [DIR]        (default ./tls)
#   scripts/gen-test-certs.sh DIR --node ID [--node ID ...]
#
# DIR/ca.crt, ca.key          the CA (10 years)
# DIR/server.crt, server.key  a server certificate for 127.0.0.1, ::1 and
#                             localhost, signed by the CA
# DIR/client.crt, client.key  a client certificate (CN=client), for
#                             tls-auth-clients yes
# With --node ID (tls-cluster yes, mutual TLS between peers): also
# DIR/node-NAME.crt, node-NAME.key for each ID, signed by DIR's CA (made
# first when DIR has none; an existing one is reused, the other files
# are then left alone): CN=ID, subjectAltName DNS:ID when ID is a host
# name (letters, digits, '.', '-'), plus IP:127.0.0.1 and IP:::1 so the
# same certificate can serve the RESP TLS port on loopback, and
# extendedKeyUsage serverAuth,clientAuth (a node both accepts and dials).
# NAME is ID with every character but letters, digits, '.', '-' and '_'
# replaced by '_' (node id 127.0.0.1:7381 -> node-127.0.0.1_7381.crt).
# Start each node with its own pair: --tls-cluster yes --tls-cert-file
# DIR/node-NAME.crt --tls-key-file DIR/node-NAME.key --tls-ca-cert-file
# DIR/ca.crt.
# Keys are mode 0600.  Needs the openssl command (Debian: openssl).
set -euo pipefail
DIR="tls"
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    DIR="$1"
    shift
fi
nodes=()
while [ $# -gt 0 ]; do
    case "$1" in
        --node)
            [ $# -ge 2 ] || { echo "gen-test-certs.sh: --node needs a node id" >&2; exit 2; }
            case "$2" in
                "" | */* | *=* | *+* | *,* | *\\* | *\"* | *" "*)
                    echo "gen-test-certs.sh: node id '$2' must be 1..64 bytes without / = + , \\ \" or spaces" >&2
                    exit 2 ;;
            esac
            [ "${#2}" -le 64 ] || { echo "gen-test-certs.sh: node id '$2' is longer than 64 bytes" >&2; exit 2; }
            nodes+=("$2")
            shift 2 ;;
        *)
            echo "usage: gen-test-certs.sh [DIR] [--node ID ...]" >&2
            exit 2 ;;
    esac
done
mkdir -p "$DIR"
cd "$DIR"
umask 077
days=3650
make_cert() { # name subject extensions
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "$2" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key \
        -CAcreateserial -days $days -sha256 -extfile "$1.ext" \
        -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
if [ ${#nodes[@]} -eq 0 ] || [ ! -f ca.crt ] || [ ! -f ca.key ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days $days \
        -subj "/O=ringkv test/CN=ringkv test CA" \
        -keyout ca.key -out ca.crt 2>/dev/null
    make_cert server "/O=ringkv test/CN=localhost" \
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth"
    make_cert client "/O=ringkv test/CN=client" "extendedKeyUsage=clientAuth"
    made="{ca,server,client}.{crt,key}"
else
    made=""
fi
for id in ${nodes[@]+"${nodes[@]}"}; do
    name="node-$(printf '%s' "$id" | tr -c 'A-Za-z0-9._-' '_')"
    san="IP:127.0.0.1,IP:::1"
    if printf '%s' "$id" | grep -Eq '^[A-Za-z0-9.-]+$'; then
        san="DNS:$id,$san"
    fi
    make_cert "$name" "/O=ringkv test/CN=$id" \
        "subjectAltName=$san
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth"
    made="$made${made:+ }$name.{crt,key}"
done
chmod 600 ./*.key
chmod 644 ./*.crt
echo "made $(pwd)/$made"
