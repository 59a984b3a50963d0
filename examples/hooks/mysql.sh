#!/bin/sh
# quiesce hook for MySQL / MariaDB: FLUSH TABLES WITH READ LOCK, held across the freeze.
#
# freeze:  starts a client session of its own (in a new session, with its output to a file,
#          so it neither holds quiesce's output pipe nor dies with this hook), runs
#          `FLUSH TABLES WITH READ LOCK` in it, and waits until the lock is granted; then it
#          exits 0 and the session stays, holding the lock, while quiesce freezes.
#          If the lock is not granted within LOCK_WAIT seconds (a long query blocks it), the
#          session is killed and the hook fails: quiesce falls back to file-system consistency
#          (or, with --require-app-consistent, freezes nothing).
# thaw, freeze-failed:
#          kills the session: closing it releases the lock (UNLOCK TABLES is implicit).
# A safety net releases the lock by itself after MAX_HOLD seconds, should neither call come
# (quiesce gives every hook that got `freeze` exactly one of them, but a host can crash).
#
# Install: copy to a root-owned directory that only root can write, e.g.
#   install -o root -g root -m 0755 mysql.sh /etc/quiesce/hooks.d/40-mysql
# and edit the settings below. The client reads its credentials from DEFAULTS_FILE (a
# `[client]` section with user= and password=, mode 0600, owned by root), or uses the
# socket authentication of root.
set -u

# --- settings -------------------------------------------------------------------------------
MYSQL=mysql                       # mysql or mariadb client, or its full path
DEFAULTS_FILE=/root/.my.cnf       # used if it exists
SOCKET=/run/mysqld/mysqld.sock    # the server's socket
LOCK_WAIT=60                      # seconds to wait for the lock
MAX_HOLD=900                      # seconds after which the session lets go by itself
STATE=/run/quiesce-mysql-hook     # where the session's pid and output live (root only)
# --- end of settings ------------------------------------------------------------------------

release() {
    if [ -s "$STATE/pgid" ]; then
        pgid=$(cat "$STATE/pgid")
        # The session leader's group: the shell, the client and the sleep.
        kill -TERM "-$pgid" 2>/dev/null
        sleep 0.2
        kill -KILL "-$pgid" 2>/dev/null
        echo "mysql: session $pgid ended: lock released"
    fi
    rm -f "$STATE/pgid" "$STATE/out"
}

phase=${1:-}
case "$phase" in
freeze)
    umask 077
    mkdir -p "$STATE" || exit 1
    release >/dev/null 2>&1 # a leftover of an earlier run
    defaults=
    [ -r "$DEFAULTS_FILE" ] && defaults="--defaults-extra-file=$DEFAULTS_FILE"
    # The session: the lock statement, a marker line once it is granted, then a wait that
    # keeps the connection (and so the lock) open until it is killed or MAX_HOLD passes.
    setsid sh -c '
        echo $$ > "$1/pgid"
        { echo "FLUSH TABLES WITH READ LOCK;"; echo "SELECT '\''quiesce-locked'\'';"; sleep "$2"; } |
            "$3" $4 --socket="$5" --batch --skip-column-names > "$1/out" 2>&1
    ' mysql-hold "$STATE" "$MAX_HOLD" "$MYSQL" "$defaults" "$SOCKET" </dev/null >/dev/null 2>&1 &
    waited=0
    while [ "$waited" -lt "$((LOCK_WAIT * 10))" ]; do
        if grep -q quiesce-locked "$STATE/out" 2>/dev/null; then
            echo "mysql: FLUSH TABLES WITH READ LOCK granted (session $(cat "$STATE/pgid"))"
            exit 0
        fi
        # The session ended without the lock (no server, bad credentials, no client).
        if [ -s "$STATE/pgid" ] && ! kill -0 "$(cat "$STATE/pgid")" 2>/dev/null; then
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "mysql: FLUSH TABLES WITH READ LOCK not granted:" >&2
    cat "$STATE/out" >&2 2>/dev/null
    release >&2
    exit 1
    ;;
thaw | freeze-failed)
    release
    ;;
*)
    echo "usage: $0 freeze|thaw|freeze-failed" >&2
    exit 2
    ;;
esac
exit 0
