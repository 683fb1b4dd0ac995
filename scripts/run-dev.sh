#!/usr/bin/env bash
# `make run`: the worker in the background, the web server in the foreground; Ctrl-C stops both.
set -euo pipefail
BIN=.venv/bin
PORT=${PORT:-8000}
if "$BIN/python" - "$PORT" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
then
  echo "Something already listens on 127.0.0.1:${PORT} (the platform may be running): open http://127.0.0.1:${PORT}/"
  exit 0
fi
mkdir -p var
# Pool and size from CELERY_WORKER_POOL / CELERY_WORKER_CONCURRENCY (threads, 16 by default).
"$BIN/celery" -A mhsd_platform worker --beat --loglevel INFO \
  --schedule var/celerybeat-schedule >var/worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true; wait $WORKER 2>/dev/null || true' EXIT INT TERM
echo "Celery worker started (pid $WORKER, log: var/worker.log)."
echo
echo "  The platform is at  http://127.0.0.1:${PORT}/   (demo logins printed above)"
echo
"$BIN/python" manage.py runserver "127.0.0.1:${PORT}" --noreload
