from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from usage.services.org import OrgImportError, org_import


class Command(BaseCommand):
    help = "Import people, the team tree, managers and identities from an org CSV (email,name,team,…)."

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise CommandError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
        try:
            result = org_import(text=text, file_name=path.name)
        except OrgImportError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"{path.name}: {result.people_created} people created, {result.people_updated} updated, "
            f"{result.teams_created} teams created, {result.team_moves} team moves, {result.identities_linked} identities linked"
        )
