# clinicflow: the WhatsApp front desk, served by `clinicflow serve` beside WAHA.
# Build: docker build -t clinicflow .     Run: see compose.yaml and docs/deploy.md.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY clinicflow ./clinicflow
COPY scripts_catalog ./scripts_catalog
# Every wheel the app needs, built or downloaded once; the final image installs only these.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLINICFLOW_DATA=/data \
    CLINICFLOW_HOST=0.0.0.0 \
    CLINICFLOW_PORT=8080
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin clinicflow \
    && mkdir -p /data && chown clinicflow:clinicflow /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels clinicflow && rm -rf /wheels
USER clinicflow
WORKDIR /data
# The SQLite history, inbox, outbox and the embedding index: keep it on a volume, back it up.
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('CLINICFLOW_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]
CMD ["clinicflow", "serve"]
