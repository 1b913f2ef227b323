#!/usr/bin/env bash
# Redis and PostgreSQL for the session stores: install them, or run throwaway local servers.
#   scripts/services.sh install   # apt-get install redis-server postgresql chromium, only what is missing (root or sudo)
#   scripts/services.sh start     # both servers on loopback, data under $SHOP_SERVICES_DIR (default .cache/services/)
#   scripts/services.sh env       # the SHOP_* variables pointing at them (eval "$(scripts/services.sh env)")
#   scripts/services.sh status | stop
# The integration tests start their own servers on free ports and need only `install`; with
# SHOP_TEST_REDIS_URL / SHOP_TEST_POSTGRES_DSN set they use those servers instead. Chromium (with a font) is for
# the browser tests of the pages we generate, driven by Playwright through /usr/bin/chromium.
# Ports: SHOP_REDIS_PORT (default 6390), SHOP_PG_PORT (default 55432).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${SHOP_SERVICES_DIR:-$PWD/.cache/services}"
REDIS_PORT="${SHOP_REDIS_PORT:-6390}"
PG_PORT="${SHOP_PG_PORT:-55432}"
PG_USER_DB="shop"

pg_bindir() {
    # Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<version>/bin.
    if command -v initdb >/dev/null && command -v postgres >/dev/null; then
        dirname "$(readlink -f "$(command -v postgres)")"
        return
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$d/postgres" && -x "$d/initdb" ]]; then echo "$d"; return; fi
    done
    return 1
}

run_as() {
    # postgres refuses to run as root: as root, run it as the `postgres` account the package creates.
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    pg_bindir >/dev/null || missing+=(postgresql)
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
    if ((${#missing[@]} == 0)); then
        echo "redis-server, postgresql and chromium already installed"
        return
    fi
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    command -v redis-server >/dev/null && pg_bindir >/dev/null && [[ -x /usr/bin/chromium ]]
    echo "installed: ${missing[*]}"
}

start() {
    mkdir -p "$DIR/redis"
    if [[ -f "$DIR/redis.pid" ]] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null; then
        echo "redis already running (pid $(cat "$DIR/redis.pid"))"
    else
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes --dir "$DIR/redis" \
            --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
        for _ in $(seq 50); do
            redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        redis-cli -p "$REDIS_PORT" ping >/dev/null
        echo "redis on 127.0.0.1:$REDIS_PORT"
    fi

    local bin
    bin="$(pg_bindir)"
    if [[ ! -f "$DIR/pg/PG_VERSION" ]]; then
        mkdir -p "$DIR/pg"
        [[ $(id -u) -eq 0 ]] && chown postgres: "$DIR" "$DIR/pg"
        run_as "$bin/initdb" -D "$DIR/pg" -A trust -U "$PG_USER_DB" -E UTF8 >/dev/null
    fi
    if run_as "$bin/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
        echo "postgres already running"
    else
        run_as "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w -t 60 \
            -o "-p $PG_PORT -h 127.0.0.1 -k $DIR" start >/dev/null
        run_as "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER_DB" "$PG_USER_DB" 2>/dev/null || true
        echo "postgres on 127.0.0.1:$PG_PORT"
    fi
}

stop() {
    if [[ -f "$DIR/redis.pid" ]]; then
        local pid
        pid="$(cat "$DIR/redis.pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$DIR/redis.pid"
        echo "redis stopped"
    fi
    if [[ -f "$DIR/pg/postmaster.pid" ]]; then
        run_as "$(pg_bindir)/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null && echo "postgres stopped"
    fi
}

status() {
    if [[ -f "$DIR/redis.pid" ]] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null; then
        echo "redis: running on $REDIS_PORT"
    else
        echo "redis: stopped"
    fi
    if [[ -d "$DIR/pg" ]] && run_as "$(pg_bindir)/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
        echo "postgres: running on $PG_PORT"
    else
        echo "postgres: stopped"
    fi
}

env_vars() {
    echo "export SHOP_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/15"
    echo "export SHOP_TEST_POSTGRES_DSN=postgresql://$PG_USER_DB@127.0.0.1:$PG_PORT/$PG_USER_DB"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) env_vars ;;
    *)
        echo "usage: $0 install|start|stop|status|env" >&2
        exit 2
        ;;
esac
