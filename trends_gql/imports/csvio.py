"""The pipeline's CSV format: encodings, separators, header matching, row reading, writing."""

import codecs
import csv
import enum
import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from trends_gql.core.fields import FIELDS, REQUIRED, TREND_FIELDS, Text
from trends_gql.core.validation import FieldError, clean_trend

HEADERS = {f.name: f.header for f in TREND_FIELDS}
# Columns of the old service's own exports that carry no data of a record.
_IGNORED = {"id", "uploadedat", "updatedat", "fingerprint", ""}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 1 << 20
# Typed columns: a header cell never holds one of their values, a data row usually does.
_TYPED = tuple(f.name for f in TREND_FIELDS if not isinstance(f.rule, Text))
# Never through a symbolic link; a FIFO must not block the open; a device must not become a tty.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def normalise_header(name: str) -> str:
    """Header text ignoring case, spaces and punctuation."""
    return re.sub(r"[\W_]+", "", name).casefold()


_ALIASES = {
    normalise_header(name): f.name for f in TREND_FIELDS for name in (f.header, f.name, *f.aliases)
}


class CsvFormatError(ValueError):
    """The file as a whole cannot be read as trend records."""


def kind_of(mode: int) -> str:
    """What a file-system entry of this mode is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "of an unknown kind")


def open_regular(path: Path, encoding: str | None = None) -> IO[Any]:
    """Open a regular file to read (text with `encoding`), never through a symbolic link.

    The check is fstat on the open descriptor, so nothing can be swapped in after it;
    anything else raises CsvFormatError, and nothing of it is read.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CsvFormatError("the file is a symbolic link: links are not followed") from None
        if exc.errno == errno.ENXIO:
            raise CsvFormatError("the file is a socket, not a regular file: not read") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise CsvFormatError(f"the file is {kind_of(mode)}, not a regular file: not read")
    if encoding is None:
        return os.fdopen(fd, "rb")
    return os.fdopen(fd, encoding=encoding, newline="")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str | None
    message: str


class ParsedRow(NamedTuple):
    line: int
    values: dict[str, Any] | None
    errors: list[RowError]


def escape_cell(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (OWASP: prefix a quote)."""
    if value.lstrip("'").startswith(_FORMULA_START):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo escape_cell exactly."""
    if value.startswith("'") and value.lstrip("'").startswith(_FORMULA_START):
        return value[1:]
    return value


def detect_encoding(path: Path) -> str:
    """'utf-8-sig' when the whole file is UTF-8, else 'cp1252'; CsvFormatError for binary data."""
    with open_regular(path) as f:
        head = f.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise CsvFormatError("the file is UTF-16: save it as UTF-8")
        for encoding in ("utf-8-sig", "cp1252"):
            f.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            try:
                while chunk := f.read(_CHUNK):
                    if b"\x00" in chunk:
                        raise CsvFormatError(
                            "the file contains NUL bytes: it is not a CSV text file"
                        )
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
                return encoding
            except UnicodeDecodeError:
                continue
    raise CsvFormatError("the file is neither UTF-8 nor cp1252 text")


def _sniff_delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") >= first_line.count(",") else ","


@dataclass
class HeaderMap:
    fields: list[str | None]
    names: list[str]
    by_position: bool = False
    warnings: list[str] = field(default_factory=list)


def _reads_as_record(cells: list[str]) -> bool:
    """Whether ten cells, by position, are a trend record: a data row, not a header."""
    raw = dict(zip(FIELDS, cells, strict=True))
    _, errors = clean_trend(raw)
    if not errors:
        return True
    bad = {e.field for e in errors}
    return any(raw[f].strip() and f not in bad for f in _TYPED)


def map_header(cells: list[str]) -> HeaderMap:
    """Which field each column holds; CsvFormatError when the header cannot be used."""
    keys = [normalise_header(c) for c in cells]
    fields = [_ALIASES.get(k) for k in keys]
    expected = "; ".join(HEADERS.values())
    if not any(fields):
        if len(cells) == len(FIELDS) and _reads_as_record(cells):
            # A file claimed half-written leaves its rest in a file that starts with a record.
            raise CsvFormatError(
                "the first line is a trend record, not a header: the first line must be the "
                f"header ({expected}); a file written in parts must be written under a temporary "
                "name and renamed when complete"
            )
        if len(cells) == len(FIELDS):
            return HeaderMap(
                list(FIELDS),
                [HEADERS[f] for f in FIELDS],
                by_position=True,
                warnings=["header not recognised: the ten columns are read by position"],
            )
        raise CsvFormatError(
            f"header not recognised ({len(cells)} columns): the first line must be the header, "
            f"with the columns {expected}"
        )
    unknown = [
        c for c, k, f in zip(cells, keys, fields, strict=True) if f is None and k not in _IGNORED
    ]
    if unknown:
        raise CsvFormatError(
            "unknown column(s): "
            + ", ".join(repr(c) for c in unknown)
            + "; the header (the first line) may only name the columns "
            + expected
        )
    seen = [f for f in fields if f]
    duplicated = sorted({f for f in seen if seen.count(f) > 1})
    if duplicated:
        raise CsvFormatError("column(s) given twice: " + ", ".join(HEADERS[f] for f in duplicated))
    missing = [HEADERS[f] for f in REQUIRED if f not in seen]
    if missing:
        raise CsvFormatError("missing required column(s): " + ", ".join(missing))
    warnings = [f"column {HEADERS[f]!r} is absent: left empty" for f in FIELDS if f not in seen]
    names = [c.strip() for c in cells]
    return HeaderMap(fields, names, warnings=warnings)


class TrendCsvReader:
    """Reads a trend CSV file as a stream of validated rows with physical line numbers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.encoding = detect_encoding(self.path)
        with open_regular(self.path, self.encoding) as f:
            first_line = next((line for line in f if line.strip()), "")
        if not first_line:
            raise CsvFormatError("the file is empty")
        self.delimiter = _sniff_delimiter(first_line)
        self.header: HeaderMap | None = None

    @property
    def encoding_name(self) -> str:
        return "UTF-8" if self.encoding == "utf-8-sig" else "cp1252"

    def count_rows(self) -> int:
        """How many data rows the file has (records after the header that are not blank), in
        one fast pass without checks; 0 when the pass cannot tell (the import reports why)."""
        with open_regular(self.path, self.encoding) as f:
            try:
                rows = csv.reader(f, delimiter=self.delimiter)
                records = sum(1 for cells in rows if "".join(cells).strip())
            except csv.Error:
                return 0
        return max(records - 1, 0)

    def __iter__(self) -> Iterator[ParsedRow]:
        with open_regular(self.path, self.encoding) as f:
            reader = csv.reader(f, delimiter=self.delimiter, strict=True)
            try:
                cells: list[str] = []
                while not any(c.strip() for c in cells):
                    cells = next(reader)
            except csv.Error as exc:
                raise CsvFormatError(f"line {reader.line_num}: {exc}") from None
            self.header = header = map_header(cells)
            width = len(header.fields)
            columns = [(i, f) for i, f in enumerate(header.fields) if f]
            names = {f: header.names[i] for i, f in columns}
            end = reader.line_num
            rows = 0
            while True:
                start = end + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    raise CsvFormatError(f"line {start}: {exc}") from None
                end = reader.line_num
                if not "".join(cells).strip():
                    continue
                rows += 1
                if len(cells) != width:
                    msg = f"expected {width} columns, found {len(cells)}"
                    yield ParsedRow(start, None, [RowError(start, None, msg)])
                    continue
                # Only a cell starting with a quote can be an escaped formula.
                raw = {
                    f: unescape_cell(cell) if (cell := cells[i])[:1] == "'" else cell
                    for i, f in columns
                }
                values, errors = clean_trend(raw)
                if errors:
                    yield ParsedRow(start, None, [_row_error(start, e, names) for e in errors])
                else:
                    yield ParsedRow(start, values, [])
            if rows == 0:
                raise CsvFormatError("the file has a header but no data rows")


def _row_error(line: int, error: FieldError, names: Mapping[str, str]) -> RowError:
    return RowError(line, names.get(error.field, HEADERS[error.field]), error.message)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, str):
        return escape_cell(value)
    return str(value)


def write_csv(records: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    """Write records in the import format (re-importing them is a no-op); return the count."""
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADERS.values())
    count = 0
    for record in records:
        writer.writerow([_cell(record[f]) for f in FIELDS])
        count += 1
    return count
