#!/usr/bin/env bash
# Start the local PostgreSQL and Redis if they are not answering (commands of this machine kind),
# then create the application database if it is missing. Safe to run any number of times.
set -euo pipefail
PGHOST=${PGHOST:-127.0.0.1}
if ! pg_isready -q -h "$PGHOST" -p 5432; then
  echo "Starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis..."
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
# The database named in DATABASE_URL (default mhsd) must exist, on the host, port and user that URL
# names; tests create their own test_ copy.
read -r DB_HOST DB_PORT DB_USER DB_NAME < <(python3 - <<'PY'
import os, urllib.parse as u
url = u.urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mhsd"))
print(url.hostname or "127.0.0.1", url.port or 5432, url.username or "postgres", url.path.lstrip("/") or "mhsd")
PY
)
if ! psql -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='${DB_NAME}'" | grep -q 1; then
  echo "Creating database ${DB_NAME}..."
  createdb -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" "$DB_NAME"
fi
