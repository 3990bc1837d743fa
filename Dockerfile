# The streamlearn worker image. It needs an existing Kafka: set STREAMLEARN_BOOTSTRAP
# (docker-compose.yml does), because the local-broker launcher needs Java and Maven,
# which this image deliberately leaves out.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid lets operators grant volume permissions without guessing.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin streamlearn \
    && install -d -o streamlearn -g streamlearn /var/lib/streamlearn

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src/ src/
COPY examples/ examples/
RUN pip install . && rm -rf build src/*.egg-info

USER streamlearn

# 127.0.0.1 (the default) cannot be scraped from another container.
ENV STREAMLEARN_METRICS_HOST=0.0.0.0 \
    STREAMLEARN_METRICS_PORT=9108 \
    STREAMLEARN_STATE_DIR=/var/lib/streamlearn
# Per-container scratch (faust data); model snapshots live in Kafka (<name>.models).
VOLUME ["/var/lib/streamlearn"]
EXPOSE 9108

# Healthy once the worker serves /metrics; docker-compose.yml orders the replay after it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ['STREAMLEARN_METRICS_PORT'], timeout=4)"]

ENTRYPOINT ["streamlearn"]
CMD ["run", "examples/phishing.py"]
