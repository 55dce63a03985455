# The console's front-end packages (htmx, bpmn-js), installed from npm by their lock file.
FROM node:20-slim AS web
WORKDIR /web
COPY api/web/package.json api/web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY --from=web /web/node_modules ./api/web/node_modules
COPY storage ./storage
COPY migrations ./migrations
COPY bpmn ./bpmn
COPY data ./data
RUN pip install --no-cache-dir -e . && useradd --system --home /var/lib/motcua motcua \
    && mkdir -p /var/lib/motcua && chown motcua /var/lib/motcua
USER motcua
EXPOSE 8000
CMD ["motcua", "serve", "--host", "0.0.0.0", "--port", "8000"]
