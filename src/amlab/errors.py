"""The one exception type a user is meant to read."""


class AmlabError(Exception):
    """Bad input or an unmet precondition the user can fix.

    Its message is one sentence naming the file, field or value at fault and what would be
    valid; the CLI prints it without a traceback.
    """
