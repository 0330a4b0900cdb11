"""The typed user-facing errors: one line on the CLI and in the app, never a stack trace.

Defined here once; hrpo.config, hrpo.embedded (and hrpo.models) and hrpo.checkpoint import them, so
`from hrpo.config import ConfigError` and the like name these same classes.  Imports nothing.
Test: pytest tests/test_imports.py tests/test_reliability_inputs.py
"""


class ConfigError(ValueError):
    """A config value is out of range; the message names the field."""


class TrainingError(RuntimeError):
    """Training cannot go on (the message says why and where the last good checkpoint is)."""


class ModelSpecError(ValueError):
    """The model spec names nothing that can be loaded."""


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupted or made for another base model."""


class DiskFullError(CheckpointError):
    """Writing a checkpoint or an export failed for lack of space (or another failed write)."""


class TraceFileError(ValueError):
    """A trace file (hrpo/trace_file.py) that cannot be read; the message says what is wrong with it."""
