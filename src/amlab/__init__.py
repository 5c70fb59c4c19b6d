"""amlab — the Agentic Misalignment Lab.

Puts an LLM agent in a simulated workplace, records what it does with its tools, decides
from the world's state and the transcript which behaviours it showed, and turns many such
trials into rates with confidence intervals.
"""

__version__ = "0.1.0"
