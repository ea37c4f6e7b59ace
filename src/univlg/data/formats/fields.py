"""Field parsing shared by the annotation readers: every failure names the file, the row and the field.

A reader builds a :class:`Where` for each row (``Where(path, "line", 12)`` for CSV, ``Where(path, "item", 3)``
for JSON lists) and passes it to the ``as_*`` helpers, which raise :class:`~univlg.errors.FormatError` with a
message such as ``sr3d.csv: line 12: field 'target_id': expected an integer, got 'abc'``.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from univlg.errors import FormatError

TRUE_STRINGS = {"true", "1", "yes"}
FALSE_STRINGS = {"false", "0", "no"}


@dataclass(frozen=True)
class Where:
    """Location of one record: the file, the unit ("line", "item", "ref") and its number or key."""

    path: Path | str
    unit: str = "item"
    index: int | str = 0

    def error(self, field: str | None, problem: str) -> FormatError:
        """A :class:`FormatError` naming this location, the field (if any) and the problem."""
        head = f"{self.path}: {self.unit} {self.index}"
        return FormatError(f"{head}: field {field!r}: {problem}" if field else f"{head}: {problem}")


def require(row: Mapping[str, Any], field: str, where: Where) -> Any:
    """``row[field]``; a missing key, None or an empty CSV cell is an error."""
    if not isinstance(row, Mapping):
        raise where.error(None, f"expected an object/row, got {type(row).__name__}")
    value = row.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise where.error(field, "missing")
    return value


def as_str(value: Any, where: Where, field: str, allow_empty: bool = False) -> str:
    """A string field; by default it must hold a non-blank text."""
    if not isinstance(value, str):
        raise where.error(field, f"expected a string, got {type(value).__name__} {value!r}")
    if not allow_empty and not value.strip():
        raise where.error(field, "empty")
    return value


def as_int(value: Any, where: Where, field: str, minimum: int | None = None) -> int:
    """An integer field given as int or decimal text (``"12"``); bools and fractions are refused."""
    if isinstance(value, bool):
        raise where.error(field, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        raise where.error(field, f"expected an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise where.error(field, f"expected an integer >= {minimum}, got {number}")
    return number


def as_float(value: Any, where: Where, field: str) -> float:
    """A finite number given as int, float or text."""
    if isinstance(value, bool):
        raise where.error(field, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise where.error(field, f"expected a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise where.error(field, f"expected a finite number, got {value!r}")
    return number


def as_bool(value: Any, where: Where, field: str) -> bool:
    """A boolean given as bool, 0/1 or text (``True``/``false``/``1``/``no``...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_STRINGS:
            return True
        if text in FALSE_STRINGS:
            return False
    raise where.error(field, f"expected a boolean, got {value!r}")


def as_literal(value: Any, where: Where, field: str) -> Any:
    """A Python literal stored as text in a CSV cell (``"[1, 2]"``, ``"['a', 'b']"``); non-strings pass through."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise where.error(field, f"not a valid literal: {value[:80]!r}") from None


def as_list(
    value: Any, where: Where, field: str, item: Callable[[Any, Where, str], Any], from_text: bool = False
) -> list:
    """A list whose items each pass ``item(value, where, field)``; ``from_text`` also accepts its literal text
    (a CSV cell such as ``"[3, 7]"``)."""
    parsed = as_literal(value, where, field) if from_text else value
    if not isinstance(parsed, (list, tuple)):
        raise where.error(field, f"expected a list, got {type(parsed).__name__} {value!r:.80}")
    return [item(v, where, f"{field}[{i}]") for i, v in enumerate(parsed)]


def as_int_list(value: Any, where: Where, field: str, minimum: int | None = 0, from_text: bool = False) -> list[int]:
    """A list of integers (``from_text``: or its literal text such as ``"[3, 7]"``)."""
    return as_list(value, where, field, lambda v, w, f: as_int(v, w, f, minimum), from_text)


def as_str_list(value: Any, where: Where, field: str, from_text: bool = False) -> list[str]:
    """A list of strings, items may be empty (``from_text``: or its literal text such as ``"['a', 'b']"``)."""
    return as_list(value, where, field, lambda v, w, f: as_str(v, w, f, allow_empty=True), from_text)


# ----------------------------------------------------------------------------------------------- files


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing file raises FileNotFoundError, malformed JSON a FormatError with its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise FormatError(f"{path}: line {error.lineno}: invalid JSON ({error.msg})") from None
    except UnicodeDecodeError as error:
        raise FormatError(f"{path}: not UTF-8 text ({error.reason})") from None


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as UTF-8 JSON, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1)


def json_list(data: Any, path: str | Path, key: str | None = None) -> list:
    """The list at the top of a JSON document (or under ``key``); anything else is a FormatError."""
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise FormatError(f"{path}: expected an object with a {key!r} list")
        data = data[key]
    if not isinstance(data, list):
        raise FormatError(f"{path}: expected a JSON list{f' under {key!r}' if key else ''}, got {type(data).__name__}")
    return data


def iter_csv_rows(path: str | Path, required: tuple[str, ...]) -> Iterator[tuple[Where, dict[str, str]]]:
    """Rows of a CSV file with a header, as ``(Where(path, "line", n), row)``; checks the header first.

    ``n`` is the file line on which the row ends (the header is line 1), so a row with a multi-line quoted cell
    is reported by its last line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [name for name in required if name not in header]
        if missing:
            raise FormatError(f"{path}: line 1: missing column(s) {missing}; header has {header}")
        for row in reader:
            where = Where(path, "line", reader.line_num)
            if None in row:
                raise where.error(None, f"{len(header) + len(row[None])} cells but the header has {len(header)}")
            if any(value is None for value in row.values()):
                raise where.error(None, f"fewer cells than the {len(header)} header columns")
            yield where, row


def write_csv(path: str | Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts over ``columns``; missing cells empty) as a CSV file with a header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
