# billhook hub: API + worker in one process, SQLite in the /data volume by default.
# The same image runs any role: `billhook api`, `billhook worker` (or BILLHOOK_API /
# BILLHOOK_WORKER), on PostgreSQL with BILLHOOK_DATABASE_URL=postgresql://… (compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BILLHOOK_HOST=0.0.0.0 \
    BILLHOOK_PORT=8080 \
    BILLHOOK_DATABASE_URL=sqlite:////data/billhook.db

WORKDIR /srv/billhook
COPY pyproject.toml README.md ./
COPY app ./app
COPY subscribers ./subscribers
RUN pip install . && useradd --system --uid 10001 billhook && mkdir /data && chown billhook /data

USER billhook
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz')" || exit 1
# `serve` applies pending migrations at start; set BILLHOOK_API_KEY and BILLHOOK_SECRET_KEY
# (`billhook secret-key` makes one), and BILLHOOK_ADMIN_TOKEN for tenant administration.
CMD ["billhook", "serve"]
