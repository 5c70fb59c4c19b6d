"""Sweeps: experiment files, trial planning, scheduling and progress."""

from amlab.run.executor import AsyncioExecutor, Executor, TrialResult
from amlab.run.experiment import Experiment
from amlab.run.runner import RunSummary, run_experiment
from amlab.run.trial import Arms, Trial, TrialSpec

__all__ = ["Arms", "AsyncioExecutor", "Executor", "Experiment", "RunSummary", "Trial",
           "TrialResult", "TrialSpec", "run_experiment"]
