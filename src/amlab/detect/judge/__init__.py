"""LLM judges for the behaviours that need reading, with versioned rubrics, strict parsing
and quotes checked against the transcript."""

from amlab.detect.judge.judging import (
    DEFAULT_ATTEMPTS,
    JUDGE_REPLY_TOKENS,
    AgentWords,
    build_messages,
    decide,
    judge_rubrics,
    judge_trial,
    judge_with_all,
    judged_behaviours,
    merge_verdicts,
)
from amlab.detect.judge.rubrics import PROMPT_VERSION, REALISM, RUBRICS, Rubric

__all__ = [
    "DEFAULT_ATTEMPTS",
    "JUDGE_REPLY_TOKENS",
    "PROMPT_VERSION",
    "REALISM",
    "RUBRICS",
    "AgentWords",
    "Rubric",
    "build_messages",
    "decide",
    "judge_rubrics",
    "judge_trial",
    "judge_with_all",
    "judged_behaviours",
    "merge_verdicts",
]
