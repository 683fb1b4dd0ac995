"""Benchmark: stream the JSONL export of a 100,000-conversation campaign.

Fills its own database (mhsd_bench_export, dropped and re-created) with one campaign of 100,000
generated conversations (12 messages each, realistic lengths), 3 raters who each rated every
conversation on the 7 rated axes of the default rubric (with some comments, message notes and safety
flags): 1.2 M messages, 300,000 ratings, 2.1 M axis scores. The fill uses COPY FROM with foreign-key
triggers off (the data is consistent by construction), then ANALYZE.

Then, each in a fresh subprocess so that the fill's memory does not count:

* export: the real code path, GET /api/v1/campaigns/{id}/export?format=jsonl through the DRF view
  (a researcher's request), its StreamingHttpResponse consumed and counted;
* baseline: a plain `COPY (SELECT ...) TO STDOUT` of the same joined data (conversation metadata
  with items; messages; every score with its rating, rater, rubric and axis; message notes; safety
  flags), written to a counting sink.

Each reports rows, bytes, seconds and peak RSS (ru_maxrss of the process). The last line of output is
one JSON object with both, their ratios, and whether the goals (peak RSS < 300 MB, export MB/s >= 0.3 of
COPY's MB/s) are met.

    .venv/bin/python benchmarks/export.py [--conversations 100000] [--keep]
"""
import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import time

from _support import ROOT, fresh_database, setup_django

# Throttling and the cache live in Redis: keep the benchmark off the development database (0).
os.environ.setdefault("REDIS_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))

DB_NAME = "mhsd_bench_export"
MESSAGES_PER_CONVERSATION = 12
RATERS = 3
GOAL_RSS_MB = 300
GOAL_RATIO = 0.3
CHUNK = 20_000

PATIENT_SENTENCES = [
    "I have been feeling low for a few months now.",
    "My sleep is all over the place and I wake up at four most nights.",
    "I used to enjoy football but now I can't be bothered.",
    "Work has been stressful and I keep making small mistakes.",
    "Sometimes my heart races and I feel like something terrible will happen.",
    "My partner says I have been irritable and distant.",
    "I am not sure whether this is normal or whether I should worry.",
    "I tried cutting down on coffee but it did not change much.",
]
SENSEMAKER_SENTENCES = [
    "Thank you for telling me about this, it takes courage to talk about how you feel.",
    "Could you tell me a little more about when these feelings started and how often they come?",
    "Based on what you have described, your symptoms are consistent with a depressive episode.",
    "Persistent low mood, poor sleep and loss of interest are common signs that deserve attention.",
    "Regular exercise, a consistent sleep schedule and staying connected with friends can help.",
    "It sounds like this has been really exhausting for you, and that is completely understandable.",
    "A conversation with your general practitioner would be a sensible next step.",
    "If you ever feel unsafe, please contact emergency services or a crisis line straight away.",
]


def _text(rng, sentences, n):
    return " ".join(rng.choice(sentences) for _ in range(n))


def copy_rows(cursor, table, columns, rows):
    """COPY rows (tuples of already-escaped text) into table, CHUNK rows per statement."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    buffer, n = [], 0
    for row in rows:
        buffer.append("\t".join(row))
        n += 1
        if len(buffer) >= CHUNK:
            cursor.copy_expert(sql, io.StringIO("\n".join(buffer) + "\n"))
            buffer = []
    if buffer:
        cursor.copy_expert(sql, io.StringIO("\n".join(buffer) + "\n"))
    return n


def fill(n_conversations: int) -> dict:
    """Create the campaign with the ORM for the few rows, COPY for the many."""
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from accounts.roles import Role
    from generation.models import GenerationJob, ModelConfig, Persona
    from rating.models import Campaign
    from rating.rubric_files import default_rubric

    rng = random.Random(20260522)
    started = time.perf_counter()
    rubric = default_rubric()
    axes = [a for a in rubric.axes.all() if a.is_rated]
    assert len(axes) == 7, [a.key for a in axes]
    raters = [User.objects.create(username=f"bench-rater-{i}", role=Role.RATER) for i in range(RATERS)]
    researcher = User.objects.create(username="bench-researcher", role=Role.RESEARCHER)
    models = {role: ModelConfig.objects.create(name=f"bench-{role}", model=f"openai/bench-{role}")
              for role in ("patient", "sensemaker", "helper")}
    job = GenerationJob.objects.create(
        name="bench job", patient_model=models["patient"], sensemaker_model=models["sensemaker"],
        helper_model=models["helper"], status="done",
        settings_snapshot={role: m.provenance() for role, m in models.items()},
    )
    personas = [Persona.objects.create(trait=t, literacy=lit, intent="interpreting_information", goal="functioning")
                for t in ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
                for lit in ("basic", "advanced")]
    campaign = Campaign.objects.create(name="bench campaign", rubric=rubric, overlap_k=RATERS, status="closed")
    campaign.raters.set(raters)
    now = timezone.now().isoformat()
    n_cases = -(-n_conversations // len(personas))
    with connection.cursor() as cursor:
        # Bulk load: foreign-key triggers off for this session (the rows reference each other correctly).
        cursor.execute("SET session_replication_role = replica")
        raw = cursor.cursor
        copy_rows(raw, "generation_casestudy",
                  ["id", "external_id", "text", "ground_truth_diagnosis", "condition", "facts", "vital_facts",
                   "intent", "goal", "facts_status", "facts_error", "is_demo", "created_at", "updated_at"],
                  ((str(i), f"bench-case-{i}", "A 34-year-old reports low mood for two months.",
                    "Major depressive disorder", "depression", '["I feel low"]', "[]", "interpreting_information",
                    "functioning", "reviewed", "", "f", now, now) for i in range(1, n_cases + 1)))
        provenance = json.dumps({"models": job.settings_snapshot, "prompt_version": "v1",
                                 "persona": {"trait": "openness", "literacy": "basic"}}).replace("\\", "\\\\")

        def conversations():
            for i in range(1, n_conversations + 1):
                persona = personas[(i - 1) % len(personas)]
                case_id = (i - 1) // len(personas) + 1
                yield (str(i), "generated", "", "", "done", "", "1", str(i * 7919), "v1", "openai/bench-sensemaker",
                       "openai/bench-patient", "openai/bench-helper", provenance, "Major depressive disorder",
                       "depression", "{}", "f", "40", "20000", "3000", "\\N", f"{8 + (i % 70) / 10:.1f}", "6", now,
                       now, now, str(case_id), str(job.pk), str(persona.pk))

        copy_rows(raw, "generation_conversation",
                  ["id", "source", "source_label", "external_id", "status", "failure_reason", "attempts", "seed",
                   "prompt_version", "sensemaker_model", "patient_model", "helper_model", "provenance",
                   "ground_truth_diagnosis", "condition", "trace", "is_simulated", "llm_calls", "prompt_tokens",
                   "completion_tokens", "cost_usd", "smog_grade", "sensemaker_message_count", "created_at",
                   "started_at", "finished_at", "case_id", "job_id", "persona_id"], conversations())
        patient_texts = [_text(rng, PATIENT_SENTENCES, 2) for _ in range(200)]
        sensemaker_texts = [_text(rng, SENSEMAKER_SENTENCES, 4) for _ in range(200)]
        # Some replies hold a line break (escaped for COPY's text format; JSON must escape it too).
        sensemaker_texts[::10] = [t.replace(". ", ".\\n", 1) for t in sensemaker_texts[::10]]

        def messages():
            mid = 0
            for conv in range(1, n_conversations + 1):
                for index in range(MESSAGES_PER_CONVERSATION):
                    mid += 1
                    if index % 2 == 0:
                        yield (str(mid), str(index), "patient", str(index // 2 + 1 if index < 12 else 6),
                               patient_texts[(conv + index) % 200], "{}", "\\N", str(conv))
                    else:
                        yield (str(mid), str(index), "sensemaker", str(index // 2 + 1),
                               sensemaker_texts[(conv * 3 + index) % 200], "{}", "11.2", str(conv))

        n_messages = copy_rows(raw, "generation_message",
                               ["id", "index", "role", "stage", "text", "trace", "smog_grade", "conversation_id"],
                               messages())
        copy_rows(raw, "rating_campaignitem", ["id", "is_gold", "gold_scores", "added_at", "campaign_id",
                                               "conversation_id"],
                  ((str(i), "f", "{}", now, str(campaign.pk), str(i)) for i in range(1, n_conversations + 1)))
        n_ratings = n_conversations * RATERS

        def assignments():
            for i in range(1, n_conversations + 1):
                for r, rater in enumerate(raters):
                    aid = (i - 1) * RATERS + r + 1
                    yield (str(aid), "submitted", "\\N", "", str(120 + (aid * 37) % 900), now, now, now,
                           str(rater.pk), str(campaign.pk), str(i), "\\N")

        copy_rows(raw, "rating_assignment",
                  ["id", "status", "lease_expires_at", "skip_reason", "active_seconds", "created_at", "updated_at",
                   "submitted_at", "rater_id", "campaign_id", "item_id", "last_heartbeat_at"], assignments())
        copy_rows(raw, "rating_rating",
                  ["id", "status", "overall_comment", "revision", "created_at", "updated_at", "submitted_at",
                   "assignment_id", "rubric_id"],
                  ((str(a), "submitted", "Clear and kind, but the diagnosis came late." if a % 5 == 0 else "", "0",
                    now, now, now, str(a), str(rubric.pk)) for a in range(1, n_ratings + 1)))

        def scores():
            sid = 0
            for rating in range(1, n_ratings + 1):
                for axis in axes:
                    sid += 1
                    values = axis.allowed_values()
                    value = values[(rating * 31 + axis.pk * 7) % len(values)]
                    comment = "Missed the follow-up question." if sid % 13 == 0 else ""
                    yield str(sid), str(float(value)), comment, str(rating), str(axis.pk)

        n_scores = copy_rows(raw, "rating_axisscore", ["id", "value", "comment", "rating_id", "axis_id"], scores())
        copy_rows(raw, "rating_messagenote", ["id", "problematic", "note", "message_id", "rating_id"],
                  ((str(k), "t", "Vague about next steps.", str(((k * 20) // RATERS) * MESSAGES_PER_CONVERSATION + 2),
                    str(k * 20)) for k in range(1, n_ratings // 20 + 1)))
        copy_rows(raw, "rating_safetyflag",
                  ["id", "category", "reason", "status", "created_at", "handled_at", "resolution_note",
                   "campaign_id", "conversation_id", "handled_by_id", "raised_by_id", "message_id"],
                  ((str(k), "missed_risk", "Did not ask about self-harm.", "open", now, "\\N", "", str(campaign.pk),
                    str(k * 100), "\\N", str(raters[k % RATERS].pk), "\\N")
                   for k in range(1, n_conversations // 100 + 1)))
        cursor.execute("SET session_replication_role = DEFAULT")
        for table in ("generation_casestudy", "generation_conversation", "generation_message", "rating_campaignitem",
                      "rating_assignment", "rating_rating", "rating_axisscore", "rating_messagenote",
                      "rating_safetyflag"):
            # Table names are the fixed literals above, never input.
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608
        cursor.execute("ANALYZE")
    return {
        "campaign_id": campaign.pk, "researcher_id": researcher.pk, "conversations": n_conversations,
        "messages": n_messages, "ratings": n_ratings, "scores": n_scores,
        "fill_seconds": round(time.perf_counter() - started, 1),
    }


# --- measured in subprocesses --------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """Peak resident set size of this process: VmHWM, the high-water mark of the process's own memory
    map (which, unlike ru_maxrss, does not inherit the parent's peak across fork and exec), or
    ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_export(campaign_id: int, researcher_id: int) -> dict:
    """The real path: the DRF view with a researcher's request; the streamed body is counted."""
    setup_django(migrate=False)
    from rest_framework.test import APIRequestFactory, force_authenticate

    from accounts.models import User
    from api.views import CampaignExportView

    user = User.objects.get(pk=researcher_id)
    request = APIRequestFactory().get(f"/api/v1/campaigns/{campaign_id}/export", {"format": "jsonl"},
                                      HTTP_HOST="localhost")
    force_authenticate(request, user=user)
    rss_before = _peak_rss_mb()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    response = CampaignExportView.as_view()(request, pk=campaign_id)
    assert response.status_code == 200 and response.streaming, response
    n_bytes = n_lines = 0
    for chunk in response.streaming_content:
        n_bytes += len(chunk)
        n_lines += chunk.count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    return {"rows": n_lines, "bytes": n_bytes, "seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
            "rss_before_export_mb": rss_before, "cpu_seconds": _cpu_seconds() - cpu_before}


BASELINE_SQL = [
    # conversation metadata with its campaign item (what the export's conversation cursor reads)
    """SELECT c.id, c.source, c.source_label, c.external_id, c.status, c.is_simulated, c.job_id, j.name, cs.external_id,
              c.ground_truth_diagnosis, c.condition, p.trait, p.literacy, p.intent, p.goal, c.sensemaker_model,
              c.patient_model, c.helper_model, c.prompt_version, c.seed, c.smog_grade, c.sensemaker_message_count,
              c.created_at, c.finished_at, c.provenance, ci.is_gold, ci.gold_scores
       FROM rating_campaignitem ci JOIN generation_conversation c ON c.id = ci.conversation_id
       LEFT JOIN generation_generationjob j ON j.id = c.job_id LEFT JOIN generation_casestudy cs ON cs.id = c.case_id
       LEFT JOIN generation_persona p ON p.id = c.persona_id WHERE ci.campaign_id = %(c)s ORDER BY c.id""",
    # every message
    """SELECT m.conversation_id, m."index", m.role, m.stage, m.text, m.smog_grade
       FROM rating_campaignitem ci JOIN generation_message m ON m.conversation_id = ci.conversation_id
       WHERE ci.campaign_id = %(c)s ORDER BY m.conversation_id, m."index\"""",
    # every score with its rating, rater, rubric and axis
    """SELECT ci.conversation_id, r.id, u.pseudonym, rb.slug, rb.version, r.submitted_at, a.active_seconds, r.revision,
              r.overall_comment, ax.key, s.value, s.comment
       FROM rating_assignment a JOIN rating_rating r ON r.assignment_id = a.id
       JOIN rating_campaignitem ci ON ci.id = a.item_id JOIN accounts_user u ON u.id = a.rater_id
       JOIN rating_rubric rb ON rb.id = r.rubric_id JOIN rating_axisscore s ON s.rating_id = r.id
       JOIN rating_rubricaxis ax ON ax.id = s.axis_id
       WHERE a.campaign_id = %(c)s AND r.status = 'submitted' ORDER BY ci.conversation_id, r.id, ax."order\"""",
    # message notes and safety flags
    """SELECT ci.conversation_id, n.rating_id, m."index", n.problematic, n.note
       FROM rating_assignment a JOIN rating_rating r ON r.assignment_id = a.id
       JOIN rating_campaignitem ci ON ci.id = a.item_id JOIN rating_messagenote n ON n.rating_id = r.id
       JOIN generation_message m ON m.id = n.message_id WHERE a.campaign_id = %(c)s""",
    """SELECT f.conversation_id, f.id, f.category, f.status, f.reason, u.pseudonym, f.created_at
       FROM rating_safetyflag f JOIN accounts_user u ON u.id = f.raised_by_id
       WHERE f.conversation_id IN (SELECT conversation_id FROM rating_campaignitem WHERE campaign_id = %(c)s)""",
]


class CountingSink:
    def __init__(self):
        self.bytes = 0
        self.lines = 0

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.bytes += len(data)
        self.lines += data.count(b"\n")
        return len(data)


def child_copy(campaign_id: int) -> dict:
    import psycopg2

    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    sink = CountingSink()
    rss_before = _peak_rss_mb()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with conn.cursor() as cursor:
        for sql in BASELINE_SQL:
            query = cursor.mogrify(sql, {"c": campaign_id}).decode()
            cursor.copy_expert(f"COPY ({query}) TO STDOUT", sink)
    seconds = time.perf_counter() - started
    conn.close()
    return {"rows": sink.lines, "bytes": sink.bytes, "seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
            "rss_before_export_mb": rss_before, "cpu_seconds": _cpu_seconds() - cpu_before}


def run_child(kind: str, *args) -> dict:
    out = subprocess.run([sys.executable, __file__, f"--child-{kind}", *map(str, args)], cwd=ROOT, env=os.environ,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def figures(result: dict, conversations: int) -> dict:
    seconds = result["seconds"]
    return {
        "rows": result["rows"],
        "rows_per_s": round(result["rows"] / seconds, 1),
        "conversations_per_s": round(conversations / seconds, 1),
        "bytes": result["bytes"],
        "mb": round(result["bytes"] / 1e6, 1),
        "mb_per_s": round(result["bytes"] / 1e6 / seconds, 2),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "rss_before_export_mb": round(result["rss_before_export_mb"], 1),
        # CPU of this (client) process; the rest of the wall time is the database working.
        "client_cpu_seconds": round(result["cpu_seconds"], 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--child-export", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-copy", nargs=1, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-fill", nargs=1, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        print(json.dumps(child_export(*args.child_export)))
        return
    if args.child_copy:
        print(json.dumps(child_copy(*args.child_copy)))
        return
    if args.child_fill:
        setup_django()
        print(json.dumps(fill(*args.child_fill)))
        return

    # This process only orchestrates: the fill, the baseline and the export each run in their own.
    os.environ["DATABASE_URL"] = fresh_database(DB_NAME)
    data = run_child("fill", args.conversations)
    print(f"filled in {data['fill_seconds']} s: {json.dumps(data)}", flush=True)
    baseline = figures(run_child("copy", data["campaign_id"]), data["conversations"])
    print(f"COPY baseline: {json.dumps(baseline)}", flush=True)
    export = figures(run_child("export", data["campaign_id"], data["researcher_id"]), data["conversations"])
    print(f"JSONL export: {json.dumps(export)}", flush=True)
    if export["rows"] != data["conversations"]:
        raise SystemExit(f"the export has {export['rows']} lines for {data['conversations']} conversations")
    ratios = {
        "mb_per_s": round(export["mb_per_s"] / baseline["mb_per_s"], 3),
        "conversations_per_s": round(export["conversations_per_s"] / baseline["conversations_per_s"], 3),
        "peak_rss": round(export["peak_rss_mb"] / baseline["peak_rss_mb"], 2),
    }
    if not args.keep:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=False)
    print(json.dumps({
        "benchmark": "export_jsonl",
        "dataset": {k: data[k] for k in ("conversations", "messages", "ratings", "scores", "fill_seconds")},
        "export": export,
        "copy_baseline": baseline,
        "ratio_export_to_copy": ratios,
        "goals": {"peak_rss_mb_below": GOAL_RSS_MB, "mb_per_s_ratio_at_least": GOAL_RATIO},
        "goals_met": export["peak_rss_mb"] < GOAL_RSS_MB and ratios["mb_per_s"] >= GOAL_RATIO,
    }))


if __name__ == "__main__":
    main()
