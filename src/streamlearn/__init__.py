"""streamlearn: streaming, real-time machine learning on Kafka with faust and River."""

from __future__ import annotations

from streamlearn.spec.pipeline import Pipeline

__all__ = ["Pipeline", "__version__"]
__version__ = "0.1.0"
