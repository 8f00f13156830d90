# One image for both mountdns processes: mountdns-backend and mountdns-sync.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mountdns ./mountdns
COPY pdns_backend ./pdns_backend
COPY sync ./sync
RUN pip install --no-cache-dir . && useradd --system --uid 10001 mountdns
USER 10001
CMD ["mountdns-backend", "--bind", "0.0.0.0:8053"]
