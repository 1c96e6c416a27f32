"""The one exception type for errors a user can cause.

A ``VoxfaceError`` message names the input that is wrong and says what to do about it. The CLI
prints it on one line without a traceback and exits with status 2.
"""


class VoxfaceError(Exception):
    """A user-facing error: bad input, missing file, failed validation, wrong checkpoint."""
