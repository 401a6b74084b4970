FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir .
COPY config ./config
ENV MONITOR_CONFIG_DIR=/app/config
USER nobody
CMD ["monitor", "run"]
