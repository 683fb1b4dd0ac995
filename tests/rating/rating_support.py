"""Builders shared by the rating tests."""
from accounts.roles import Role
from tests.factories import make_campaign, make_conversation, make_job, make_user


def build_campaign(n_items=6, n_raters=3, k=2, lease_minutes=60, **extra):
    """A campaign of `n_items` finished conversations (one job) and `n_raters` raters."""
    job = make_job()
    raters = [make_user(Role.RATER) for _ in range(n_raters)]
    conversations = [make_conversation(job=job, n_messages=6) for _ in range(n_items)]
    campaign = make_campaign(raters=raters, conversations=conversations, k=k, lease_minutes=lease_minutes, **extra)
    return campaign, raters


def full_values(campaign) -> dict:
    """A complete, valid set of form values for every rated axis of the campaign's rubric."""
    data = {}
    for axis in campaign.rubric.axes.all():
        if axis.is_rated:
            data[f"value__{axis.key}"] = str(axis.allowed_values()[-1])
    return data
