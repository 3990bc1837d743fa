"""Where ``load_pipeline`` and ``Pipeline`` were imported from before the layered layout;
they live in :mod:`streamlearn.spec.pipeline`."""

from streamlearn.spec.pipeline import Pipeline, load_pipeline

__all__ = ["Pipeline", "load_pipeline"]
