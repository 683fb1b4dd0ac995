"""Celery application: one worker command runs generation and agreement recomputation."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhsd_platform.settings")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

app = Celery("mhsd_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
