"""The judge through a real language model, offline: SmolLM2-135M served by llama.cpp (`make local-llm`).
A plumbing check of the same code path (prompt, LiteLLM, strict parser, bounded retries, storage), not
a judge worth its scores: a 135M model rarely writes the JSON the parser demands, so either outcome is
checked in full. Skipped when the server is not running."""
import pytest

from judging import services
from judging.models import JudgeItem
from tests.generation.test_local_llm import local_model  # noqa: F401 - the same skip-if-absent fixture

from .helpers import campaign_of, launch, rubric_axes_judged

pytestmark = [pytest.mark.local_llm, pytest.mark.django_db(transaction=True)]


def test_the_local_model_judges_through_the_same_code(local_model, settings):  # noqa: F811
    settings.JUDGE_PARSE_ATTEMPTS = 2
    run = launch(local_model, campaign_of(1), samples=2, seed=11, enqueue_tasks=False)
    outcomes = services.run_inline(run, threads=1)
    assert sum(outcomes.values()) == 2
    for item in JudgeItem.objects.filter(run=run):
        print(f"\nlocal judge sample {item.sample_index}: {item.status}, {item.calls} calls, "
              f"{item.prompt_tokens} + {item.completion_tokens} tokens; {item.failure_reason[:200]}")
        assert item.prompt_tokens > 0 and item.completion_tokens > 0, "real tokens from the server"
        assert item.raw_reply.strip(), "the model's last reply is kept as received"
        if item.status == "done":
            assert sorted(item.scores.values_list("axis__key", flat=True)) == sorted(rubric_axes_judged())
        else:
            assert item.status == "failed" and not item.scores.exists()
            assert "no usable reply after 2 attempts" in item.failure_reason and item.calls == 2
    assert run.model_snapshot["api_base"] == local_model.api_base
