#!/bin/sh
# Back up the Phonewagon database into $BACKUP_DIR, keep $BACKUP_KEEP_DAYS days of backups.
# Installed as /usr/local/sbin/phonewagon-backup, run nightly by phonewagon-backup.timer as the
# phonewagon user with /etc/phonewagon/phonewagon.env; by hand: systemctl start phonewagon-backup
#
#   PostgreSQL: pg_dump custom format (compressed; pg_restore can restore all or part of it).
#   SQLite:     the online backup API, a consistent copy while the server runs (WAL mode), of
#               the database and of its work queue (phonewagon.queue.db: webhooks not yet applied).
#   Recordings: $PHONEWAGON_RECORDINGS_DIR mirrored into $BACKUP_DIR/recordings (files never
#               change once written, so each night copies only the new ones).
#
# Each backup is written beside its final name, checked, then renamed: a file named
# phonewagon-*.dump or phonewagon-*.db is always complete.
set -eu
: "${PHONEWAGON_DATABASE_URL:?is not set (EnvironmentFile=/etc/phonewagon/phonewagon.env)}"
dir=${BACKUP_DIR:-/var/backups/phonewagon}
keep_days=${BACKUP_KEEP_DAYS:-14}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
umask 077
out=
trap '[ -z "$out" ] || rm -f "$out.partial"' EXIT # nothing half-written stays behind

case "$PHONEWAGON_DATABASE_URL" in
postgresql://* | postgres://*)
    out="$dir/phonewagon-$stamp.dump"
    # The password goes to pg_dump in PGPASSWORD, not on its command line, which `ps` shows.
    eval "$(python3 - <<'PY'
import os, shlex
from urllib.parse import unquote, urlsplit
raw = os.environ["PHONEWAGON_DATABASE_URL"]
url = urlsplit(raw)
if url.password is None:
    print("dburl=" + shlex.quote(raw))
else:
    userinfo, _, host = url.netloc.rpartition("@")
    netloc = userinfo.partition(":")[0] + "@" + host
    print("dburl=" + shlex.quote(url._replace(netloc=netloc).geturl()))
    print("PGPASSWORD=" + shlex.quote(unquote(url.password)) + "; export PGPASSWORD")
PY
)"
    pg_dump --format=custom --file="$out.partial" --dbname="$dburl"
    pg_restore --list "$out.partial" >/dev/null # a readable archive with its table of contents
    ;;
sqlite:///*)
    path=${PHONEWAGON_DATABASE_URL#sqlite:///} # relative to the service's /var/lib/phonewagon
    [ -f "$path" ] || { echo "phonewagon-backup: no database file $path" >&2; exit 1; }
    out="$dir/phonewagon-$stamp.db"
    queue="${path%.*}.queue.db"
    python3 - "$path" "$out.partial" "$queue" "$dir/phonewagon-$stamp.queue.db" <<'PY'
import os, sqlite3, sys
def copy(source_path, target_path):
    source, target = sqlite3.connect(source_path), sqlite3.connect(target_path)
    with target:
        source.backup(target)
    ok = target.execute("PRAGMA integrity_check").fetchone()[0]
    if ok != "ok":
        sys.exit(f"integrity_check of the copy of {source_path}: {ok}")
copy(sys.argv[1], sys.argv[2])
if os.path.exists(sys.argv[3]):
    copy(sys.argv[3], sys.argv[4])
PY
    ;;
*)
    echo "phonewagon-backup: cannot back up a database at ${PHONEWAGON_DATABASE_URL%%:*}:..." >&2
    exit 1
    ;;
esac

mv "$out.partial" "$out"
find "$dir" -maxdepth 1 -name 'phonewagon-*' -mtime +"$keep_days" -delete
recordings=${PHONEWAGON_RECORDINGS_DIR:-recordings}
if [ -d "$recordings" ]; then
    mkdir -p "$dir/recordings"
    cp -a -u "$recordings/." "$dir/recordings/"
fi
echo "phonewagon-backup: wrote $out ($(du -h "$out" | cut -f1))"
