# One image for both mountdns processes: mountdns-backend and mountdns-sync.
# deploy/ runs it as user 10001 with a read-only root filesystem.
#   docker build -t REGISTRY/mountdns:0.1.0 .
FROM python:3.11-slim
# Nothing to write at run time: bytecode is compiled at install, logs go to stdout.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mountdns ./mountdns
COPY pdns_backend ./pdns_backend
COPY sync ./sync
RUN pip install --no-cache-dir --compile . && useradd --system --uid 10001 --no-create-home mountdns
USER 10001
CMD ["mountdns-backend", "--bind", "0.0.0.0:8053"]
