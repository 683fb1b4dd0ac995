"""Progress lines for commands that wait for a run (`generate --wait`, `judge --wait`)."""
import time
from collections.abc import Callable


def follow(write: Callable[[str], None], progress_of: Callable[[], dict], poll: float) -> dict:
    """Print one line per `poll` seconds until the run has nothing left to do; return the last progress."""
    while True:
        p = progress_of()
        c = p["counts"]
        eta = f", ETA {p['eta_seconds']:.0f} s" if p["eta_seconds"] is not None else ""
        write(
            f"[{p['percent']:3d}%] queued {c['queued']} running {c['running']} done {c['done']} "
            f"failed {c['failed']} cancelled {c['cancelled']} | {p['elapsed_seconds']:.0f} s{eta} | "
            f"{p['llm_calls']} calls, {p['prompt_tokens'] + p['completion_tokens']} tokens"
        )
        if p["is_finished"]:
            return p
        time.sleep(poll)
