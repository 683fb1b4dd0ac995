"""Benchmark: concurrent "next conversation" / "submit" cycles against a running server.

Set-up (its own database, <your DATABASE_URL's name>_bench_next_item): 10,000 finished conversations (6 messages
each), 50 raters, one open MultiSenseEval campaign with overlap k = 3. Then the same again at scale (a fresh
database): 100,000 conversations and 200 raters, half of them already rated when the clock starts (about 750
ratings per rater, --scale-prefill), so that what grows with a campaign's size or a rater's own progress shows
(--scale-seconds of cycles; --no-scale skips it; --prefill does the same for the first run). The set-up's
tables are vacuumed, analysed and checkpointed before any clock starts (`settle`); on a server that runs
without autovacuum, a stand-in does autovacuum's work while the clock runs (`AutovacuumStandIn`). A real
gunicorn (gthread workers) serves the project on a loopback port; client threads drive logged-in rater
sessions over HTTP:

    POST /rate/campaigns/<id>/next/   ("next": reclaim + choose + lock + recount + assign; answers 302)
    GET  /rate/a/<pk>/                (the rating page, reported as "page")
    POST /rate/a/<pk>/submit/         ("submit": saves every axis, validates, locks, submits; 302)

The baseline is GET /healthz (a trivial view that still touches Postgres and Redis: one SQL and two Redis round
trips, no session) on the same server with the same client concurrency and as many kept-alive connections as
the raters' sessions, measured in the same run in slices alternating with the cycles' (--rounds), so that both
see the same load from whatever else shares the machine.
The server is the same for both: gunicorn gthread, 3 worker processes x 8 threads (the Dockerfile's and
docker-compose.yml's configuration; threads share a process's GIL, so a third process keeps both cores busy
while one process's threads wait for it), persistent database connections (DB_CONN_MAX_AGE), DEBUG off,
the project's session engine (cached_db: sessions read from Redis).
"submit" posts then=stop, so it is one request (its redirect is not followed); the rating page's "Submit and
next" would run next inside the same request. Every rater's HTTP session opens its home page once (for the
CSRF cookie) before any clock starts. A short one-client phase after the cycles reports the same
figures without queueing ("one_client": the server's cost per request). The client threads run on the same 2
cores as gunicorn and Postgres, so the concurrent figures include that contention.
Afterwards the database is checked: no conversation may have more than k active-or-submitted assignments
("over_assigned_conversations", must be 0) and no rater may hold two rows for one conversation.

    .venv/bin/python benchmarks/next_item.py [--seconds 60] [--clients 8] [--workers 3] [--threads 8]
                                             [--scale-seconds 30] [--no-scale] [--rounds 4]

The last line of output is one JSON object with the figures; the scale run's are under "scale".
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

import requests
from _support import ROOT, fresh_database, setup_django, stop

# This benchmark's own Redis database (flushed at set-up); BENCH_REDIS_URL picks another for parallel checkouts.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
N_CONVERSATIONS = 10_000
N_RATERS = 50
SCALE_CONVERSATIONS = 100_000
SCALE_RATERS = 200
K = 3
MESSAGES = [
    ("patient", 1, "Hi. I have not been sleeping and I feel on edge most days."),
    ("sensemaker", 1, "Thank you for telling me. I am here to help you make sense of this."),
    ("patient", 2, "It started after a car accident last spring."),
    ("sensemaker", 3, "What you describe fits post-traumatic stress; it is common and treatable."),
    ("patient", 4, "What can I do about it?"),
    ("sensemaker", 6, "Regular sleep, talking to your doctor and trauma-focused therapy can all help."),
]


def database_name() -> str:
    """This benchmark's own database, named after the caller's DATABASE_URL so parallel checkouts don't collide."""
    base = os.environ.get("DATABASE_URL", "").rsplit("/", 1)[-1].split("?")[0] or "mhsd"
    return f"{base}_bench_next_item"


def build_data(n_conversations, n_raters):
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session_store = import_module(settings.SESSION_ENGINE).SessionStore

    from accounts.models import User
    from accounts.roles import Role
    from generation.models import Conversation, Message
    from generation.readability import smog_grade, smog_grade_texts
    from rating.models import Campaign, CampaignItem
    from rating.rubric_files import default_rubric

    # SMOG grades stored as generation and the importer store them (the rating page computes them only for
    # rows that lack them).
    smog = {text: smog_grade(text) for role, _, text in MESSAGES if role == "sensemaker"}
    conversation_smog = smog_grade_texts(smog)
    convs = Conversation.objects.bulk_create(
        [Conversation(source="imported", source_label="bench", external_id=str(i), status="done",
                      ground_truth_diagnosis="Post-traumatic stress disorder", sensemaker_message_count=3,
                      smog_grade=conversation_smog)
         for i in range(n_conversations)], batch_size=2000,
    )
    batch = []
    for conv in convs:
        for index, (role, stage, text) in enumerate(MESSAGES):
            batch.append(Message(conversation=conv, index=index, role=role, stage=stage, text=text,
                                 smog_grade=smog.get(text)))
        if len(batch) >= 12_000:
            Message.objects.bulk_create(batch)
            batch = []
    Message.objects.bulk_create(batch)
    raters = []
    for i in range(n_raters):
        user = User(username=f"bench-rater-{i}", role=Role.RATER)
        user.set_unusable_password()
        user.save()
        raters.append(user)
    campaign = Campaign.objects.create(name="Benchmark", rubric=default_rubric(), overlap_k=K, lease_minutes=60,
                                       status="open")
    campaign.raters.set(raters)
    CampaignItem.objects.bulk_create([CampaignItem(campaign=campaign, conversation=c) for c in convs],
                                     batch_size=5000)
    # Logged-in sessions, written where the server reads them (the configured engine: cached_db); logging in
    # through the form would only add 50 password hashes to the set-up.
    sessions = []
    for user in raters:
        store = session_store()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "accounts.backends.PasswordBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions.append(store.session_key)
    values = {f"value__{a.key}": str(a.allowed_values()[-1]) for a in campaign.rubric.axes.all() if a.is_rated}
    return campaign.pk, sessions, values


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port, workers, threads, log):
    env = {**os.environ, "REDIS_URL": REDIS_URL, "STATIC_MANIFEST": "0", "DEBUG": "0"}
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "mhsd_platform.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
         "--worker-class", "gthread", "--log-level", "warning", "--timeout", "60", "--keep-alive", "120"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    return proc, wait_until_serving(proc, base, "/healthz", 90, log, "gunicorn")


def wait_until_serving(proc, base, path, seconds, log, name) -> str:
    """Poll `base + path` until it answers 200 and return `base`; otherwise stop `proc` and exit with the
    tail of its `log` (a file), naming it."""
    deadline = time.time() + seconds
    try:
        while time.time() < deadline:
            try:
                if requests.get(base + path, timeout=10).status_code == 200:
                    return base
            except requests.RequestException:
                time.sleep(0.5)
    except BaseException:
        stop(proc)
        raise
    stop(proc)
    log.seek(0)
    raise SystemExit(f"{name} did not come up: " + log.read().decode()[-2000:])


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values):
    return {"p50_ms": round(percentile(values, 0.50) * 1000, 2), "p95_ms": round(percentile(values, 0.95) * 1000, 2),
            "n": len(values)} if values else {"p50_ms": None, "p95_ms": None, "n": 0}


def rater_client(base, session_key):
    s = requests.Session()
    s.cookies.set("sessionid", session_key, domain="127.0.0.1")
    r = s.get(base + "/rate/", timeout=30)  # also sets the CSRF cookie
    r.raise_for_status()
    return s


def run_baseline(base, clients, seconds, path="/healthz", sessions=None):
    """`clients` threads requesting a trivial endpoint (`path`) for `seconds`, each cycling through its share
    of `sessions` (HTTP sessions, each its own kept-alive connection; one per thread if not given)."""
    lat, errors = [], []

    def one(s):
        t = time.perf_counter()
        r = s.get(base + path, timeout=60)
        lat.append(time.perf_counter() - t)
        if r.status_code != 200:
            errors.append(r.status_code)

    drive(clients, seconds, sessions or [requests.Session() for _ in range(clients)], one, errors)
    return lat, errors


def run_cycles(base, clients, seconds, campaign_id, raters, values):
    """`clients` threads, each cycling through its share of `raters` (logged-in HTTP sessions)."""
    lat = defaultdict(list)
    errors, cycles, exhausted = [], [0], []
    lock = threading.Lock()
    next_url = f"{base}/rate/campaigns/{campaign_id}/next/"

    def one_cycle(s):
        csrf = {"X-CSRFToken": s.cookies.get("csrftoken")}
        t = time.perf_counter()
        r = s.post(next_url, headers=csrf, allow_redirects=False, timeout=60)
        lat["next"].append(time.perf_counter() - t)
        location = r.headers.get("Location", "")
        match = re.search(r"/rate/a/(\d+)/$", location)
        if r.status_code == 302 and not match:
            exhausted.append(location)  # nothing left for this rater (not expected with 10,000)
            return
        if not match:
            errors.append(f"next {r.status_code}")
            return
        pk = match.group(1)
        t = time.perf_counter()
        r = s.get(f"{base}/rate/a/{pk}/", timeout=60)
        lat["page"].append(time.perf_counter() - t)
        if r.status_code != 200:
            errors.append(f"page {r.status_code}")
            return
        t = time.perf_counter()
        r = s.post(f"{base}/rate/a/{pk}/submit/", data={**values, "then": "stop"}, headers=csrf,
                   allow_redirects=False, timeout=60)
        lat["submit"].append(time.perf_counter() - t)
        if r.status_code != 302 or "/rate/campaigns/" not in r.headers.get("Location", ""):
            errors.append(f"submit {r.status_code} {r.headers.get('Location', '')}")
            return
        with lock:
            cycles[0] += 1

    elapsed = drive(clients, seconds, raters, one_cycle, errors)
    return lat, errors, cycles[0], exhausted, elapsed


def drive(clients, seconds, sessions, one_cycle, errors) -> float:
    """`clients` threads calling `one_cycle(session)` for `seconds`, each cycling through its share of
    `sessions`; a request that fails outright is appended to `errors`. Returns the time taken."""
    stop_at = time.perf_counter() + seconds

    def worker(group):
        i = 0
        while time.perf_counter() < stop_at:
            s = group[i % len(group)]
            i += 1
            try:
                one_cycle(s)
            except requests.RequestException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(sessions[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    [t.start() for t in threads]
    [t.join() for t in threads]
    return time.perf_counter() - started


def interleaved(args, base, clients, baseline_seconds, seconds, campaign_id, raters, values, baseline_sessions):
    """The baseline and the cycles in --rounds alternating slices, so both see the same outside load (other
    work on a shared machine comes and goes within a minute). The baseline's clients keep as many connections
    open as the raters' (`baseline_sessions`, one per rater session): gunicorn's worker processes each serve
    the connections they accepted, so 8 connections may land 5/2/1 on three workers and 50 spread about
    evenly; with different patterns the two phases would not queue alike. Returns both phases' figures."""
    base_lat, base_errors, lat, errors, cycles, exhausted, elapsed = [], [], defaultdict(list), [], 0, [], 0.0
    for _ in range(args.rounds):
        b_lat, b_err = run_baseline(base, clients, baseline_seconds / args.rounds, sessions=baseline_sessions)
        c_lat, c_err, c_cycles, c_exhausted, c_elapsed = run_cycles(base, clients, seconds / args.rounds,
                                                                    campaign_id, raters, values)
        base_lat += b_lat
        base_errors += b_err
        for key, values_ in c_lat.items():
            lat[key] += values_
        errors += c_err
        cycles += c_cycles
        exhausted += c_exhausted
        elapsed += c_elapsed
    return base_lat, base_errors, lat, errors, cycles, exhausted, elapsed


def prefill(campaign_id, fraction, k=K, seed=11) -> float:
    """Rate `fraction` of the campaign's conversations completely before any clock starts (k submitted
    ratings each, from raters drawn at random), as in a campaign part-way through, so that the figures
    include what grows with each rater's own progress. Returns the ratings per rater.

    Written in bulk with triggers off (session_replication_role, which needs a superuser, as the benchmark's
    local PostgreSQL has): the occupant counts and the pair-share rows are then set in one statement each,
    the pair shares by the same backfill migration 0007 runs on existing data. The prefilled ratings carry
    no scores: nothing on the measured path reads another assignment's scores."""
    import random
    from importlib import import_module

    from django.db import connection, transaction
    from psycopg2.extras import execute_values

    rng = random.Random(seed)
    backfill = import_module("rating.migrations.0007_pairshare").BACKFILL_PAIR_SHARES
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM rating_campaignitem WHERE campaign_id = %s ORDER BY id", [campaign_id])
        items = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT user_id FROM rating_campaign_raters WHERE campaign_id = %s ORDER BY user_id",
                       [campaign_id])
        raters = [row[0] for row in cursor.fetchall()]
        chosen = rng.sample(items, round(fraction * len(items)))
        rows = [(campaign_id, item, rater) for item in chosen for rater in rng.sample(raters, k)]
        cursor.execute("SET LOCAL session_replication_role = replica")
        execute_values(cursor.cursor, (
            "INSERT INTO rating_assignment (campaign_id, item_id, rater_id, status, skip_reason, active_seconds,"
            " created_at, updated_at, submitted_at) VALUES %s"), rows,
            template="(%s, %s, %s, 'submitted', '', 60, now(), now(), now())", page_size=5000)
        cursor.execute(
            "INSERT INTO rating_rating (assignment_id, rubric_id, status, overall_comment, revision, created_at,"
            " updated_at, submitted_at) SELECT a.id, c.rubric_id, 'submitted', '', 0, now(), now(), now()"
            " FROM rating_assignment a JOIN rating_campaign c ON c.id = a.campaign_id WHERE a.campaign_id = %s",
            [campaign_id])
        cursor.execute("UPDATE rating_campaignitem SET occupants = %s WHERE id = ANY(%s)", [k, chosen])
        cursor.execute(backfill)
        cursor.execute("SET LOCAL session_replication_role = origin")
    return round(len(rows) / len(raters), 1)


def settle() -> dict:
    """Autovacuum's work on what the set-up wrote, as it would have done within a minute or so of a real import
    (its naptime): a campaign is not rated the second its items are loaded. One pass of `AutovacuumStandIn`:
    VACUUM and ANALYZE of the tables past autovacuum's thresholds, which are the ones the set-up wrote in bulk.
    Without it the clock started on tables with no visibility map and, after the prefill's occupant UPDATE,
    half their rows dead: next's index-only walk then read twice the pages (at 100,000 conversations:
    1,100-1,600 buffers per state read instead of 550-850, 1.7-2.6 ms instead of 1.1-1.6 ms).

    Tables nothing was written to (at 10,000 conversations, the fresh campaign's assignments, ratings, scores
    and pair counts) are left as autovacuum leaves them: never analysed, so PostgreSQL plans for a table that
    may grow (it assumes at least ten pages) rather than for an empty one. A VACUUM ANALYZE of the whole
    database here used to mark them analysed and empty; every connection then planned their look-ups (the
    foreign-key checks of each submission, the joins of the hold and the rating page) as sequential scans,
    which grew with the tables until the first autovacuum pass a minute later, at 10,000 conversations the
    whole measured phase.

    Then a CHECKPOINT (superuser, as the prefill): the set-up writes gigabytes of WAL, and the checkpoint it
    forces otherwise spreads its writes over the next minutes (checkpoint_completion_target), into the
    measured phases. Returns what the pass did."""
    from django.db import connection

    with connection.cursor() as cursor:
        # The set-up's own row counts reach the statistics autovacuum decides by (flushed as this backend goes
        # idle, before the statement returns) before the pass reads them.
        cursor.execute("SELECT pg_stat_force_next_flush()")
    standin = AutovacuumStandIn(os.environ["DATABASE_URL"])
    try:
        standin.one_pass()
        with standin.connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        return standin.summary()
    finally:
        standin.stop()


class AutovacuumStandIn:
    """What autovacuum would do during the measured phases, on a server that runs without it.

    This machine's PostgreSQL runs with autovacuum off; a deployment's has it on (PostgreSQL's default, and
    docker-compose.yml's postgres:15). Without it nothing analyses the tables the measured phases grow: a
    fresh campaign's assignments, ratings and pair counts go from none to thousands of rows, and a database
    connection's cached plans, made on the empty tables' statistics, are never made again until the
    connection closes (an ANALYZE invalidates them). With connections kept 600 s instead of 60, next's
    one-client p50 at 10,000 conversations was 32 ms instead of 7.

    So, only where the server reports autovacuum off, a thread does what autovacuum's launcher does for one
    database: every autovacuum_naptime, a VACUUM of each table past autovacuum's vacuum thresholds (dead
    rows, or rows inserted since the last vacuum) and an ANALYZE of each table past its analyze threshold,
    with the server's own settings. Its own connection; what it did is reported."""

    _TABLES_DUE = """
        SELECT t.relname,
               t.n_dead_tup > s.vac_base + s.vac_scale * greatest(c.reltuples, 0)
                 OR t.n_ins_since_vacuum > s.ins_base + s.ins_scale * greatest(c.reltuples, 0),
               t.n_mod_since_analyze > s.an_base + s.an_scale * greatest(c.reltuples, 0)
        FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid,
             (SELECT current_setting('autovacuum_vacuum_threshold')::float AS vac_base,
                     current_setting('autovacuum_vacuum_scale_factor')::float AS vac_scale,
                     current_setting('autovacuum_vacuum_insert_threshold')::float AS ins_base,
                     current_setting('autovacuum_vacuum_insert_scale_factor')::float AS ins_scale,
                     current_setting('autovacuum_analyze_threshold')::float AS an_base,
                     current_setting('autovacuum_analyze_scale_factor')::float AS an_scale) s
        ORDER BY t.relname"""

    def __init__(self, database_url: str):
        import psycopg2

        self.connection = psycopg2.connect(database_url)
        self.connection.autocommit = True  # VACUUM runs outside any transaction
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('autovacuum'),"
                           " (SELECT setting::int FROM pg_settings WHERE name = 'autovacuum_naptime')")  # seconds
            server_setting, self.naptime = cursor.fetchone()
        self.server_setting, self.active = server_setting, server_setting == "off"
        self.passes, self.vacuumed, self.analyzed = 0, Counter(), Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        if self.active:
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.connection.close()

    def _run(self):
        while not self._stop.wait(self.naptime):
            self.one_pass()

    def one_pass(self):
        """One visit of autovacuum's launcher to the database."""
        with self.connection.cursor() as cursor:
            cursor.execute(self._TABLES_DUE)
            for table, vacuum, analyze in cursor.fetchall():
                # Both due: one VACUUM ANALYZE, as autovacuum does in one pass.
                what = "VACUUM ANALYZE" if vacuum and analyze else "VACUUM" if vacuum else "ANALYZE"
                if vacuum or analyze:
                    cursor.execute(f'{what} "{table}"')
                self.vacuumed[table] += vacuum
                self.analyzed[table] += analyze
        self.passes += 1

    def summary(self) -> dict:
        return {"server_autovacuum": self.server_setting, "naptime_s": self.naptime, "passes": self.passes,
                "vacuumed": {t: n for t, n in self.vacuumed.items() if n},
                "analyzed": {t: n for t, n in self.analyzed.items() if n}}


def check_database(campaign_id, k=K):
    from django.db.models import Count, Q
    from django.utils import timezone

    from rating.models import Assignment, Rating

    now = timezone.now()
    occupying = Q(status="submitted") | Q(status="active", lease_expires_at__gt=now)
    over = (Assignment.objects.filter(campaign_id=campaign_id).filter(occupying).values("item_id")
            .annotate(n=Count("id")).filter(n__gt=k).count())
    dupes = (Assignment.objects.values("item_id", "rater_id").annotate(n=Count("id")).filter(n__gt=1).count())
    submitted = Assignment.objects.filter(campaign_id=campaign_id, status="submitted").count()
    ratings = Rating.objects.filter(status="submitted", assignment__campaign_id=campaign_id).count()
    items_started = Assignment.objects.filter(campaign_id=campaign_id).values("item_id").distinct().count()
    complete = (Assignment.objects.filter(campaign_id=campaign_id, status="submitted").values("item_id")
                .annotate(n=Count("id")).filter(n=k).count())
    return {"over_assigned_conversations": over, "duplicate_rater_item_rows": dupes,
            "submitted_assignments": submitted, "submitted_ratings": ratings,
            "conversations_started": items_started, "conversations_complete": complete}


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def run_size(args, db_name, n_conversations, n_raters, seconds, prefilled=0.0):
    """Set up a fresh database of this size (`prefilled` of it already rated), serve it, measure; returns the
    figures."""
    import redis
    from django.apps import apps

    t0 = time.perf_counter()
    if apps.ready:  # a second size: let go of the previous database (before that, touching it would read settings)
        from django.db import connections

        connections.close_all()
    redis.Redis.from_url(REDIS_URL).flushdb()  # this benchmark's own Redis database (cache, broker)
    fresh_database(db_name)
    setup_django()
    campaign_id, sessions, values = build_data(n_conversations, n_raters)
    per_rater = prefill(campaign_id, prefilled) if prefilled else 0
    settled = settle()
    setup_seconds = time.perf_counter() - t0
    print(f"set-up: {n_conversations} conversations, {n_raters} raters, k={K}, {prefilled:.0%} already rated "
          f"({per_rater} ratings per rater) in {setup_seconds:.1f}s", flush=True)

    log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the server
    standin = AutovacuumStandIn(os.environ["DATABASE_URL"])
    proc, base = start_server(free_port(), args.workers, args.threads, log)
    standin.start()
    try:
        # Not measured: each rater's HTTP session opens their home page once (for the CSRF cookie). Done
        # before any clock starts: at 200 raters these home pages (which count what is left for each rater
        # over the whole campaign) would otherwise run inside the measured phase.
        raters = [rater_client(base, key) for key in sessions]
        baseline_sessions = [requests.Session() for _ in raters]
        for s in baseline_sessions:
            s.get(base + "/healthz", timeout=30).raise_for_status()  # its connection open, as the raters' are
        # Warm-up (not measured): every server thread opens its database connection, templates compile.
        run_baseline(base, args.workers * args.threads, 3)
        run_cycles(base, args.clients, 3, campaign_id, raters, values)
        load_before = os.getloadavg()[0]
        base_lat, base_errors, lat, errors, cycles, exhausted, elapsed = interleaved(
            args, base, args.clients, args.baseline_seconds, seconds, campaign_id, raters, values, baseline_sessions)
        load_after = os.getloadavg()[0]
        print(f"baseline: {len(base_lat)} GET /healthz; cycles: {cycles} in {elapsed:.1f}s, "
              f"errors: {len(errors)} {errors[:5]}", flush=True)
        # One client: what each request costs the server without queueing behind others.
        solo_base, solo_base_errors, solo, solo_errors, solo_cycles, _, _ = interleaved(
            args, base, 1, args.solo_seconds / 2, args.solo_seconds, campaign_id, raters[:5], values,
            baseline_sessions[:5])
        print(f"one client: {solo_cycles} cycles, errors: {len(solo_errors)} {solo_errors[:5]}", flush=True)
        errors += solo_errors + solo_base_errors
    finally:
        standin.stop()
        stop(proc)
    db = check_database(campaign_id)
    nxt, sub, page, hz = summary(lat["next"]), summary(lat["submit"]), summary(lat["page"]), summary(base_lat)
    return {
        "conversations": n_conversations, "raters": n_raters, "overlap_k": K,
        # Rated before the clock started (prefill): the campaign's fraction, and the ratings each rater had.
        "prefilled_fraction": prefilled, "prefilled_ratings_per_rater": per_rater,
        "server": f"gunicorn gthread {args.workers} workers x {args.threads} threads", "client_threads": args.clients,
        "cpu_count": os.cpu_count(), "duration_s": round(elapsed, 1),
        # The machine's 1-minute load average as the concurrent phase began and ended (others' work included).
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "cycles": cycles, "throughput_cycles_per_s": round(cycles / elapsed, 2),
        # Each cycle is three requests (next, page, submit); the baseline's throughput is GET /healthz's.
        "throughput_requests_per_s": round(3 * cycles / elapsed, 2),
        "baseline_requests_per_s": round(len(base_lat) / args.baseline_seconds, 2),
        "ratio_requests_per_s_to_baseline": ratio(3 * cycles / elapsed, len(base_lat) / args.baseline_seconds),
        "next": nxt, "submit": sub, "page": page, "baseline_healthz": hz,
        "ratio_next_p50_to_baseline_p50": ratio(nxt["p50_ms"], hz["p50_ms"]),
        "ratio_next_p95_to_baseline_p95": ratio(nxt["p95_ms"], hz["p95_ms"]),
        "ratio_submit_p50_to_baseline_p50": ratio(sub["p50_ms"], hz["p50_ms"]),
        "ratio_submit_p95_to_baseline_p95": ratio(sub["p95_ms"], hz["p95_ms"]),
        "one_client": {
            "cycles": solo_cycles, "next": summary(solo["next"]), "submit": summary(solo["submit"]),
            "page": summary(solo["page"]), "baseline_healthz": summary(solo_base),
        },
        "http_errors": len(errors) + len(base_errors), "next_with_nothing_left": len(exhausted),
        **db,
        "setup_s": round(setup_seconds, 1),
        # What the set-up's one autovacuum pass (settle) vacuumed and analysed before the clock started.
        "settle": {"vacuumed": sorted(settled["vacuumed"]), "analyzed": sorted(settled["analyzed"])},
        # On a server without autovacuum, what the stand-in did in its place (AutovacuumStandIn).
        "autovacuum_stand_in": standin.summary(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="duration of the next/submit phase")
    parser.add_argument("--scale-seconds", type=float, default=30, help="the same at 100,000 conversations")
    parser.add_argument("--no-scale", action="store_true", help="skip the 100,000-conversation run")
    parser.add_argument("--prefill", type=float, default=0.0,
                        help="fraction of the 10,000 conversations already rated when the clock starts")
    parser.add_argument("--scale-prefill", type=float, default=0.5,
                        help="the same for the 100,000 (0.5: each rater already has about 750 ratings)")
    parser.add_argument("--baseline-seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=4, help="alternating baseline/cycle slices per phase")
    parser.add_argument("--solo-seconds", type=float, default=10, help="the one-client phase")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    # As deployed (Dockerfile, docker-compose.yml).
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    args = parser.parse_args()

    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["STATIC_MANIFEST"] = "0"
    name = database_name()  # before fresh_database points DATABASE_URL at it
    result = {"benchmark": "next_item", "database": name,
              **run_size(args, name, N_CONVERSATIONS, N_RATERS, args.seconds, args.prefill)}
    if not args.no_scale:
        scale = run_size(args, name, SCALE_CONVERSATIONS, SCALE_RATERS, args.scale_seconds, args.scale_prefill)
        result["scale"] = scale
        result["scale_ratio_next_p95_to_baseline_p95"] = scale["ratio_next_p95_to_baseline_p95"]
        result["scale_ratio_submit_p95_to_baseline_p95"] = scale["ratio_submit_p95_to_baseline_p95"]
    print(json.dumps(result))
    bad = [r for r in (result, result.get("scale") or {}) if r.get("over_assigned_conversations")
           or r.get("duplicate_rater_item_rows")]
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
