FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir . && pip uninstall -y mhsd-platform
COPY . .
# Hashed static files for whitenoise; no database is touched here.
RUN DATABASE_URL=postgres://build@localhost/build python manage.py collectstatic --noinput
RUN useradd --create-home app && chown -R app /app
USER app
EXPOSE 8000
CMD ["gunicorn", "mhsd_platform.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
