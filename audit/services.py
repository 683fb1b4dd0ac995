from .models import AuditEvent


def record(actor, action: str, obj, **data) -> AuditEvent:
    """Append an audit event for `obj` (a model instance). `data` holds e.g. old= and new= values."""
    return record_named(actor, action, obj._meta.label_lower, obj.pk, **data)


def record_named(actor, action: str, object_type: str, object_id, **data) -> AuditEvent:
    """Append an audit event about something that is not one model row (e.g. a locked-out username,
    which need not exist as an account)."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        data=data,
    )
