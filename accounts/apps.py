from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from . import checks, signals  # noqa: F401  (registers the SSO check, connects the audit receivers)
