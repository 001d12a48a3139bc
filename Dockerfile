# Portal: a small image that runs `portal serve` as a non-root user with the data dir on a volume.
# Build: docker build -t portal .   Run: docker run -p 8000:8000 -v portal-data:/data portal

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY templates ./templates
COPY seed ./seed
RUN python -m venv /opt/portal \
 && /opt/portal/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/portal/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin portal \
 && mkdir -p /data && chown portal:portal /data
COPY --from=build /opt/portal /opt/portal
ENV PATH="/opt/portal/bin:$PATH" \
    PORTAL_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER portal
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["portal", "serve", "--host", "0.0.0.0", "--port", "8000"]
