"""LLM calls per second that generation sustains with many calls in flight on 2 cores.

The real path: Celery worker (threads pool) -> MedAgent -> LiteLLM `openai/...` -> HTTP to a loopback
OpenAI-compatible server with a fixed per-call latency. The ceiling is (calls allowed in flight) /
latency; the baseline is the same pipeline allowed one call at a time. Prints one JSON object last.

    .venv/bin/python benchmarks/generation_throughput.py [--latency 0.5] [--in-flight 32] [--conversations 160]

The goal counts only if no conversation failed: a run with failures did not do the work it times.
"""
import argparse
import json
import os
import time

from _support import fresh_database, setup_django, start_worker, stop, throughput_summary

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")


def bench_cases(count):
    """`count` ready case studies: the demo cases, then copies of them under new ids if more are needed."""
    from generation.models import CaseStudy

    demo = list(CaseStudy.objects.filter(is_demo=True).order_by("external_id"))
    cases = []
    for i in range(count):
        base = demo[i % len(demo)]
        if i < len(demo):
            cases.append(base)
            continue
        copy, _ = CaseStudy.objects.get_or_create(
            external_id=f"{base.external_id}-copy{i // len(demo)}",
            defaults={field: getattr(base, field) for field in (
                "text", "ground_truth_diagnosis", "condition", "facts", "vital_facts", "intent", "goal",
                "facts_status")},
        )
        cases.append(copy)
    return cases


def run_job(server, *, conversations, traits, literacies, in_flight, worker_concurrency, label):
    """Time one job of exactly `conversations` conversations (cases x traits x literacies, cut to size)."""
    from generation import services
    from generation.models import GenerationJob, ModelConfig
    from generation.selectors import job_progress

    def config(role):
        return ModelConfig.objects.get_or_create(
            name=f"bench-{role}", defaults={"model": f"openai/bench-{role}", "api_base": server.base_url},
        )[0]

    def run(name, n, job_traits, job_literacies):
        per_case = len(job_traits) * len(job_literacies)
        started = time.perf_counter()
        job = services.launch_job(None, services.JobRequest(
            name=name, cases=bench_cases(-(-n // per_case)), patient_model=config("patient"),
            sensemaker_model=config("sensemaker"), helper_model=config("helper"), traits=job_traits,
            literacies=job_literacies, max_concurrent_calls=in_flight,
        ), enqueue_tasks=False)
        ids = list(job.conversations.order_by("id").values_list("id", flat=True))
        job.conversations.filter(id__in=ids[n:]).delete()  # the grid rounds up to whole cases
        services.enqueue_conversations(ids[:n])
        while not job_progress(GenerationJob.objects.get(pk=job.pk))["is_finished"]:
            time.sleep(0.1)
        return job, time.perf_counter() - started

    worker = start_worker(worker_concurrency, REDIS_URL)
    try:
        # Untimed warm-up: the worker's first conversation pays one-off costs (connecting, importing
        # LiteLLM: seconds) that are not throughput.
        run(f"{label} (warm-up)", 1, traits[:1], literacies[:1])
        server.reset()
        job, elapsed = run(label, conversations, traits, literacies)
    finally:
        stop(worker)
    statuses = list(job.conversations.values_list("status", flat=True))
    return {"calls": server.hits, "seconds": round(elapsed, 2), "calls_per_second": round(server.hits / elapsed, 2),
            "max_in_flight_seen": server.max_in_flight, "conversations": len(statuses),
            "failed": statuses.count("failed")}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per LLM call at the server")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--traits", type=int, default=5, choices=range(1, 6),
                        help="dominant traits per case (x 2 literacy levels)")
    parser.add_argument("--conversations", type=int, default=160,
                        help="conversations in the timed job (default: 16 demo cases x 5 traits x 2 literacies)")
    args = parser.parse_args()

    import os

    os.environ["REDIS_URL"] = REDIS_URL
    fresh_database("mhsd_bench_generation")
    setup_django()
    from django.conf import settings
    from fakellm import FakeLLMServer

    from core.redis_client import get_redis
    from demo import loader as demo

    assert settings.REDIS_URL == REDIS_URL
    get_redis().flushdb()
    demo.seed_foundation()
    from generation.models import Trait

    traits = tuple(Trait.values[: args.traits])
    if args.conversations < 1:
        parser.error("--conversations must be at least 1")
    with FakeLLMServer(latency=args.latency) as server:
        # By default 160 conversations, each a sequence of about 60 dependent calls: five times more
        # conversations than calls in flight, so the pool stays full until the tail.
        parallel = run_job(server, conversations=args.conversations, traits=traits, literacies=("basic", "advanced"),
                           in_flight=args.in_flight, worker_concurrency=args.in_flight, label="parallel")
        baseline = run_job(server, conversations=1, traits=traits[:1], literacies=("basic",), in_flight=1,
                           worker_concurrency=1, label="one call at a time")
    result = throughput_summary("generation_throughput", latency=args.latency, in_flight=args.in_flight,
                                parallel=parallel, baseline=baseline)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
