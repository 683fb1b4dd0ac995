"""Judge calls per second that a judge run sustains with many calls in flight on 2 cores.

The real path: Celery worker (threads pool) -> judging.services.run_item_attempt -> the judge prompt ->
LiteLLM `openai/...` -> HTTP to a loopback OpenAI-compatible server with a fixed per-call latency, whose
answers come from the simulator judge (valid JSON, parsed strictly; the server memoizes its
deterministic answers per model, messages and seed, since it stands in for a remote provider yet shares
this machine's 2 cores) -> scores written to PostgreSQL. The
ceiling is (calls allowed in flight) / latency; the baseline is the same pipeline allowed one call at a
time, measured in the same run. Prints one JSON object last.

    .venv/bin/python benchmarks/judge_throughput.py [--latency 0.5] [--in-flight 32] [--items 960]
        [--worker-processes N (default: one per core)] [--worker-threads N (default: 1.5x in flight)]
        [--no-reference]

The goal is measured on the deployment the README advises (worker threads about 1.5x the run's limit on
calls in flight); a reference run with exactly as many threads as calls in flight is printed beside it.

The goal counts only if no judge call failed.
"""
import argparse
import json
import os
import time

from _support import fresh_database, setup_django, start_worker, stop, throughput_summary

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
SAMPLES = 8
DIALOGUE = [
    ("patient", "I have felt low for two months, I sleep badly and I lost interest in football."),
    ("sensemaker", "Thank you for telling me. How has this been affecting your work and your family?"),
    ("patient", "I can't concentrate at work and I stopped seeing my friends."),
    ("sensemaker", "Based on what you've told me, the most likely explanation is major depressive disorder. It is "
                   "common, but left alone it can get worse and affect your daily life."),
    ("patient", "What can I do about it?"),
    ("sensemaker", "One thing that may help is a regular sleep routine; talking therapy is effective and many "
                   "people improve with the right support. Would you be open to setting one small goal?"),
    ("patient", "Yes, I think I can try that."),
    ("sensemaker", "Your feelings are valid. Take care, and reach out again whenever you need to."),
]


def bench_campaign(conversations: int):
    """A closed campaign of `conversations` finished (imported) conversations, each the same short dialogue."""
    from generation.models import Conversation, Message
    from rating.models import Campaign, CampaignItem
    from rating.rubric_files import default_rubric

    first = Conversation.objects.count()
    convs = Conversation.objects.bulk_create([
        Conversation(source="imported", source_label="judge bench", external_id=f"bench-{first + i}", status="done",
                     sensemaker_model="openai/bench-under-test", ground_truth_diagnosis="Major depressive disorder")
        for i in range(conversations)])
    Message.objects.bulk_create([Message(conversation=c, index=i, role=role, stage=min(6, 1 + i // 2), text=text)
                                 for c in convs for i, (role, text) in enumerate(DIALOGUE)])
    campaign = Campaign.objects.create(name="judge bench", rubric=default_rubric(), status="closed")
    CampaignItem.objects.bulk_create([CampaignItem(campaign=campaign, conversation=c) for c in convs])
    return campaign


def run_judge(server, campaign, *, samples, in_flight, worker_concurrency, label, worker_processes=1):
    from generation.models import ModelConfig
    from judging import services
    from judging.models import JudgeRun
    from judging.selectors import run_progress

    judge = ModelConfig.objects.get_or_create(
        name="bench-judge", defaults={"model": "openai/bench-judge", "api_base": server.base_url})[0]

    def run(name, n_samples):
        run = services.launch_run(None, services.JudgeRequest(
            judge_model=judge, campaign=campaign, name=name, samples=n_samples, max_concurrent_calls=in_flight,
        ), enqueue_tasks=False)
        from django.db.models import Max

        started = time.time()
        services.enqueue(list(run.items.order_by("id").values_list("id", flat=True)))
        # Polled slowly (the progress queries cost the database CPU that the run competes for); the end
        # is the last item's own finished_at, written by the worker on this machine's clock.
        while not run_progress(JudgeRun.objects.get(pk=run.pk))["is_finished"]:
            time.sleep(0.5)
        last = run.items.aggregate(last=Max("finished_at"))["last"]
        return run, last.timestamp() - started

    # One worker process per core, as Celery deploys by default: a judge call costs the worker CPU (LiteLLM,
    # the task, its queries) and one Python process is bound by the GIL. The run's limit on calls in flight
    # holds across all of them (Redis call slots), so the ceiling stays in_flight / latency.
    threads = -(-worker_concurrency // worker_processes)
    workers = [start_worker(threads, REDIS_URL) for _ in range(worker_processes)]
    try:
        # Untimed warm-up: the worker's first calls pay one-off costs (connections, imports).
        run(f"{label} (warm-up)", worker_processes)
        server.reset()
        cpu_before = sum(_cpu_seconds(w.pid) for w in workers)
        own_before = _cpu_seconds(os.getpid())
        run_, elapsed = run(label, samples)
        worker_cpu = sum(_cpu_seconds(w.pid) for w in workers) - cpu_before
        own_cpu = _cpu_seconds(os.getpid()) - own_before
    finally:
        for worker in workers:
            stop(worker)
    statuses = list(run_.items.values_list("status", flat=True))
    return {"calls": server.hits, "seconds": round(elapsed, 2), "calls_per_second": round(server.hits / elapsed, 2),
            "max_in_flight_seen": server.max_in_flight, "items": len(statuses), "failed": statuses.count("failed"),
            "worker_processes": worker_processes, "threads_per_worker": threads,
            # What one judge call costs the worker: with the machine's other load, this is what limits it.
            "worker_cpu_ms_per_call": round(1000 * worker_cpu / max(1, server.hits), 1),
            # This process: the loopback LLM server (it stands in for a remote provider, yet shares the cores)
            # and the progress polling.
            "harness_cpu_ms_per_call": round(1000 * own_cpu / max(1, server.hits), 1)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per LLM call at the server")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--items", type=int, default=960,
                        help=f"judge calls in the timed run ({SAMPLES} per conversation)")
    parser.add_argument("--baseline-items", type=int, default=12)
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="worker threads in all (default: 1.5x the calls in flight, as the README advises)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the reference run with only as many worker threads as calls in flight")
    parser.add_argument("--worker-processes", type=int, default=os.cpu_count() or 1,
                        help="worker processes sharing the parallel run's in-flight limit (default: one per core)")
    args = parser.parse_args()
    if args.items < SAMPLES or args.baseline_items < 1:
        parser.error(f"--items must be at least {SAMPLES} and --baseline-items at least 1")

    load_at_start = round(os.getloadavg()[0], 2)
    os.environ["REDIS_URL"] = REDIS_URL
    fresh_database("mhsd_bench_judge")
    setup_django()
    from django.conf import settings
    from fakellm import FakeLLMServer

    from core.redis_client import get_redis
    from demo import loader as demo

    assert settings.REDIS_URL == REDIS_URL
    get_redis().flushdb()
    demo.seed_foundation()
    # The deployment the README advises: more worker threads than calls in flight, so that while some
    # threads claim, read and write their items, others hold every call slot.
    threads = args.worker_threads or -(-3 * args.in_flight // 2)
    processes = max(1, args.worker_processes)
    extra = {}
    with FakeLLMServer(latency=args.latency, memoize=True) as server:
        parallel = run_judge(server, bench_campaign(args.items // SAMPLES), samples=SAMPLES, in_flight=args.in_flight,
                             worker_concurrency=threads, label="parallel", worker_processes=processes)
        if not args.no_reference and threads != args.in_flight:
            # For reference only (not the goal): exactly one thread per call allowed in flight, where
            # every moment a thread spends off the wire leaves a slot empty.
            server.reset()
            reference = run_judge(server, bench_campaign(args.items // SAMPLES), samples=SAMPLES,
                                  in_flight=args.in_flight, worker_concurrency=args.in_flight,
                                  label="threads = calls in flight", worker_processes=processes)
            extra["reference_threads_equal_in_flight"] = {
                **reference, "ratio_to_limit": round(reference["calls_per_second"] * args.latency / args.in_flight, 3)}
        baseline = run_judge(server, bench_campaign(args.baseline_items), samples=1, in_flight=1,
                             worker_concurrency=1, label="one call at a time")
    print(json.dumps(throughput_summary(
        "judge_throughput", latency=args.latency, in_flight=args.in_flight, parallel=parallel, baseline=baseline,
        cores=os.cpu_count(), load_average_1min_at_start=load_at_start,
        load_average_1min_at_end=round(os.getloadavg()[0], 2), **extra,
    )))


if __name__ == "__main__":
    main()
