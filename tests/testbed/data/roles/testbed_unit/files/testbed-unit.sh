#!/bin/sh
# Long-running service for the test bed: on SIGINT it writes "$1" and exits 0.
set -eu
marker="$1"
mkdir -p "$(dirname "$marker")"
rm -f "$marker"
trap 'echo "SIGINT pid=$$" > "$marker"; exit 0' INT
trap 'echo "SIGTERM pid=$$" > "$marker.term"; exit 1' TERM
while :; do
    sleep 1 &
    wait $! || true
done
