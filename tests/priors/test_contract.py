"""The prior contract (`vqgen.testing.test_priors`), run by the project's own suite over every registered prior."""

from vqgen.testing.test_priors import *  # noqa: F403
