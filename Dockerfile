# One SwarmDash node: gunicorn with one gevent worker (swarmdash/gunicorn_conf.py).
# Settings come from the environment (docker-compose.yml, or `docker run -e ...`).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8050

RUN groupadd --system --gid 10001 swarmdash \
 && useradd --system --uid 10001 --gid swarmdash --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin swarmdash

WORKDIR /app
# constraints.txt pins every package installed to the version the tests ran with
# (docs/gen_constraints.py): the same source builds the same image.
COPY pyproject.toml README.md constraints.txt ./
COPY services ./services
RUN pip install -c constraints.txt . && rm -rf /app/services /app/build

USER swarmdash
EXPOSE 8050
STOPSIGNAL SIGTERM

# /health answers 503 while this node alone cannot reach Redis, or Redis is away for longer
# than REDIS_OUTAGE_GRACE: such a node reports unhealthy.
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as r; sys.exit(0 if r.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8050'), timeout=2).status == 200 else 1)"]

ENTRYPOINT ["gunicorn", "-c", "python:swarmdash.gunicorn_conf", "swarmdash.wsgi:app"]
