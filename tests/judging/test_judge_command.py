"""`manage.py judge`, mirroring `manage.py generate`: --inline in this process, --wait following a real
worker, exit status 1 when a judge call failed, clear errors for bad arguments."""
import re

import pytest
from django.core.management import CommandError, call_command

from judging.models import JudgeRun
from tests.worker_support import worker_thread

from .helpers import campaign_of, http_judge, simulator_judge

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


def test_judge_inline_with_the_simulator_judge(capsys):
    campaign = campaign_of(2)
    simulator_judge()
    call_command("judge", "--campaign", str(campaign.pk), "--judge", "Simulator judge", "--samples", "3", "--inline")
    out = capsys.readouterr().out
    assert "6 judge calls queued. [simulated judge" in out and "[100%]" in out and "done 6 failed 0" in out
    run = JudgeRun.objects.get()
    assert run.status == "done" and run.samples == 3 and run.items.filter(scores__isnull=False).distinct().count() == 6


def test_judge_wait_follows_a_real_worker_and_exits_1_when_a_call_failed(fake_llm, capsys):
    campaign = campaign_of(2)
    judge = http_judge(fake_llm)
    fake_llm.latency = 0.05
    fake_llm.push_faults(*["500"] * 4)  # the first call fails on every attempt of the retry layer
    with worker_thread(concurrency=1):
        with pytest.raises(SystemExit) as exc:
            call_command("judge", "--campaign", str(campaign.pk), "--judge", judge.name, "--max-concurrent-calls", "1",
                         "--wait", "--poll", "0.1")
    out, err = capsys.readouterr()
    assert exc.value.code == 1
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert re.match(r"\[100%\] queued 0 running 0 done 1 failed 1", lines[-1])
    assert "finished: Finished with failures." in out and "gave up after 4 attempts" in err


def test_bad_arguments_are_refused_with_a_clear_error():
    campaign = campaign_of(1)
    with pytest.raises(CommandError, match="No model configuration named 'Nobody'"):
        call_command("judge", "--campaign", str(campaign.pk), "--judge", "Nobody")
    simulator_judge()
    with pytest.raises(CommandError, match="Samples per conversation must be between 1 and 20"):
        call_command("judge", "--campaign", str(campaign.pk), "--judge", "Simulator judge", "--samples", "0")
    with pytest.raises(CommandError, match="No campaign 999999"):
        call_command("judge", "--campaign", "999999", "--judge", "Simulator judge")
    assert not JudgeRun.objects.exists()
