# syntax=docker/dockerfile:1
# The feedgate image: one image for both roles of docker-compose.ee.yaml, `feedgate serve` (the
# default command) and `feedgate worker`. Python matches the version CI runs (requires-python >= 3.11).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FEEDGATE_DATA_DIR=/var/lib/feedgate \
    HOST=0.0.0.0 \
    PORT=3000

WORKDIR /app
# static/ and templates/ are found next to the packages (gateway/paths.py), so the source tree is the
# install: an editable install keeps them where the code looks for them.
COPY pyproject.toml README.md ./
COPY engine engine
COPY gateway gateway
COPY components components
COPY static static
COPY templates templates
RUN pip install --editable . \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/feedgate --shell /usr/sbin/nologin feedgate \
    && install --directory --owner feedgate --group feedgate --mode 0700 /var/lib/feedgate

USER feedgate
VOLUME ["/var/lib/feedgate"]
EXPOSE 3000

# Readiness of the gateway: 200 only when SQL and the event store both answer (gateway/health.py).
# slim has no curl; the worker overrides this in docker-compose.ee.yaml (it serves no HTTP).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/readyz' % os.environ.get('PORT', '3000'), timeout=4)"]

ENTRYPOINT ["feedgate"]
CMD ["serve"]
