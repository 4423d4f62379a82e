from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from usage.crypto import KeyDecryptionError, api_key_rotate
from usage.models import ProviderConnection


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored provider API key with the newest key in PROVIDER_KEY_ENCRYPTION_KEYS "
        "(put the new key first, keep the old ones after it, run this, then drop the old ones)."
    )

    def handle(self, *args, **options):
        rotated, unreadable = 0, []
        with transaction.atomic():
            for connection in ProviderConnection.objects.select_for_update().order_by("pk"):
                if not connection.encrypted_api_key:
                    continue
                try:
                    connection.encrypted_api_key = api_key_rotate(connection.encrypted_api_key)
                except KeyDecryptionError:
                    unreadable.append(connection.name)
                    continue
                connection.save(update_fields=["encrypted_api_key"])
                rotated += 1
        self.stdout.write(f"re-encrypted {rotated} provider API key(s) with the newest encryption key")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} key(s) could not be decrypted with any configured key and were left as they "
                f"were: {', '.join(unreadable)}. Enter those API keys again on the Connections page."
            )
