#!/bin/sh
# A private, throw-away PostgreSQL server for the postgres_queries example (ctest runs
# `start` and `stop` as fixture tests around it).
#
#   postgres_server.sh start DIR [PORT]   initdb a fresh cluster in a temporary directory,
#                                         start it on 127.0.0.1:PORT (a free one picked
#                                         at random when absent), wait until it accepts
#   postgres_server.sh exec DIR CMD...    run CMD with PGHOST/PGPORT/PGUSER/PGDATABASE
#                                         pointing at that server
#   postgres_server.sh stop DIR           stop it, remove the temporary directory
#
# DIR (in the build tree) holds only the state: where the cluster lives and how to
# reach it. The cluster itself is a mktemp directory under ${TMPDIR:-/tmp}: short
# enough for the Unix socket (kept inside it), and reachable by an unprivileged user.
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres`
# system user (Debian's postgresql package creates it), or `nobody`.
#
# The server listens on 127.0.0.1 only, trusts local connections, runs with fsync off
# and allows 120 connections (the example opens 100 at once). A watchdog stops it after
# 15 minutes (AIO_POSTGRES_WATCHDOG seconds) in case ctest is killed before `stop` runs;
# `start` also stops a server that a killed run left behind in DIR.
#
# Exit status 77 (ctest's SKIP_RETURN_CODE) from `start` and `exec`: PostgreSQL's
# server binaries (initdb, pg_ctl: Debian's postgresql package) are not installed.
set -eu

usage() {
    echo "usage: $0 start DIR [PORT] | exec DIR CMD... | stop DIR" >&2
    exit 2
}
[ $# -ge 2 ] || usage
action=$1
state=$(mkdir -p "$2" && cd "$2" && pwd)
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
shift 2

skipped="skipped: PostgreSQL's server binaries (initdb, pg_ctl) are not installed (Debian: apt-get install postgresql)"

# The newest initdb: /usr/lib/postgresql/<version>/bin (Debian), else the PATH.
find_bindir() {
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$owner" -- "$@"
    else
        "$@"
    fi
}

pick_owner() {
    if [ "$(id -u)" -ne 0 ]; then
        owner=$(id -un)
    elif id postgres >/dev/null 2>&1; then
        owner=postgres
    else
        owner=nobody
    fi
}

stop_server() {
    [ -f "$state/cluster" ] || return 0
    cluster=$(cat "$state/cluster")
    bindir=$(cat "$state/bindir")
    owner=$(cat "$state/owner")
    # The watchdog leads its own process group (its sleep is in it too), unless it is
    # the watchdog that is stopping the server.
    if [ -f "$cluster/watchdog.pid" ] && [ "$(cat "$cluster/watchdog.pid")" != $$ ]; then
        kill -TERM "-$(cat "$cluster/watchdog.pid")" 2>/dev/null || true
    fi
    if [ -f "$cluster/data/postmaster.pid" ]; then
        as_owner "$bindir/pg_ctl" -D "$cluster/data" stop -m fast -w -t 20 >/dev/null 2>&1 ||
            as_owner "$bindir/pg_ctl" -D "$cluster/data" stop -m immediate -w -t 20 >/dev/null 2>&1 || true
    fi
    if [ -f "$cluster/data/postmaster.pid" ]; then
        pid=$(head -n 1 "$cluster/data/postmaster.pid")
        if kill -0 "$pid" 2>/dev/null; then
            echo "postgres_server.sh: the server (pid $pid) would not stop; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    case $cluster in
        */aio-postgres.*) rm -rf "$cluster" ;;
    esac
    rm -f "$state/cluster" "$state/bindir" "$state/owner" "$state/env"
    echo "stopped the PostgreSQL server in $cluster"
}

case $action in
start)
    [ $# -le 1 ] || usage
    if ! bindir=$(find_bindir); then
        echo "$skipped"
        exit 77
    fi
    stop_server >/dev/null  # one that a killed run left behind
    pick_owner
    cluster=$(mktemp -d "${TMPDIR:-/tmp}/aio-postgres.XXXXXX")
    echo "$cluster" >"$state/cluster"
    echo "$bindir" >"$state/bindir"
    echo "$owner" >"$state/owner"
    [ "$(id -u)" -ne 0 ] || chown "$owner" "$cluster"
    cd "$cluster"  # a directory the owner may enter
    if ! as_owner "$bindir/initdb" -D "$cluster/data" -U aio --auth=trust --no-sync -E UTF8 --locale=C \
        >"$cluster/initdb.log" 2>&1; then
        cat "$cluster/initdb.log" >&2
        stop_server >/dev/null
        echo "postgres_server.sh: initdb failed (as $owner)" >&2
        exit 1
    fi
    # A free port: the one asked for, or a few random ones below the ephemeral range.
    tries=${1:+1}
    tries=${tries:-5}
    started=no
    while [ "$tries" -gt 0 ]; do
        port=${1:-$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))}
        tries=$((tries - 1))
        if as_owner "$bindir/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$cluster' -c max_connections=120 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
            started=yes
            break
        fi
    done
    if [ $started = no ]; then
        cat "$cluster/server.log" >&2 || true
        stop_server >/dev/null
        echo "postgres_server.sh: the server would not start" >&2
        exit 1
    fi
    printf 'PGHOST=127.0.0.1\nPGPORT=%s\nPGUSER=aio\nPGDATABASE=postgres\n' "$port" >"$state/env"
    # The watchdog: out of ctest's way (its own session, no inherited descriptors).
    setsid sh -c 'echo $$ >"$1/watchdog.pid"; sleep "$4"; exec "$2" stop "$3"' watchdog "$cluster" "$script" "$state" "${AIO_POSTGRES_WATCHDOG:-900}" \
        </dev/null >/dev/null 2>&1 &
    echo "PostgreSQL server ($bindir) on 127.0.0.1:$port, data in $cluster, owned by $owner"
    ;;
exec)
    [ $# -ge 1 ] || usage
    if [ ! -f "$state/env" ]; then
        if ! find_bindir >/dev/null; then
            echo "$skipped"
            exit 77
        fi
        echo "postgres_server.sh: no server running for $state (did its start fail?)" >&2
        exit 1
    fi
    set -a
    . "$state/env"
    set +a
    exec "$@"
    ;;
stop)
    [ $# -eq 0 ] || usage
    stop_server
    ;;
*)
    usage
    ;;
esac
