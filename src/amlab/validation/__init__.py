"""Measuring the detectors: the labelled validation corpus, its end-to-end runner, the
confusion counts and floors (`amlab validate`), and human labels of stored trials
(`amlab label`)."""

from amlab.validation.corpus import AWARENESS_CLASSES, Case, load_corpus
from amlab.validation.metrics import Confusion, FloorCheck, Row, check_floors, load_floors
from amlab.validation.runner import CaseResult, run_corpus

__all__ = ["AWARENESS_CLASSES", "Case", "CaseResult", "Confusion", "FloorCheck", "Row",
           "check_floors", "load_corpus", "load_floors", "run_corpus"]
