#!/bin/sh
# quiesce hook for PostgreSQL: a CHECKPOINT right before the freeze.
#
# PostgreSQL survives a crash-consistent copy (it replays its WAL on start), so what the hook
# buys is a copy whose recovery is short and whose data files are current: CHECKPOINT writes
# every dirty buffer and fsyncs, then the freeze makes the filesystem clean. A failed
# CHECKPOINT (server down, timeout) makes the hook fail, and quiesce reports the snapshot as
# file-system-consistent with this hook named as the reason (or, with
# --require-app-consistent, freezes nothing). There is nothing to undo on `thaw` or
# `freeze-failed`.
#
# Install: copy to a root-owned directory that only root can write, e.g.
#   install -o root -g root -m 0755 postgresql.sh /etc/quiesce/hooks.d/50-postgresql
# and edit the settings below (quiesce gives hooks no environment of their own, so settings
# live here). Run with:
#   quiesce run --timeout 30 --hook-dir /etc/quiesce/hooks.d /var/lib/postgresql -- SNAPSHOT-CMD
set -u

# --- settings -------------------------------------------------------------------------------
PGHOST=/var/run/postgresql   # the server's socket directory (or a host name)
PGPORT=5432                  # its port
PGUSER=postgres              # the OS user to run psql as (peer authentication) and the role
PSQL=psql                    # psql, or its full path (e.g. /usr/lib/postgresql/15/bin/psql)
CHECKPOINT_TIMEOUT=600       # seconds; keep it below quiesce's --hook-timeout
# --- end of settings ------------------------------------------------------------------------

phase=${1:-}
case "$phase" in
freeze)
    echo "postgresql: CHECKPOINT on $PGHOST port $PGPORT"
    # runuser: PostgreSQL's default local authentication is `peer` (OS user = role).
    runuser -u "$PGUSER" -- timeout "$CHECKPOINT_TIMEOUT" "$PSQL" \
        -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres \
        -X -q -v ON_ERROR_STOP=1 -c 'CHECKPOINT' </dev/null
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "postgresql: CHECKPOINT failed (status $status)" >&2
        exit "$status"
    fi
    echo "postgresql: CHECKPOINT done"
    ;;
thaw | freeze-failed)
    # Nothing is held across the freeze.
    ;;
*)
    echo "usage: $0 freeze|thaw|freeze-failed" >&2
    exit 2
    ;;
esac
exit 0
