"""Tracked runs: from a Hydra config to an MLflow run, one job or a whole sweep.

Modules, in the order a run passes through them: ``cli`` (the ``python -m src.train``
command line), ``config`` and ``constraints`` (schemas and their rules), ``datasets``,
``build`` (network, optimizer and objective from a config; ``load_network``), ``loop``
(the training loop), ``tracked_run`` (one run logged to MLflow), ``tracking`` (MLflow
plumbing), ``sweep`` (a multirun's parent run), ``figures``, ``pyfunc_model`` and
``contract`` (every artifact, tag and metric name).

May import ``src.engine``; never imports ``src.analysis``.
"""
