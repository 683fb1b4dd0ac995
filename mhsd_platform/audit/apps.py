from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "mhsd_platform.audit"
    label = "audit"
    verbose_name = "Audit trail"
