"""The one error type of the SQL layer."""


class SqlError(Exception):
    """An SQL statement or subscription query was rejected; `str(e)` is the message for the client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
