from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from usage.auth import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for USERNAME and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--days", type=int, default=None, help="Lifetime (default and maximum: TOKENBOARD_API_TOKEN_MAX_DAYS)."
        )

    def handle(self, *args, username, name, days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        _, token = api_token_create(user=user, name=name, days=days)
        self.stdout.write(token)
