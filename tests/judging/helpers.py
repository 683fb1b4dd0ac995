"""Conversations worth judging, judge model configurations and launching runs, for the judging tests."""
from generation.models import Message, ModelConfig
from judging import services
from rating.rubric_files import default_rubric
from tests.factories import make_campaign, make_case, make_conversation

# A short but realistic exchange: the assistant names the ground truth, talks about risk,
# consequences and what helps, and closes the conversation.
DIALOGUE = [
    ("patient", "I have felt low for two months and I sleep badly."),
    ("sensemaker", "Thank you for telling me. How has this been affecting your work?"),
    ("patient", "I can't concentrate and I stopped seeing friends."),
    ("sensemaker", "Based on what you've told me, the most likely explanation is major depressive disorder. "
                   "It is common, but left alone it can get worse and affect your daily life."),
    ("patient", "What can I do?"),
    ("sensemaker", "One thing that may help is a regular sleep routine; therapy is effective and many people "
                   "improve with the right support. Would you be open to setting one small goal?"),
    ("patient", "Yes, I think so."),
    ("sensemaker", "Your feelings are valid. Take care, and reach out again whenever you need to."),
]


def judged_conversation(dialogue=DIALOGUE, **extra):
    conv = make_conversation(case=make_case(), n_messages=0, **extra)
    Message.objects.bulk_create([Message(conversation=conv, index=i, role=role, stage=min(6, 1 + i // 2), text=text)
                                 for i, (role, text) in enumerate(dialogue)])
    return conv


def campaign_of(n=2):
    return make_campaign(conversations=[judged_conversation() for _ in range(n)], status="closed")


def http_judge(server, name="judge-under-test"):
    return ModelConfig.objects.create(name=name, model=f"openai/{name}", api_base=server.base_url,
                                      api_key_env="FAKE_JUDGE_API_KEY", temperature=0.7)


def simulator_judge(name="Simulator judge"):
    return ModelConfig.objects.create(name=name, model="simulator/judge", temperature=0.7)


def launch(judge, campaign, actor=None, enqueue_tasks=True, **extra):
    return services.launch_run(actor, services.JudgeRequest(judge_model=judge, campaign=campaign, **extra),
                               enqueue_tasks=enqueue_tasks)


def rubric_axes_judged():
    from judging.prompts import judged_axes

    return [a.key for a in judged_axes(default_rubric())]
