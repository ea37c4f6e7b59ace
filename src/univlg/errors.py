"""Exceptions the library raises on bad input; the CLI turns them into one-line messages."""


class UnivlgError(Exception):
    """Base class of every error that reports bad user input (files, formats, checkpoints, configs)."""


class SceneError(UnivlgError):
    """A scene folder cannot be read: the message names the file and the problem."""


class FormatError(UnivlgError):
    """An annotation file has a bad row or field: the message names the file, the row and the field."""


class CheckpointError(UnivlgError):
    """A checkpoint is missing, corrupted or does not fit the model it is loaded into."""


class ConfigError(UnivlgError):
    """A configuration file or override is malformed or names an unknown key."""


class DataError(UnivlgError):
    """The training data cannot produce what was asked of it (e.g. no usable sample after several draws)."""
