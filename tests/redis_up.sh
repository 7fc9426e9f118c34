#!/usr/bin/env bash
# Print the URL of a Redis that answers; start one when none does.
# Order: $REDIS_URL if it answers, 127.0.0.1:6379, else a private redis-server on a free port
# (installed from Debian's packages if missing). Diagnostics go to stderr, the URL to stdout.
set -euo pipefail

answers() {  # answers HOST PORT -> 0 if Redis replies +PONG
  python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG")
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

if [[ -n "${REDIS_URL:-}" ]]; then
  hostport="${REDIS_URL#redis://}"; hostport="${hostport%%/*}"; hostport="${hostport##*@}"
  if answers "${hostport%%:*}" "${hostport##*:}"; then echo "$REDIS_URL"; exit 0; fi
  echo "REDIS_URL=$REDIS_URL does not answer; looking for another" >&2
fi
if answers 127.0.0.1 6379; then echo "redis://127.0.0.1:6379/0"; exit 0; fi

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server from Debian's packages" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
dir="$(mktemp -d)"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" >&2
for _ in $(seq 50); do answers 127.0.0.1 "$port" && { echo "redis://127.0.0.1:$port/0"; exit 0; }; sleep 0.1; done
echo "could not start redis-server (see $dir/redis.log)" >&2
exit 1
