"""Analysis of tracked runs: what the notebooks and the README's Studies table are made of.

Modules: ``loaders`` (runs and histories from an MLflow store into pandas),
``studies`` (the study presets of ``conf/experiment/`` and their summaries), ``plots``
(seaborn figures of a study) and ``report`` (``python -m src.analysis.report`` writes the
README's Studies table).

May import ``src.runs`` and ``src.engine``; nothing imports it.
"""
