"""Loading pickles that may come from anywhere (RefCOCO's ``refs(unc).p``) without running their code.

A pickle can name any importable callable and call it while loading, so ``pickle.load`` on a downloaded file
is arbitrary code execution. :func:`load_plain_pickle` refuses every global lookup (``find_class``) and every
persistent id: only the opcodes for plain data remain (dicts, lists, tuples, strings, bytes, numbers, bools,
None), which is all the RefCOCO files hold. Python 2 ``str`` values decode as latin-1.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from univlg.errors import FormatError


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that admits no class, function or persistent object."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        raise FormatError(
            f"{self._source}: refused to load global {module}.{name}: only plain containers and numbers are allowed"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise FormatError(f"{self._source}: refused persistent object {pid!r:.60}")


def load_plain_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` admitting only plain data: dicts, lists, tuples, sets, str/bytes, numbers, bools, None.

    Raises FormatError when the file references any global (a class or callable) or is not a valid pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with path.open("rb") as handle:
        try:
            return _PlainDataUnpickler(handle, str(path)).load()
        except FormatError:
            raise
        except Exception as error:  # corrupted or truncated pickles raise many types
            raise FormatError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None
