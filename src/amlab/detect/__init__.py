"""Detectors: one behaviour each, a Verdict with evidence or nothing."""

from amlab.detect import infra as _infra  # noqa: F401 - registers the infrastructure detectors
from amlab.detect import mail as _mail  # noqa: F401 - registers the e-mail heuristics
from amlab.detect import reading as _reading  # noqa: F401 - registers the reading heuristics
from amlab.detect import state as _state  # noqa: F401 - registers the state detectors
from amlab.detect.base import (
    DETECTORS,
    TrialView,
    check_detector_names,
    run_detectors,
)

__all__ = ["DETECTORS", "TrialView", "check_detector_names", "run_detectors"]
