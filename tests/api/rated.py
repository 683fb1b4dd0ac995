"""Rate a campaign through the real rating services (assignment, drafts, submission), and read back the
truth independently through the ORM, for comparison with what the API and the exports say."""
import json
from statistics import mean, stdev

from rating import assignment as assigning
from rating import services as rating_services
from rating.models import Assignment, Campaign, Rating, SafetyFlag

# Text that CSV and JSON must carry intact: separators, quotes, newlines, non-ASCII.
TRICKY = 'Says "I\'m fine", then: a, b; c\nsecond line — naïve café ✓'

IMPORT_LINES = [
    {"external_id": "ext-1", "source": "clinic-bot", "model": "acme/bot-2", "condition": "anxiety",
     "ground_truth_diagnosis": "Generalised anxiety disorder", "metadata": {"site": "A", "score": 1.5, "tags": ["x"]},
     "messages": [
         {"role": "system", "content": "You are a careful assistant."},
         {"role": "user", "content": f"I worry all the time. {TRICKY}"},
         {"role": "assistant", "content": "That sounds exhausting. Tell me more about the worry.", "stage": 1},
         {"role": "user", "content": "It started in spring."},
         {"role": "assistant", "content": [{"type": "text", "text": "Generalised anxiety is likely."},
                                           {"type": "text", "text": "Let us talk about options."}], "stage": 3},
     ]},
    {"external_id": 42, "source": "clinic-bot", "model": "acme/bot-2", "is_simulated": True,
     "messages": [{"role": "user", "content": "Je dors mal — depuis des mois."},
                  {"role": "assistant", "content": "Understood. Persistent insomnia deserves attention."}]},
    {"messages": [{"role": "user", "content": "Hello?"},
                  {"role": "assistant", "content": "Hello. How can I help you today, considering everything?"}]},
]


def import_jsonl(api, lines, **params):
    body = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.post(f"/api/v1/conversations/import{'?' + query if query else ''}", data=body.encode(),
                    content_type="application/x-ndjson")


def score_for(axis, conversation_id: int, rater_index: int) -> int:
    values = axis.allowed_values()
    return values[(conversation_id * 7 + rater_index * 3 + axis.order) % len(values)]


def rate_everything(campaign: Campaign, raters, *, active_seconds=True) -> list[Assignment]:
    """The raters take turns (one conversation each per round) until nobody is given another."""
    done = []
    axes = [a for a in campaign.rubric.axes.all() if a.is_rated]
    active = list(enumerate(raters))
    while active:
        for r_index, rater in list(active):
            assignment = assigning.next_assignment(campaign, rater)
            if assignment is None:
                active.remove((r_index, rater))
                continue
            conv = assignment.item.conversation
            messages = list(conv.messages.order_by("index"))
            changes = rating_services.DraftChanges(
                values={a.key: str(score_for(a, conv.pk, r_index)) for a in axes},
                comments={axes[0].key: f"{TRICKY} #{conv.pk}/{r_index}", axes[-1].key: ""},
                overall_comment=f"Overall for {conv.pk} by {r_index}, with a comma, and \"quotes\"",
            )
            sensemaker = [m for m in messages if m.role == "sensemaker"]
            if sensemaker and r_index == 0:
                changes.notes[sensemaker[0].index] = "Too vague; see\nline two"
                changes.problematic[sensemaker[0].index] = True
            rating_services.submit_rating(assignment, rater, changes)
            if active_seconds:
                Assignment.objects.filter(pk=assignment.pk).update(active_seconds=60 + conv.pk % 17 + r_index)
            done.append(assignment)
    return done


def truth(campaign: Campaign) -> dict:
    """conversation id -> what an export must contain, read with the ORM (not the export's SQL)."""
    from tests.judging.judge_fixture import judge_truth

    judges = judge_truth(campaign)
    out = {}
    for item in campaign.items.select_related("conversation__persona", "conversation__case").order_by(
            "conversation_id"):
        conv = item.conversation
        ratings = []
        per_axis = {}
        for rating in (Rating.objects.filter(assignment__item=item, status=Rating.Status.SUBMITTED)
                       .select_related("assignment__rater", "rubric").order_by("id")):
            scores = sorted(rating.scores.select_related("axis"), key=lambda s: (s.axis.order, s.axis_id))
            for s in scores:
                if s.value is not None:
                    per_axis.setdefault(s.axis.key, []).append(s.value)
            ratings.append({
                "rating_id": rating.pk,
                "rater": rating.assignment.rater.pseudonym,
                "rubric_slug": rating.rubric.slug,
                "rubric_version": rating.rubric.version,
                "submitted_at": rating.submitted_at.isoformat(),
                "active_seconds": rating.assignment.active_seconds,
                "revision": rating.revision,
                "overall_comment": rating.overall_comment,
                "scores": [{"axis": s.axis.key, "value": s.value, "category": s.category, "comment": s.comment}
                           for s in scores],
                "message_notes": [
                    {"message_index": n.message.index, "problematic": n.problematic, "note": n.note}
                    for n in sorted(rating.message_notes.select_related("message"), key=lambda n: n.message.index)
                ],
            })
        order = {a.key: (a.order, a.pk) for a in campaign.rubric.axes.all()}
        aggregate = [
            {"axis": key, "mean": mean(vals), "sd": stdev(vals) if len(vals) > 1 else None, "n": len(vals)}
            for key, vals in sorted(per_axis.items(), key=lambda kv: order[kv[0]])
        ]
        persona = conv.persona
        out[conv.pk] = {
            "conversation_id": conv.pk,
            "campaign_id": campaign.pk,
            "source": conv.source,
            "source_label": conv.source_label,
            "external_id": conv.external_id,
            "status": conv.status,
            "is_simulated": conv.is_simulated,
            "job_id": conv.job_id,
            "job_name": conv.job.name if conv.job_id else None,
            "case_id": conv.case.external_id if conv.case_id else None,
            "ground_truth_diagnosis": conv.ground_truth_diagnosis,
            "condition": conv.condition,
            "persona": None if persona is None else {
                "trait": persona.trait, "literacy": persona.literacy, "intent": persona.intent, "goal": persona.goal},
            "models": {"sensemaker": conv.sensemaker_model, "patient": conv.patient_model, "helper": conv.helper_model},
            "prompt_version": conv.prompt_version,
            "seed": conv.seed,
            "smog_grade": conv.smog_grade,
            "sensemaker_message_count": conv.sensemaker_message_count,
            "created_at": conv.created_at.isoformat(),
            "finished_at": conv.finished_at.isoformat() if conv.finished_at else None,
            "is_gold": item.is_gold,
            "gold_scores": item.gold_scores,
            "provenance": conv.provenance,
            "messages": [
                {"index": m.index, "role": m.role, "stage": m.stage, "text": m.text, "smog_grade": m.smog_grade}
                for m in conv.messages.order_by("index")
            ],
            "n_raters": len(ratings),
            "ratings": ratings,
            "aggregate": aggregate,
            "safety_flags": [
                {"flag_id": f.pk, "campaign_id": f.campaign_id, "category": f.category, "status": f.status,
                 "reason": f.reason, "raised_by": f.raised_by.pseudonym, "created_at": f.created_at.isoformat(),
                 "message_index": f.message.index if f.message_id else None}
                for f in SafetyFlag.objects.filter(conversation=conv).select_related("raised_by", "message")
                .order_by("id")
            ],
            "judge_scores": judges.get(conv.pk, []),
        }
    return out
