"""The one exception type that the CLI turns into a single clear error line.

Raise `LqbenchError` for anything the user can fix (bad plan, missing GGUF,
unknown quant, malformed task file). The CLI prints `error: <message>` and
exits non-zero; nothing already in the database is touched.
"""


class LqbenchError(Exception):
    """A user-facing failure; its message is printed as one line."""
