r"""Check your own PPO or GRPO code against exact answers: ``python -m pgnotes.verify file.py:function``.

A user's function takes keyword arguments from :data:`VOCABULARY` (the arrays of verl's
``DataProto`` and TRL: ``responses``, ``response_mask``, ``log_prob``, ``old_log_prob``,
``ref_log_prob``, ``values``, ``token_level_scores``, ``index`` …, plus ``cliprange``,
``kl_coef``, ``gamma``, ``lam``) and returns advantages (N, T) or a scalar loss.
:func:`check` runs it on batches drawn from the lab's two settings, compares it, on the same
batch, with every legitimate variant and every known mistake of the catalogue, and returns a
:class:`Report`. Book: check your own PPO or GRPO code, ``verify-check``.

Modules: :mod:`~pgnotes.verify.layout` (the batch), :mod:`~pgnotes.verify.reference` (the
reference implementations), :mod:`~pgnotes.verify.catalogue` (variants and mistakes),
:mod:`~pgnotes.verify.core` (``check`` and ``Report``), ``__main__`` (the command).
"""

from .catalogue import AGGREGATIONS, EPS_MAX, MISTAKES
from .core import ADVANTAGE_TOL, FD_FLOOR, FD_MAX_ERROR, FD_STEP, Report, Row, check, default_scenarios
from .layout import TRAINER_NAMES, VOCABULARY, Scenario, scenario

__all__ = [
    "check",
    "Report",
    "Row",
    "scenario",
    "Scenario",
    "default_scenarios",
    "VOCABULARY",
    "TRAINER_NAMES",
    "MISTAKES",
    "AGGREGATIONS",
    "ADVANTAGE_TOL",
    "FD_STEP",
    "FD_FLOOR",
    "FD_MAX_ERROR",
    "EPS_MAX",
]
