"""Which intermediate task should I train on? Forecast it before running the grid.

* :mod:`~xstilts.forecast.select`: ``xstilts forecast TARGET --candidates a,b,c`` (dataset embeddings,
  LogME, English dev after a short fine-tune, largest-first);
* :mod:`~xstilts.forecast.logme`: LogME (You et al. 2021), written here;
* :mod:`~xstilts.forecast.evaluate`: ``xstilts forecast --evaluate``: Regret@k, share of the oracle's gain,
  NDCG, Spearman, with bootstrap intervals over seeds, on any results store.
"""

SELECTORS = ("embedding-en", "embedding-xx", "logme", "en-dev-short", "largest-first")
"""The selectors of ``xstilts forecast``, in the order they run (the CLI's and the forecast study's default)."""
