"""Which intermediate task should I train on? Forecast it before running the grid.

* :mod:`~xstilts.forecast.select`: ``xstilts forecast TARGET --candidates a,b,c`` (dataset embeddings,
  LogME, largest-first);
* :mod:`~xstilts.forecast.logme`: LogME (You et al. 2021), written here;
* :mod:`~xstilts.forecast.evaluate`: ``xstilts forecast --evaluate``: Regret@k, share of the oracle's gain,
  NDCG, Spearman, with bootstrap intervals over seeds, on any results store.
"""
