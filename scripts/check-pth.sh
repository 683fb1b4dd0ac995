#!/usr/bin/env bash
# Supply-chain tripwire: litellm 1.82.8 shipped a .pth file that ran on every Python start
# (CVE-2026-33634). Fail if site-packages holds any .pth file we did not expect.
set -euo pipefail
PY=${1:-.venv/bin/python}
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
ALLOWED="distutils-precedence.pth"
status=0
for f in "$SITE"/*.pth; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  if ! grep -qxF "$name" <<<"$ALLOWED"; then
    echo "Unexpected .pth file in site-packages: $f" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "site-packages .pth files: only the expected ones."
exit $status
