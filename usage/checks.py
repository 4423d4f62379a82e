"""System checks run by every manage.py command (check, migrate, runserver): settings that would make the
anomaly rules hold every day or none are refused here, with what is wrong."""

from django.conf import settings
from django.core.checks import Error, register

from usage.services.anomalies import anomaly_settings_problems


@register()
def anomaly_rules_check(app_configs, **kwargs) -> list[Error]:
    return [
        Error(f"TOKENBOARD_ANOMALY_RULES {problem}", hint="See docs/admin-guide.md, Anomaly review.", id="usage.E014")
        for problem in anomaly_settings_problems(settings.TOKENBOARD_ANOMALY_RULES)
    ]
