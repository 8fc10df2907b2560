"""Errors a user can fix. The CLI prints their message as one line and exits non-zero."""


class UserError(Exception):
    """Bad input on the command line or in a file the user named."""


class ProblemMismatch(UserError, ValueError):
    """A verifier asked to rate a problem it cannot, such as ``verifier=countdown`` on a question
    that is not a countdown puzzle. The user chose the pairing, so it is a user's error."""
