"""The project's error base: every error the project raises on purpose derives from it."""


class MtneuroError(Exception):
    """An error the project raises on purpose (a user's mistake or a fault outside the code)."""
