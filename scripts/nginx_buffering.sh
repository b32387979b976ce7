#!/usr/bin/env bash
# SPEC rule 28 through a real intermediary: a slow SSE stream behind nginx
# with its default `proxy_buffering` (on). nginx withholds even the response
# head until its buffer fills (4 KiB): with the origin below (one ~30-byte
# event every 500 ms) that is about a minute, where curl and browsers simply
# wait.
# The `ssekit` command, with its defaults, must wait too: print the first
# three events, exit 0, and have made one connection to the origin (a
# shorter response timeout gave up and restarted the upstream every time).
#
# Usage: scripts/nginx_buffering.sh path/to/ssekit   (built with --features cli)
# Needs nginx and python3; skips, saying so, without nginx. Runs for about
# a minute; ports are chosen free on 127.0.0.1. (With the old 30 s response
# timeout, this exited 3 at --timeout with no event, after restarting the
# upstream every 30 s.)
set -euo pipefail

[ "$#" -eq 1 ] || { echo "usage: $0 path/to/ssekit" >&2; exit 1; }
ssekit=$1
nginx=$(command -v nginx || true)
[ -n "$nginx" ] || nginx=/usr/sbin/nginx
if [ ! -x "$nginx" ]; then
    echo "skipped: nginx is not installed (apt-get install nginx-light)"
    exit 0
fi

work=$(mktemp -d)
origin_pid=""
cleanup() {
    [ -f "$work/nginx.pid" ] && "$nginx" -c "$work/nginx.conf" -s stop 2>/dev/null || true
    [ -n "$origin_pid" ] && kill "$origin_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
origin_port=$(free_port)
proxy_port=$(free_port)

# The origin: one event every 500 ms for each connection, counting
# connections in $work/connections (a connection that sends no request is
# not counted).
cat >"$work/origin.py" <<'PY'
import socket, sys, threading, time
port, log = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
def serve(conn):
    try:
        if not conn.recv(65536):
            return
        with lock, open(log, "a") as f:
            f.write("connection\n")
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"cache-control: no-cache\r\nconnection: close\r\n\r\n")
        for n in range(100000):
            conn.sendall(f"id: {n}\ndata: tick {n} {'x' * 12}\n\n".encode())
            time.sleep(0.5)
    except OSError:
        pass
    finally:
        conn.close()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(16)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
python3 "$work/origin.py" "$origin_port" "$work/connections" &
origin_pid=$!
# Wait (10 s at most) until the origin listens (the probe sends no request,
# so it is not counted).
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$origin_port") 2>/dev/null; then break; fi
    sleep 0.1
done

# nginx as a distribution ships it: buffering on, nothing tuned for SSE.
mkdir -p "$work/tmp"
cat >"$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    server {
        listen 127.0.0.1:$proxy_port;
        location / { proxy_pass http://127.0.0.1:$origin_port; }
    }
}
CONF
"$nginx" -c "$work/nginx.conf"

start=$SECONDS
status=0
"$ssekit" "http://127.0.0.1:$proxy_port/events" --max-events 3 --timeout 240 \
    >"$work/out" 2>"$work/err" || status=$?
took=$((SECONDS - start))
connections=$(grep -c connection "$work/connections" 2>/dev/null || echo 0)
events=$(grep -c "tick" "$work/out" || true)
echo "ssekit through nginx (default proxy_buffering): exit $status after ${took} s," \
    "$events events, $connections connection(s) to the origin"
if [ "$status" -ne 0 ] || [ "$events" -ne 3 ] || [ "$connections" -ne 1 ]; then
    echo "--- stdout"; cat "$work/out"
    echo "--- stderr"; cat "$work/err"
    echo "nginx-buffering: 0 passed, 1 failed"
    exit 1
fi
echo "nginx-buffering: 1 passed, 0 failed"
