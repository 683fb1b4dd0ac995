"""Benchmark: the platform's "next conversation" and "submit" against Label Studio's next-task and annotation
endpoints, on the same data, the same server configuration and the same client load, in one run.

Both get: 10,000 conversations of the same six messages, 50 raters (Label Studio: annotators of one
organisation), k = 3 ratings per conversation (Label Studio: ``maximum_annotations = 3`` on 100 % of tasks,
uniform (random) sampling, the nearest to the platform's per-rater shuffle), each served by gunicorn gthread
with 3 workers x 8 threads (as deployed), DEBUG off, on PostgreSQL (a database each), driven by 8 client
threads over HTTP, each cycling through its share of the raters' sessions:

    platform:      POST /rate/campaigns/<id>/next/   then  POST /rate/a/<pk>/submit/ (7 scores)
    Label Studio:  GET  /api/projects/<id>/next      then  POST /api/tasks/<id>/annotations (7 choices)

Label Studio's next answers with the task itself (its data and lock); the platform's answers with a
redirect to the rating page, whose GET is part of every platform cycle (so the platform's server does
more per cycle). The two run in alternating slices (--rounds) so both see the same outside load, then each
alone with one client (each request's cost without queueing). Label Studio's trivial endpoint (GET
/health/) and the platform's (GET /healthz) are measured the same way, so each tool's own ratio can be
compared too. Afterwards both databases are checked: no conversation (task) may have more than k ratings.

Label Studio is not a dependency of the platform: it is installed in a virtualenv of its own (see the
README, "Speed of next and submit"), by default `.label-studio-venv/` in the checkout (--label-studio-venv,
or LABEL_STUDIO_VENV). Without it this script says so and prints {"skipped": ...} as its last line.

    .venv/bin/python benchmarks/label_studio_next.py [--seconds 60] [--clients 8] [--rounds 4]

The last line of output is one JSON object with the figures.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import next_item
import requests
from _support import ROOT, stop
from next_item import MESSAGES, K, free_port, ratio, summary

N_CONVERSATIONS = 10_000
N_RATERS = 50
SETUP_SCRIPT = Path(__file__).resolve().parent / "label_studio" / "setup_label_studio.py"
AXES = ["susceptibility", "severity", "benefits", "diagnosis_hard", "diagnosis_soft", "flow", "readability_judgement"]


def label_studio_info(venv: Path) -> tuple[str, str]:
    """Where the virtualenv's label_studio package is, and its version."""
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import os, label_studio as ls; "
                          "print(os.path.dirname(ls.__file__)); print(ls.__version__)"],
                         capture_output=True, text=True, check=True)
    package_dir, version = out.stdout.split()
    return package_dir, version


def label_studio_env(venv: Path, db_name: str, data_dir: str) -> dict:
    return {**os.environ, "DJANGO_DB": "default", "POSTGRE_NAME": db_name, "POSTGRE_USER": "postgres",
            "POSTGRE_PASSWORD": "", "POSTGRE_HOST": "127.0.0.1", "POSTGRE_PORT": "5432",
            "LABEL_STUDIO_BASE_DATA_DIR": data_dir, "DEBUG": "false", "LATEST_VERSION_CHECK": "false",
            "DJANGO_SETTINGS_MODULE": "label_studio.core.settings.label_studio",
            # Its apps import each other as top-level packages (core, projects, ...), as its manage.py does.
            "PYTHONPATH": label_studio_info(venv)[0]}


def setup_label_studio(venv: Path, env: dict) -> dict:
    out = subprocess.run([str(venv / "bin" / "python"), str(SETUP_SCRIPT), str(N_RATERS), str(K)], env=env,
                         cwd=env["PYTHONPATH"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit("Label Studio set-up failed:\n" + out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_label_studio(venv: Path, env: dict, port: int, workers: int, threads: int, log) -> tuple:
    proc = subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "label_studio.core.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--log-level", "warning", "--timeout", "120", "--keep-alive", "120"],
        # From its package directory: gunicorn puts the working directory first on sys.path, and this
        # checkout's own `core` package would shadow Label Studio's.
        cwd=env["PYTHONPATH"], env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log,
    )
    return proc, next_item.wait_until_serving(proc, f"http://127.0.0.1:{port}", "/health/", 180, log, "Label Studio")


def import_tasks(base: str, project: int, admin_token: str) -> None:
    """The same conversations as tasks, through Label Studio's own import API (in batches)."""
    dialogue = [{"author": role, "text": text} for role, _, text in MESSAGES]
    headers = {"Authorization": f"Token {admin_token}"}
    for start in range(0, N_CONVERSATIONS, 2000):
        tasks = [{"dialogue": dialogue, "conversation": i} for i in range(start, min(start + 2000, N_CONVERSATIONS))]
        r = requests.post(f"{base}/api/projects/{project}/import", json=tasks, headers=headers, timeout=600)
        if r.status_code != 201:
            raise SystemExit(f"Label Studio import failed: {r.status_code} {r.text[:500]}")


def label_studio_sessions(tokens: list[str]) -> list[requests.Session]:
    sessions = []
    for token in tokens:
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        sessions.append(s)
    return sessions


ANNOTATION = {"lead_time": 30.0, "result": [
    {"from_name": axis, "to_name": "dialogue", "type": "choices",
     "value": {"choices": ["1" if not axis.startswith("diagnosis") else "0"]}} for axis in AXES]}


def run_label_studio_cycles(base, project, clients, seconds, sessions):
    lat, errors, cycles, exhausted = defaultdict(list), [], [0], []
    lock = threading.Lock()

    def one_cycle(s):
        t = time.perf_counter()
        r = s.get(f"{base}/api/projects/{project}/next", timeout=120)
        lat["next"].append(time.perf_counter() - t)
        if r.status_code == 404:
            exhausted.append(r.text[:100])  # nothing left for this annotator (not expected with 10,000)
            return
        if r.status_code != 200:
            errors.append(f"next {r.status_code}")
            return
        task = r.json()["id"]
        t = time.perf_counter()
        r = s.post(f"{base}/api/tasks/{task}/annotations?project={project}", json=ANNOTATION, timeout=120)
        lat["submit"].append(time.perf_counter() - t)
        if r.status_code != 201:
            errors.append(f"submit {r.status_code} {r.text[:100]}")
            return
        with lock:
            cycles[0] += 1

    elapsed = next_item.drive(clients, seconds, sessions, one_cycle, errors)
    return lat, errors, cycles[0], exhausted, elapsed


def label_studio_over_annotated(db_name: str) -> int:
    """Tasks with more than k annotations, read from Label Studio's database (table task_completion)."""
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db_name, "-tAc",
         f"SELECT COUNT(*) FROM (SELECT task_id FROM task_completion GROUP BY task_id HAVING COUNT(*) > {K}) x"],  # noqa: S608 - K is our int
        capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def phase(args, clients, seconds, ours, theirs):
    """Alternating slices of the platform's cycles and Label Studio's (and each one's trivial endpoint)."""
    (base, campaign_id, raters, values), (ls_base, project, sessions) = ours, theirs
    figures = {key: defaultdict(list) for key in ("ours", "theirs")}
    trivial = {"ours": [], "theirs": []}
    errors, cycles, elapsed, exhausted = [], {"ours": 0, "theirs": 0}, {"ours": 0.0, "theirs": 0.0}, []
    slice_s = seconds / args.rounds
    for _ in range(args.rounds):
        lat, err, n, ex, el = next_item.run_cycles(base, clients, slice_s, campaign_id, raters, values)
        for k, v in lat.items():
            figures["ours"][k] += v
        errors += err
        exhausted += ex
        cycles["ours"] += n
        elapsed["ours"] += el
        lat, err, n, ex, el = run_label_studio_cycles(ls_base, project, clients, slice_s, sessions)
        for k, v in lat.items():
            figures["theirs"][k] += v
        errors += [f"label studio {e}" for e in err]
        exhausted += ex
        cycles["theirs"] += n
        elapsed["theirs"] += el
        for key, url in (("ours", base + "/healthz"), ("theirs", ls_base + "/health/")):  # trivial endpoints
            lat, err = next_item.run_baseline(url, clients, slice_s / 4, path="")
            trivial[key] += lat
            errors += [f"{key} trivial {e}" for e in err]
    ours_next, ours_submit = summary(figures["ours"]["next"]), summary(figures["ours"]["submit"])
    ls_next, ls_submit = summary(figures["theirs"]["next"]), summary(figures["theirs"]["submit"])
    ours_trivial, ls_trivial = summary(trivial["ours"]), summary(trivial["theirs"])
    return {
        "platform": {"next": ours_next, "submit": ours_submit, "page": summary(figures["ours"]["page"]),
                     "healthz": ours_trivial, "cycles_per_s": round(cycles["ours"] / elapsed["ours"], 2),
                     "ratio_next_p95_to_healthz_p95": ratio(ours_next["p95_ms"], ours_trivial["p95_ms"])},
        "label_studio": {"next": ls_next, "submit": ls_submit, "health": ls_trivial,
                         "cycles_per_s": round(cycles["theirs"] / elapsed["theirs"], 2),
                         "ratio_next_p95_to_health_p95": ratio(ls_next["p95_ms"], ls_trivial["p95_ms"])},
        # How many times slower Label Studio is than the platform (> 1: the platform is faster).
        "label_studio_over_platform_next_p95": ratio(ls_next["p95_ms"], ours_next["p95_ms"]),
        "label_studio_over_platform_submit_p95": ratio(ls_submit["p95_ms"], ours_submit["p95_ms"]),
        "label_studio_over_platform_next_p50": ratio(ls_next["p50_ms"], ours_next["p50_ms"]),
        "label_studio_over_platform_submit_p50": ratio(ls_submit["p50_ms"], ours_submit["p50_ms"]),
        "errors": len(errors), "error_examples": errors[:5], "nothing_left": len(exhausted),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="concurrent phase, per tool")
    parser.add_argument("--solo-seconds", type=float, default=10, help="one-client phase, per tool")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--label-studio-venv", type=Path,
                        default=Path(os.environ.get("LABEL_STUDIO_VENV", ROOT / ".label-studio-venv")))
    args = parser.parse_args()
    venv = args.label_studio_venv.resolve()
    if not (venv / "bin" / "gunicorn").exists() or not (venv / "bin" / "python").exists():
        print(f"No Label Studio virtualenv at {venv} (with gunicorn): see the README to set one up.")
        print(json.dumps({"benchmark": "label_studio_next", "skipped": f"no Label Studio virtualenv at {venv}"}))
        return

    import redis

    os.environ["REDIS_URL"] = next_item.REDIS_URL
    os.environ["STATIC_MANIFEST"] = "0"
    ours_db = next_item.database_name()
    ls_db = ours_db.replace("_bench_next_item", "_bench_label_studio")
    t0 = time.perf_counter()
    redis.Redis.from_url(next_item.REDIS_URL).flushdb()
    next_item.fresh_database(ours_db)
    next_item.setup_django()
    campaign_id, session_keys, values = next_item.build_data(N_CONVERSATIONS, N_RATERS)
    ours_setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", ls_db], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", ls_db], check=True)
    data_dir = tempfile.mkdtemp(prefix="label-studio-bench-")
    env = label_studio_env(venv, ls_db, data_dir)
    ls = setup_label_studio(venv, env)
    version = label_studio_info(venv)[1]
    print(f"set-up: platform {ours_setup:.1f}s; Label Studio {version} migrated in "
          f"{time.perf_counter() - t0:.1f}s", flush=True)

    log, ls_log = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    proc, base = next_item.start_server(free_port(), args.workers, args.threads, log)
    ls_proc = None
    try:
        ls_proc, ls_base = start_label_studio(venv, env, free_port(), args.workers, args.threads, ls_log)
        t0 = time.perf_counter()
        import_tasks(ls_base, ls["project"], ls["admin_token"])
        print(f"Label Studio: {N_CONVERSATIONS} tasks imported in {time.perf_counter() - t0:.1f}s", flush=True)
        raters = [next_item.rater_client(base, key) for key in session_keys]
        sessions = label_studio_sessions(ls["tokens"])
        ours, theirs = (base, campaign_id, raters, values), (ls_base, ls["project"], sessions)
        # Warm-up, not measured: every server thread connects, templates and URL maps load.
        next_item.run_cycles(base, args.clients, 3, campaign_id, raters, values)
        run_label_studio_cycles(ls_base, ls["project"], args.clients, 3, sessions)
        load_before = os.getloadavg()[0]
        concurrent = phase(args, args.clients, args.seconds, ours, theirs)
        load_after = os.getloadavg()[0]
        print("concurrent phase done", flush=True)
        solo = phase(args, 1, args.solo_seconds, (base, campaign_id, raters[:5], values), (ls_base, ls["project"],
                                                                                            sessions[:5]))
    finally:
        stop(proc)
        if ls_proc is not None:
            stop(ls_proc)
    ours_db_check = next_item.check_database(campaign_id)
    result = {
        "benchmark": "label_studio_next", "label_studio_version": version, "conversations": N_CONVERSATIONS,
        "raters": N_RATERS, "overlap_k": K, "client_threads": args.clients,
        "server": f"gunicorn gthread {args.workers} workers x {args.threads} threads (both)",
        "cpu_count": os.cpu_count(), "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        **concurrent, "one_client": solo,
        "platform_over_assigned_conversations": ours_db_check["over_assigned_conversations"],
        "platform_duplicate_rater_item_rows": ours_db_check["duplicate_rater_item_rows"],
        "label_studio_over_annotated_tasks": label_studio_over_annotated(ls_db),
    }
    print(json.dumps(result))
    if result["platform_over_assigned_conversations"] or result["platform_duplicate_rater_item_rows"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
