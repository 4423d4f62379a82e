from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage data"

    def ready(self):
        from usage import audit  # connects the sign-in receivers

        audit.register_models()
        from usage.directory import directory_signals_connect

        directory_signals_connect()
        from usage import checks  # noqa: F401  (registers the system checks)
