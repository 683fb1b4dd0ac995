"""A bounded brute-force and bad-input drill against a RUNNING platform on loopback (issue 14).

    make run    # in another terminal (serves http://127.0.0.1:8000/ with the demo accounts)
    .venv/bin/python scripts/security_drill.py [--base-url http://127.0.0.1:8000] [--skip-large]

1. Lockout: sends LOGIN_FAILURE_LIMIT wrong passwords for one account (default the demo `rater3`), shows
   that the RIGHT password is then refused (429, the login page says why), lifts the lockout with the
   audited `unlock_login` service, and shows the right password working again.
2. Bad imports: uploads the 17 bad case-study files of scripts/bad_inputs.py through the import page as
   the demo admin, and checks each answer shows its error (no 5xx) and that no case study was added.

It refuses any host other than loopback and sends at most LOGIN_FAILURE_LIMIT + 2 sign-ins. Run it with
the server's environment (DATABASE_URL): it counts case studies and unlocks through Django directly.
The last line is one JSON object with the outcome.
"""
import argparse
import html
import ipaddress
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhsd_platform.settings")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _loopback_only(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        sys.exit(f"Refusing {url}: this drill only runs against loopback (127.0.0.1, ::1, localhost).")


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=30)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if not match:
        sys.exit(f"No CSRF token on {url} (status {page.status_code}): is the platform running?")
    return match.group(1)


def _login(session, base, username, password):
    token = _csrf(session, f"{base}/accounts/login/")
    return session.post(f"{base}/accounts/login/", data={"username": username, "password": password,
                        "csrfmiddlewaretoken": token}, headers={"Referer": f"{base}/accounts/login/"},
                        allow_redirects=False, timeout=30)


def lockout_drill(base, username, password, limit) -> dict:
    from accounts import throttling

    throttling.unlock(None, username=username)  # start clean (audited like any unlock)
    statuses = []
    for attempt in range(1, limit + 1):
        response = _login(requests.Session(), base, username, f"wrong-guess-{attempt}")
        statuses.append(response.status_code)
        print(f"  wrong password #{attempt}: HTTP {response.status_code}")
    locked = _login(requests.Session(), base, username, password)
    said = "Too many failed sign-in attempts" in locked.text
    print(f"  RIGHT password while locked: HTTP {locked.status_code}; page explains the lockout: {said}")
    removed = throttling.unlock(None, username=username)
    print(f"  unlocked through the audited service ({removed} failure record(s) removed)")
    after = _login(requests.Session(), base, username, password)
    print(f"  right password after unlock: HTTP {after.status_code} -> {after.headers.get('Location', '')}")
    return {"wrong_statuses": statuses, "locked_status": locked.status_code, "lockout_explained": said,
            "after_unlock_status": after.status_code,
            "ok": locked.status_code == 429 and said and after.status_code == 302}


def import_drill(base, admin, admin_password, skip_large) -> dict:
    from generation.models import CaseStudy
    from scripts.bad_inputs import BAD_CASE_IMPORTS

    session = requests.Session()
    if _login(session, base, admin, admin_password).status_code != 302:
        sys.exit(f"Could not sign in as {admin}.")
    url = f"{base}/generation/cases/import/"
    results = []
    for bad in BAD_CASE_IMPORTS:
        if bad.slow and skip_large:
            continue
        before = CaseStudy.objects.count()
        token = _csrf(session, url)
        started = time.perf_counter()
        response = session.post(url, data={"csrfmiddlewaretoken": token}, headers={"Referer": url},
                                files={"file": (bad.filename, bad.make())}, timeout=300)
        seconds = time.perf_counter() - started
        shown = bad.expect in html.unescape(response.text)
        added = CaseStudy.objects.count() - before
        ok = response.status_code < 500 and shown and added == 0
        results.append({"kind": bad.kind, "status": response.status_code, "error_shown": shown,
                        "cases_added": added, "seconds": round(seconds, 2), "ok": ok})
        print(f"  {'ok  ' if ok else 'FAIL'} {bad.kind}: HTTP {response.status_code}, error shown: {shown}, "
              f"cases added: {added} ({seconds:.2f} s)")
    return {"files": len(results), "passed": sum(r["ok"] for r in results),
            "failed": [r["kind"] for r in results if not r["ok"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="rater3", help="the account to lock (and unlock again)")
    parser.add_argument("--password", default="demo-rater3-pass")
    parser.add_argument("--admin", default="admin")
    parser.add_argument("--admin-password", default="demo-admin-pass")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 50 MB upload")
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    _loopback_only(base)

    import django
    from django.conf import settings

    django.setup()
    print(f"Lockout (limit {settings.LOGIN_FAILURE_LIMIT} per account, {settings.LOGIN_IP_FAILURE_LIMIT} per "
          f"address, {settings.LOGIN_LOCKOUT_MINUTES} min):")
    lockout = lockout_drill(base, args.username, args.password, settings.LOGIN_FAILURE_LIMIT)
    print("Bad case-study imports:")
    imports = import_drill(base, args.admin, args.admin_password, args.skip_large)
    print(json.dumps({"lockout": lockout, "imports": imports,
                      "ok": lockout["ok"] and not imports["failed"]}))


if __name__ == "__main__":
    main()
