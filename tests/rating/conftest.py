import pytest

from tests.rating.rating_support import build_campaign


@pytest.fixture
def small_campaign(db):
    return build_campaign()
