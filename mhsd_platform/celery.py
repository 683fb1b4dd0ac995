"""Celery application: one worker command runs generation and agreement recomputation."""
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhsd_platform.settings")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

app = Celery("mhsd_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _prepare_worker(**_):
    """A threads-pool worker runs dozens of LLM calls at once in one process, so a pause of the whole
    process stalls every call. LiteLLM is imported here, before the pool starts, rather than by the
    first task, and everything imported so far is then hidden from the garbage collector (gc.freeze):
    LiteLLM's price map and modules are hundreds of thousands of long-lived objects that every full
    collection would otherwise walk again, stopping all threads for 100-300 ms each time (measured with
    benchmarks/generation_throughput.py: 0.72 -> 0.81 of the in-flight limit)."""
    import gc

    from generation.medagent.litellm_setup import import_litellm

    import_litellm()
    gc.collect()
    gc.freeze()

