#!/usr/bin/env bash
# Makes a test certificate authority and certificates for TLS
# (docs/security.md, "TLS"): for trying TLS out and for the tests, not
# for production (use your own CA there).
#
#   scripts/gen-test-certs.sh [DIR]        (default ./tls)
#
# DIR/ca.crt, ca.key          the CA (10 years)
# DIR/server.crt, server.key  a server certificate for 127.0.0.1, ::1 and
#                             localhost, signed by the CA
# DIR/client.crt, client.key  a client certificate (CN=client), for
#                             tls-auth-clients yes
# Keys are mode 0600.  Needs the openssl command (Debian: openssl).
set -euo pipefail
DIR="${1:-tls}"
mkdir -p "$DIR"
cd "$DIR"
umask 077
days=3650
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days $days \
    -subj "/O=ringkv test/CN=ringkv test CA" \
    -keyout ca.key -out ca.crt 2>/dev/null
make_cert() { # name subject extensions
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "$2" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key \
        -CAcreateserial -days $days -sha256 -extfile "$1.ext" \
        -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
make_cert server "/O=ringkv test/CN=localhost" \
    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth"
make_cert client "/O=ringkv test/CN=client" "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
chmod 644 ./*.crt
echo "made $(pwd)/{ca,server,client}.{crt,key}"
