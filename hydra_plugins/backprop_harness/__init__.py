"""Hydra plugins of backprop-harness (found by Hydra's plugin scan of ``hydra_plugins``)."""
