"""The hook the apps above rating register to hear that a campaign's ratings changed.

Rating may not import the apps that read its ratings (results recomputes agreement from them), so
they register here, in their AppConfig.ready(), and rating tells them after its transaction commits.
"""
from core.events import Event

_ratings_changed = Event("ratings_changed")

# on_ratings_changed(listener): listener(campaign_id) runs once a submission or revision has committed.
on_ratings_changed = _ratings_changed.connect
ratings_changed = _ratings_changed.send
