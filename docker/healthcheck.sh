#!/bin/bash
# docker/healthcheck.sh - container HEALTHCHECK: GET /healthz on the local
# tripletd port with bash's /dev/tcp (no curl in the image); exit 0 on 200.
set -u
port=${TRIPLETD_PORT:-8080}
path=${1:-/healthz}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3 || exit 1
case $status in
"HTTP/1."[01]" 200"*) exit 0 ;;
*) echo "tripletd $path: ${status%$'\r'}" >&2; exit 1 ;;
esac
