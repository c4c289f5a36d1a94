"""The project's exceptions for user mistakes (bad config, missing data, bad checkpoint).

Each one also subclasses the matching builtin, so ``except ValueError`` / ``except
FileNotFoundError`` catch them too. At the tools' boundary (:func:`mmreplk.apis.run`) an
:class:`MMReplkError` becomes one ``error: <message>`` line and exit status 1 (see
docs/design.md, "Errors and exit statuses").
"""

__all__ = ['MMReplkError', 'ConfigError', 'DataNotFoundError', 'DataError', 'CheckpointError',
           'CheckpointNotFoundError', 'DistributedError', 'ExportError', 'WorkDirError']


class MMReplkError(Exception):
    """Base class of the errors a user can fix from the message alone."""


class ConfigError(MMReplkError, ValueError):
    """A config or an argument has a value the code cannot use (unknown arch, even
    kernel, misspelt backbone argument, unsupported host scope, ...)."""


class DataNotFoundError(MMReplkError, FileNotFoundError):
    """A data set, an annotation file or an image folder is missing or empty."""


class DataError(MMReplkError, ValueError):
    """A data set's files are broken: unpaired, unreadable, labels beyond the classes."""


class CheckpointError(MMReplkError, ValueError):
    """A checkpoint file is corrupt, truncated, unsafe to load or does not match the
    model."""


class CheckpointNotFoundError(MMReplkError, FileNotFoundError):
    """A checkpoint file does not exist."""


class DistributedError(MMReplkError, RuntimeError):
    """A rank of a distributed run stopped responding (stopped, hung or dead), so the
    others gave up; the message names it."""


class ExportError(MMReplkError, RuntimeError):
    """A model cannot be exported, the exported file disagrees with PyTorch, or the
    optional packages the export needs are missing."""


class WorkDirError(MMReplkError, OSError):
    """The work dir, or a checkpoint in it, cannot be written (read-only, disk full)."""
