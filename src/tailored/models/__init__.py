"""The algorithm catalogue: importing this package registers every scorer."""

from tailored.models import als, bpr, content, content_ridge, demographic, ease, knn, mf, neural, popularity  # noqa: F401
from tailored.models import ease_lowpass, ease_window, ensemble, ranker  # noqa: F401
from tailored.models.base import CATALOG, Scorer, algorithm_names, create_scorer, scorer_class

__all__ = ["CATALOG", "Scorer", "algorithm_names", "create_scorer", "scorer_class"]
