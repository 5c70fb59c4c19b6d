"""Sweeps: experiment files, trial planning, scheduling and progress."""

from amlab.run.experiment import Experiment
from amlab.run.runner import RunSummary, run_experiment

__all__ = ["Experiment", "RunSummary", "run_experiment"]
