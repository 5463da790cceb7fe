"""Token-level MDPs of language models (being split into submodules; see pgnotes.tokens.mdp)."""

from .mdp import *  # noqa: F401,F403
from .mdp import __all__, __doc__  # noqa: F401
