"""The provider connection form, shared by the Connections page and the Django admin. The API key field is
write-only: it never renders a value, and leaving it empty on an edit keeps the stored key."""

from django import forms
from django.core.exceptions import ValidationError

from usage.collectors import SUPPORTED_PROVIDERS
from usage.models import Provider, ProviderConnection
from usage.services.connections import schedule_validate


class ProviderConnectionForm(forms.ModelForm):
    api_key = forms.CharField(
        label="Admin API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the saved key.",
    )
    base_url = forms.URLField(
        label="Base URL",
        required=False,
        assume_scheme="https",
        help_text="Empty = the provider's own API. Override for a proxy or a test server.",
    )

    class Meta:
        model = ProviderConnection
        fields = ["provider", "name", "api_key", "base_url", "schedule", "restatement_days", "enabled"]
        help_texts = {
            "schedule": "Cron: minute hour day-of-month month day-of-week (org time zone). Default hourly.",
            "restatement_days": "Each run re-pulls this many days before the last success (late data).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [
            (value, label) for value, label in Provider.choices if value in SUPPORTED_PROVIDERS
        ]
        if not self.instance.pk:
            self.fields["api_key"].required = True
            self.fields["api_key"].help_text = "Stored encrypted and never shown again."

    def clean_schedule(self) -> str:
        try:
            return schedule_validate(self.cleaned_data.get("schedule") or "")
        except ValidationError as error:
            raise ValidationError(error.message_dict["schedule"]) from None
