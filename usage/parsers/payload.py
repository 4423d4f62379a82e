"""Opening a stored export: transparent gzip/zip with a zip-bomb guard, limits on line length and blank-line runs
(so a pathological file is refused quickly and in bounded memory), and text decoding that never produces mojibake
(UTF-8, UTF-8 with BOM, UTF-16 with BOM, Shift-JIS when the bytes say so, else Windows-1252/Latin-1)."""

import codecs
import gzip
import io
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO

from .base import ParseError

SAMPLE_BYTES = 256 * 1024
ARCHIVE_SUFFIXES = (".zip", ".gz", ".gzip", ".tar", ".tgz", ".7z", ".bz2", ".xz", ".rar")
# Containers we do not open, by their magic bytes (tar: "ustar" at offset 257), named in the refusal.
UNSUPPORTED_MAGIC = (
    (b"BZh", "bz2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"Rar!\x1a\x07", "RAR"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
)


def refuse_unsupported_container(head: bytes) -> None:
    kind = next((name for magic, name in UNSUPPORTED_MAGIC if head.startswith(magic)), None)
    if kind is None and head[257:262] == b"ustar" and b"\x00" in head[:257]:  # a tar header, not text
        kind = "tar"
    if kind:
        raise ParseError(f"{kind} files are not supported: extract the export, or compress it with gzip or zip")


class LineGuard(io.RawIOBase):
    """Reads through `inner` and refuses a line longer than `max_line` bytes or more than `max_blank` blank lines
    in a row, as soon as it passes: a 1 GiB line would otherwise be held whole by the text reader, and a file of
    blank lines would keep a worker busy for minutes. Checked per read chunk, so a normal file costs a few
    byte searches per 256 KiB."""

    def __init__(self, inner: BinaryIO, *, max_line: int, max_blank: int):
        self.inner, self.max_line, self.max_blank = inner, max_line, max_blank
        self.line_length = 0  # bytes of the line still open at the end of the last chunk
        self.blank_run = 0  # newlines in a row with nothing between them, up to the end of the last chunk
        self.line = 1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        if not data:
            return 0
        first_newline = data.find(b"\n")
        if first_newline < 0:
            self.line_length += len(data)
        else:
            self._check_line(self.line_length + first_newline)
            self.line_length = len(data) - data.rfind(b"\n") - 1
        self._check_line(self.line_length)
        content_start = len(data) - len(data.lstrip(b"\r\n"))
        if content_start == len(data):  # newlines only
            self.blank_run += data.count(b"\n")
        else:
            self.blank_run += data.count(b"\n", 0, content_start)
            self._check_blank()
            self.blank_run = data.count(b"\n", len(data.rstrip(b"\r\n")))
        self._check_blank()
        self.line += data.count(b"\n")
        buffer[: len(data)] = data
        return len(data)

    def _check_line(self, length: int) -> None:
        if length > self.max_line:
            raise ParseError(
                f"a line is longer than {self.max_line:,} bytes (no export has such lines; the file is damaged or "
                "not an export)",
                self.line,
            )

    def _check_blank(self) -> None:
        # A run of n newlines is n - 1 blank lines between two lines.
        if self.blank_run - 1 > self.max_blank:
            raise ParseError(
                f"more than {self.max_blank:,} blank lines in a row (the file is damaged or not an export)", self.line
            )


class LimitedReader(io.RawIOBase):
    """Reads through `inner` and fails once more than `limit` bytes come out (decompression bombs)."""

    def __init__(self, inner: BinaryIO, limit: int):
        self.inner, self.limit, self.count = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.inner.read(len(buffer))
        except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as error:
            # A truncated or corrupt gzip / zip member (bad CRC, cut-off stream).
            raise ParseError(f"damaged compressed file ({error})") from None
        self.count += len(data)
        if self.count > self.limit:
            raise ParseError(f"decompressed size exceeds the limit of {self.limit:,} bytes (possible zip bomb)")
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def open_binary(path: str, *, max_decompressed: int) -> Iterator[BinaryIO]:
    """The export's bytes, decompressed if it is gzip or a single-file zip."""
    with open(path, "rb") as raw:
        head = raw.read(512)
        magic = head[:4]
        raw.seek(0)
        refuse_unsupported_container(head)
        if magic[:2] == b"\x1f\x8b":
            with gzip.open(raw) as inner:
                yield io.BufferedReader(LimitedReader(inner, max_decompressed))
            return
        if magic == b"PK\x03\x04":
            try:
                archive = zipfile.ZipFile(raw)
            except zipfile.BadZipFile as error:
                raise ParseError(f"damaged zip archive: {error}") from None
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1:
                raise ParseError(f"a zip must hold exactly one export file; this one holds {len(members)}")
            member = members[0]
            if member.filename.lower().endswith(ARCHIVE_SUFFIXES):
                raise ParseError(f"nested archives are not accepted ({member.filename} inside the zip)")
            if member.file_size > max_decompressed:
                raise ParseError(
                    f"decompressed size exceeds the limit of {max_decompressed:,} bytes (possible zip bomb)"
                )
            try:
                inner = archive.open(member)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error, OSError) as error:
                # Encrypted members, unsupported compression methods, damaged headers.
                raise ParseError(f"cannot open {member.filename} in the zip ({error})") from None
            with inner:
                yield io.BufferedReader(LimitedReader(inner, max_decompressed))
            return
        yield raw


def detect_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] != 0:
        return "utf-16-le"
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] != 0:
        return "utf-16-be"
    if b"\x00" in head:
        raise ParseError("binary data, not a text export (found NUL bytes)")
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        # A cut in the middle of a multi-byte character at the end of the sample is still UTF-8.
        if error.start >= len(head) - 3 and error.reason == "unexpected end of data":
            return "utf-8"
    if _looks_like_shift_jis(head):
        return "cp932"
    # Not UTF-8: Windows-1252 is what spreadsheet tools write; reject bytes it leaves undefined.
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        raise ParseError("unreadable text encoding: neither UTF-8, UTF-16 nor Windows-1252/Latin-1") from None
    return "cp1252"


# Shift-JIS lead bytes of kana and the common kanji (0x81–0x9F); in Windows-1252 these are rare punctuation.
_SHIFT_JIS_LEAD = re.compile(rb"[\x81-\x9f][\x40-\x7e\x80-\xfc]")


def _looks_like_shift_jis(head: bytes) -> bool:
    """Japanese Excel writes CSV in Shift-JIS (Windows code page 932). Read as Windows-1252 its names would be
    stored garbled, so it is recognised: the bytes decode as cp932 and use its kana/kanji lead bytes."""
    if not _SHIFT_JIS_LEAD.search(head):
        return False
    try:
        head.decode("cp932")
    except UnicodeDecodeError as error:
        # A sample cut inside a two-byte character still counts.
        if not (error.start >= len(head) - 1 and error.reason in ("incomplete multibyte sequence", "truncated data")):
            return False
    return True


PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 10_000
PARQUET_SPOOL_IN_MEMORY_BYTES = 16 * 1024 * 1024
# The defaults of settings.TOKENBOARD_MAX_LINE_BYTES / TOKENBOARD_MAX_BLANK_LINES (the pipeline passes those).
DEFAULT_MAX_LINE = 32 * 1024 * 1024
DEFAULT_MAX_BLANK = 100_000


class ParquetText(io.TextIOBase):
    """A Parquet file read as CSV text, batch by batch, so every CSV parser reads Parquet exports too.
    Map, struct and list cells (CUR 2.0 `product`, `resource_tags`) become JSON text, as in CSV exports."""

    def __init__(self, binary: BinaryIO, *, max_decompressed: int):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        if not binary.seekable():
            # A zip member: Parquet needs random access to read its footer. Copied to a temporary file (in
            # memory only while small), so a large zipped Parquet export never sits whole in the worker's memory.
            spooled = tempfile.SpooledTemporaryFile(max_size=PARQUET_SPOOL_IN_MEMORY_BYTES)
            shutil.copyfileobj(binary, spooled, 1024 * 1024)
            spooled.seek(0)
            binary = spooled
        try:
            self._file = pq.ParquetFile(binary)
            self._batches = self._file.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        except (pa.ArrowException, OSError, ValueError, IndexError) as error:
            raise ParseError(f"unreadable Parquet file ({error})") from None
        self._names = self._file.schema_arrow.names
        self._pending = self._csv_lines([self._names])
        self._done = False

    @staticmethod
    def _csv_lines(rows: list[list]) -> str:
        import csv

        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()

    @staticmethod
    def _cell(value: object) -> object:
        import json
        from datetime import datetime

        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, list):
            # pyarrow gives a map as a list of (key, value) pairs
            if all(isinstance(item, tuple) and len(item) == 2 for item in value):
                return json.dumps({str(k): v for k, v in value}, default=str)
            return json.dumps(value, default=str)
        if isinstance(value, dict):
            return json.dumps(value, default=str)
        return value

    def _fill(self) -> bool:
        if self._done:
            return False
        try:
            batch = next(self._batches)
        except StopIteration:
            self._done = True
            return False
        except (self._pa.ArrowException, OSError, ValueError, IndexError) as error:
            raise ParseError(f"unreadable Parquet file ({error})") from None
        columns = [column.to_pylist() for column in batch.columns]
        rows = [[self._cell(column[i]) for column in columns] for i in range(batch.num_rows)]
        self._pending += self._csv_lines(rows)
        return True

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            while self._fill():
                pass
            out, self._pending = self._pending, ""
            return out
        while len(self._pending) < size and self._fill():
            pass
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def readline(self, size: int | None = -1) -> str:
        while "\n" not in self._pending and self._fill():
            pass
        end = self._pending.find("\n")
        end = len(self._pending) if end < 0 else end + 1
        out, self._pending = self._pending[:end], self._pending[end:]
        return out

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __iter__(self):
        return self


@contextmanager
def open_guarded(
    path: str, *, max_decompressed: int, max_line: int = DEFAULT_MAX_LINE, max_blank: int = DEFAULT_MAX_BLANK
) -> Iterator[tuple[BinaryIO, str]]:
    """The export's bytes as text is read from them, and their encoding: decompressed, with lines and blank runs
    limited (LineGuard). A Parquet file's bytes come as they are, with the encoding "parquet"."""
    with open_binary(path, max_decompressed=max_decompressed) as binary:
        buffered = io.BufferedReader(binary, buffer_size=SAMPLE_BYTES)  # type: ignore[arg-type]
        head = buffered.peek(SAMPLE_BYTES)[:SAMPLE_BYTES]
        if head.startswith(PARQUET_MAGIC):
            yield buffered, "parquet"
            return
        refuse_unsupported_container(head)  # e.g. a tar inside a gzip
        encoding = detect_encoding(head)
        yield io.BufferedReader(LineGuard(buffered, max_line=max_line, max_blank=max_blank), SAMPLE_BYTES), encoding


@contextmanager
def open_text(
    path: str, *, max_decompressed: int, max_line: int = DEFAULT_MAX_LINE, max_blank: int = DEFAULT_MAX_BLANK
) -> Iterator[tuple[IO[str], str]]:
    """The export as text, and the encoding it was read with. Parquet comes out as CSV text."""
    limits = {"max_decompressed": max_decompressed, "max_line": max_line, "max_blank": max_blank}
    with open_guarded(path, **limits) as (binary, encoding):
        if encoding == "parquet":
            yield ParquetText(binary, max_decompressed=max_decompressed), "parquet"
            return
        text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
        try:
            yield text, encoding
        except UnicodeDecodeError as error:
            raise ParseError(f"the file is not valid {encoding} past its start ({error.reason})") from None


def read_sample(path: str, *, max_decompressed: int) -> str:
    with open_text(path, max_decompressed=max_decompressed) as (text, _):
        return text.read(64 * 1024)
