"""amlab in other tools' formats: Inspect AI's `.eval` logs written from a stored run
(`inspect_export`) and read back in to be classified (`inspect_import`).

`inspect_ai` is the optional extra `amlab[inspect]`; amlab works without it, and these
modules import it only inside the functions that need it.
"""

from __future__ import annotations

import importlib.util

from amlab.errors import AmlabError

# The inspect_ai versions these modules were written and tested against (the extra pins the
# same range in pyproject.toml).
SUPPORTED_INSPECT = ">=0.3.285,<0.4"


def require_inspect() -> None:
    """Refuse, in one sentence naming the extra, when inspect_ai is not installed."""
    if importlib.util.find_spec("inspect_ai") is None:
        raise AmlabError("Inspect logs need the inspect_ai package, which is not installed; "
                         "install it with: pip install 'amlab[inspect]'.")
