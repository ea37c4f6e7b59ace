"""UniVLG: unified 2D and 3D vision-language grounding, question answering and instance segmentation.

The public API is imported lazily so that ``import univlg`` stays cheap::

    from univlg import UniVLG, load_scene
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "UniVLG": "univlg.model.univlg",
    "load_scene": "univlg.data.scene",
    "Scene": "univlg.data.scene",
}

__all__ = ["UniVLG", "load_scene", "Scene", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'univlg' has no attribute {name!r}")
