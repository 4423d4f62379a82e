from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from usage.models import ImportSource, ImportStatus
from usage.parsers.registry import FORMATS
from usage.services.imports import ImportRejected, import_batch_create, import_batch_process, import_summary


class Command(BaseCommand):
    help = "Store usage export files and queue them for the worker, or (--wait) import them now."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="export files (any supported format; gzip/zip accepted)")
        parser.add_argument("--format", default="", help=f"skip detection; one of: {', '.join(sorted(FORMATS))}")
        parser.add_argument("--wait", action="store_true", help="process in the foreground (needs no worker)")
        parser.add_argument("--good-rows", action="store_true", help="import the good rows of a file with bad rows")

    def handle(self, *args, files, format, wait, good_rows, **options):
        if format and format not in FORMATS:
            raise CommandError(f"unknown --format {format!r}; known formats: {', '.join(sorted(FORMATS))}")
        paths = [Path(name) for name in files]
        for path in paths:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        failed = 0
        for path in paths:
            try:
                with path.open("rb") as handle:
                    batch = import_batch_create(
                        file=handle,
                        name=path.name,
                        source=ImportSource.COMMAND,
                        requested_format=format,
                        import_good_rows=good_rows,
                        queue=not wait,
                    )
            except ImportRejected as error:
                self.stderr.write(str(error))
                failed += 1
                continue
            if not wait:
                self.stdout.write(f"queued import #{batch.pk} {path.name}")
                continue
            batch = import_batch_process(batch.pk)
            summary = import_summary(batch)
            if batch.status == ImportStatus.FAILED:
                failed += 1
                self.stderr.write(summary)
                for error in batch.errors[:20]:
                    self.stderr.write(f"  {path.name}: line {error['line']}: {error['reason']}")
            else:
                self.stdout.write(summary)
        if failed:
            raise CommandError(f"{failed} of {len(paths)} file(s) rejected")
