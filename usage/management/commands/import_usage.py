from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from usage.models import ImportBatch, ImportSource, ImportStatus
from usage.parsers.registry import FORMATS, UnknownFormat, format_get
from usage.services.imports import (
    ImportRejected,
    import_batch_create,
    import_batch_process,
    import_batch_queue,
    import_error_text,
    import_summary,
    imports_release_stuck,
)
from usage.services.standings import standings_refresh


class Command(BaseCommand):
    help = "Store usage export files and queue them for the worker, or (--wait) import them now."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", help="export files (any supported format; gzip/zip accepted)")
        parser.add_argument("--format", default="", help=f"skip detection; one of: {', '.join(sorted(FORMATS))}")
        parser.add_argument("--wait", action="store_true", help="process in the foreground (needs no worker)")
        parser.add_argument("--good-rows", action="store_true", help="import the good rows of a file with bad rows")
        parser.add_argument(
            "--requeue",
            action="store_true",
            help="re-send imports left queued (e.g. the broker was down at upload time) and imports stuck running "
            "(no heartbeat: their worker was killed); with --wait, run them here",
        )

    def handle(self, *args, files, format, wait, good_rows, requeue=False, **options):
        requeue_failed = self.requeue(wait=wait) if requeue else 0
        if requeue_failed:
            self.stderr.write(f"{requeue_failed} re-processed import(s) failed")
        if not files:
            if not requeue:
                raise CommandError("give one or more export files, or --requeue")
            if requeue_failed:
                raise CommandError(f"{requeue_failed} queued import(s) failed")
            return
        if format:
            try:
                format_get(format)  # also accepts generic_csv:<saved column mapping>
            except UnknownFormat:
                raise CommandError(
                    f"unknown --format {format!r}; known formats: {', '.join(sorted(FORMATS))}"
                ) from None
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
                    self.stderr.write(f"  {path.name}: {import_error_text(error)}")
            else:
                self.stdout.write(summary)
        if wait:  # the standings show what was just imported before the command returns
            standings_refresh()
        if failed or requeue_failed:
            raise CommandError(f"{failed} of {len(paths)} file(s) rejected; {requeue_failed} queued import(s) failed")

    def requeue(self, *, wait: bool) -> int:
        """Re-send every import still queued, oldest first (or with --wait process them here). Safe if a
        message is in fact still on its way: only one run can claim a queued import. Returns how many of
        the imports processed here failed."""
        for stuck in imports_release_stuck():
            self.stdout.write(f"import #{stuck.pk} {stuck.original_name} was stuck running; queued again")
        queued = ImportBatch.objects.filter(status=ImportStatus.QUEUED).order_by("created_at", "pk")
        count = failed = 0
        for batch in queued:
            count += 1
            if wait:
                processed = import_batch_process(batch.pk)
                if processed is None:
                    continue
                if processed.status == ImportStatus.FAILED:
                    failed += 1
                    self.stderr.write(import_summary(processed))
                else:
                    self.stdout.write(import_summary(processed))
                continue
            import_batch_queue(batch)
            self.stdout.write(f"re-sent import #{batch.pk} {batch.original_name}")
        if wait and count:
            standings_refresh()
        self.stdout.write(f"{count} queued import(s) {'processed' if wait else 're-sent'}")
        return failed
