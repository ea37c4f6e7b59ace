"""The UniVLG model: ``build_model(cfg)``, ``UniVLG`` (forward, ground, save/from_pretrained), ``Predictions``."""

from univlg.model.predictions import Predictions, VisualFeatures, unit_targets
from univlg.model.univlg import UniVLG, build_model

__all__ = ["Predictions", "UniVLG", "VisualFeatures", "build_model", "unit_targets"]
