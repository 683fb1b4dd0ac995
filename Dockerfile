FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scripts/check-pth.sh scripts/
# The same supply-chain tripwire as CI: no unexpected .pth file in site-packages.
RUN pip install --no-cache-dir . && pip uninstall -y mhsd-platform && bash scripts/check-pth.sh python
COPY . .
# Hashed static files for whitenoise; no database is touched here.
RUN DATABASE_URL=postgres://build@localhost/build python manage.py collectstatic --noinput
RUN useradd --create-home app && chown -R app /app
USER app
EXPOSE 8000
# gthread: a streamed export of a large campaign can take minutes; threaded workers keep answering the
# arbiter while a request streams (a sync worker would be killed at --timeout) and serve others meanwhile.
CMD ["gunicorn", "mhsd_platform.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--worker-class", "gthread", "--threads", "8", "--timeout", "120"]
