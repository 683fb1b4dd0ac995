from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mhsd_platform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from mhsd_platform import checks  # noqa: F401  (registers the deploy checks)
