"""Settings for the MHSD rating platform, read from the environment.

Every default works on a developer machine with PostgreSQL and Redis on 127.0.0.1; production
sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS and HTTPS=1 (see README, "Configuration").
"""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# A recognisable development key; the deploy check (core/checks.py) refuses it.
INSECURE_DEV_SECRET_KEY = "insecure-dev-key-do-not-use-in-production-3f9b2c"
SECRET_KEY = os.environ.get("SECRET_KEY") or INSECURE_DEV_SECRET_KEY
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Behind TLS in production: HTTPS=1 turns on secure cookies, HSTS and the HTTPS redirect.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
# The container health check probes /healthz over plain HTTP from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Sessions are read from Redis and written through to PostgreSQL: a request reads its session without a
# database query, yet sessions stay server-side (signing out or a password change revokes them at once,
# which signed-cookie sessions could not do) and survive a Redis flush (read back from the database).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "core",
    "accounts",
    "audit",
    "generation",
    "rating",
    "judging",
    "probes",
    "results",
    "study_data",
    "api",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "mhsd_platform.middleware.RefuseUnstorableQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a refused sign-in (locked account or address) into the login page with the reason.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mhsd_platform.urls"
WSGI_APPLICATION = "mhsd_platform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.role",
                "accounts.context_processors.sso",
            ],
        },
    },
    # Only for the rating page's score fields and transcript (rating/templatetags/rating_jinja.py): its hot loops.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "mhsd_platform.jinja_env.environment", "autoescape": True},
    },
]

# PostgreSQL only: assignment relies on SELECT ... FOR UPDATE SKIP LOCKED and on constraints.
# Connections are kept 10 minutes: a request on a new one costs 12-20 ms more (the backend's start, its
# catalogue caches, the hot path's PREPAREs and plans). A lone rater's page sends a heartbeat every 30 s,
# spread over three worker processes, so with 60 s most of their requests found the connection expired.
# A kept connection's cached plans follow the tables' statistics through autovacuum's ANALYZE, which
# invalidates them; they do not need a reconnect for that.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mhsd"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
# Our prepared statements (core/prepared.py) and trigger functions are key lookups whose generic plan is the
# one PostgreSQL settles on anyway; by default it first plans each one afresh for its first five runs on every
# connection (1.7 ms each for next's state read), a slow request after every reconnect. Nothing else here is
# prepared: Django's own queries are planned per run whatever this says.
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = f"{_db_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()

# pytest sets PYTEST_VERSION: tests get their own Redis database, so a running dev worker can never
# pick up a test task (and run it against the dev database), and test keys never touch dev data.
TESTING = "PYTEST_VERSION" in os.environ
REDIS_URL = (
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if TESTING
    else os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
)
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "mhsd")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
    },
    # The session store's: read on every signed-in request, so its redis-py client is kept (core/cache.py).
    # The same Redis database and key prefix as "default", so sessions made before it existed still resolve.
    "sessions": {
        "BACKEND": "core.cache.KeptClientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
    },
}
SESSION_CACHE_ALIAS = "sessions"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing cost buys nothing in tests and dominates fixture set-up.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# --- Sign-in protection (accounts/throttling.py explains the per-account / per-address split) --------
# AxesStandaloneBackend comes first: it refuses a locked account or address before any password check.
# PasswordBackend is Django's ModelBackend with a cheaper per-request user look-up (accounts/backends.py).
# A session remembers the backend that signed it in, so sessions made under the old name
# ("django.contrib.auth.backends.ModelBackend") end once, at the first request after the upgrade.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.PasswordBackend",
]
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_IP_FAILURE_LIMIT = int(os.environ.get("LOGIN_IP_FAILURE_LIMIT", "50"))
LOGIN_LOCKOUT_MINUTES = int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15"))
# How many reverse proxies in front of the app append to X-Forwarded-For (0: use the socket's address).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
PASSWORD_RESET_RATE = os.environ.get("PASSWORD_RESET_RATE", "5/hour")
TOKEN_CREATE_RATE = os.environ.get("TOKEN_CREATE_RATE", "10/hour")
AXES_HANDLER = "accounts.throttling.AccountAndAddressHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = "accounts.throttling.account_failure_limit"
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
# A refused attempt during a lockout does not extend it, and a success forgives only the account's own
# failures (accounts.signals), not every failure from its address as axes' own reset would.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
# accounts/admin.py registers an audited unlock instead of axes' plain delete.
AXES_ENABLE_ADMIN = False

# --- Single sign-on: OpenID Connect (accounts/sso.py), off unless OIDC_ENABLED=1 ----------------
OIDC_ENABLED = env_bool("OIDC_ENABLED", False)
OIDC_BUTTON_LABEL = os.environ.get("OIDC_BUTTON_LABEL", "Sign in with your hospital account")
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "")
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_USERINFO_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_SCOPES", "openid email profile")
OIDC_ROLE_CLAIM = os.environ.get("OIDC_ROLE_CLAIM", "groups")
OIDC_ADMIN_GROUPS = env_list("OIDC_ADMIN_GROUPS", "")
OIDC_RESEARCHER_GROUPS = env_list("OIDC_RESEARCHER_GROUPS", "")
OIDC_RATER_GROUPS = env_list("OIDC_RATER_GROUPS", "")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = float(os.environ.get("OIDC_TIMEOUT", "10"))
OIDC_CREATE_USER = True
# A refused sign-in (no mapped group, a deactivated account) lands on the login page, which says why.
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=refused"
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("accounts.sso.PlatformOIDCBackend")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "mhsd-platform@localhost")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Production serves hashed files collected by `collectstatic`; development and tests use the finders.
USE_STATIC_MANIFEST = not DEBUG and not TESTING and env_bool("STATIC_MANIFEST", True)
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if USE_STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not USE_STATIC_MANIFEST

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery: long LLM tasks on Redis -------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
# A conversation is acknowledged only when it has been written, and goes back to the queue if
# the worker dies; prefetch 1 stops one worker hoarding long tasks.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
# Enforced by the prefork and gevent pools. The threads pool ignores them, so a conversation also keeps
# its own deadline (GENERATION_CONVERSATION_SECONDS, below), which defaults to the soft limit.
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", 30 * 60))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", 35 * 60))
# Redis redelivers any unacknowledged task after the visibility timeout: keep it well above the
# hard time limit (and any retry countdown) so a slow conversation is not run twice in parallel.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 2 * 3600))
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# LLM calls are I/O-bound: a threads pool keeps many in flight on 2 cores.
CELERY_WORKER_POOL = os.environ.get("CELERY_WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = int(os.environ.get("CELERY_WORKER_CONCURRENCY", "16"))
# Periodic jobs, run by the one worker started with --beat.
CELERY_BEAT_SCHEDULE = {
    # A killed worker's conversations go back to the queue within a minute or so.
    "requeue-orphaned-conversations": {
        "task": "generation.tasks.requeue_orphaned_conversations",
        "schedule": float(os.environ.get("ORPHAN_CHECK_SECONDS", "30")),
    },
    # The same for judge runs' items.
    "requeue-orphaned-judge-items": {
        "task": "judging.tasks.requeue_orphaned_judge_items",
        "schedule": float(os.environ.get("ORPHAN_CHECK_SECONDS", "30")),
    },
    # And for safety-probe items and their judge answers.
    "requeue-orphaned-probe-work": {
        "task": "probes.tasks.requeue_orphaned_probe_work",
        "schedule": float(os.environ.get("ORPHAN_CHECK_SECONDS", "30")),
    },
    # Rating leases that lapsed (page closed without skipping) go back to the pool; next_assignment
    # also reclaims lazily, so this only keeps the admin's progress figures honest.
    "reclaim-expired-rating-leases": {
        "task": "rating.tasks.reclaim_expired_leases",
        "schedule": float(os.environ.get("LEASE_RECLAIM_SECONDS", "60")),
    },
    # Results whose ratings changed without a recomputation (a lost task, a worker that was down) are
    # scheduled again; normally submissions schedule their own debounced run.
    "recompute-stale-results": {
        "task": "results.tasks.recompute_stale_campaigns",
        "schedule": float(os.environ.get("RESULTS_SWEEP_SECONDS", "300")),
    },
}

# --- LLM providers ----------------------------------------------------------------------------
# Model configurations name the environment variable that holds a key; keys never reach the DB.
LLM_REQUEST_TIMEOUT = float(os.environ.get("LLM_REQUEST_TIMEOUT", "120"))
LLM_MAX_ATTEMPTS = int(os.environ.get("LLM_MAX_ATTEMPTS", "5"))
LLM_BACKOFF_BASE = float(os.environ.get("LLM_BACKOFF_BASE", "1.0"))
LOCAL_LLM_API_BASE = os.environ.get("LOCAL_LLM_API_BASE", "http://127.0.0.1:8081/v1")
# A worker renews its claim on a running conversation every third of this; a killed worker's
# conversations are re-queued once it lapses.
GENERATION_LEASE_SECONDS = int(os.environ.get("GENERATION_LEASE_SECONDS", "60"))
GENERATION_CONVERSATION_SECONDS = int(os.environ.get("GENERATION_CONVERSATION_SECONDS", CELERY_TASK_SOFT_TIME_LIMIT))
GENERATION_MAX_ATTEMPTS = int(os.environ.get("GENERATION_MAX_ATTEMPTS", "3"))
# Judge runs: how many replies a judge may send before its item fails for a malformed reply (each
# retry says what was wrong); leases and lost-worker attempts are generation's settings above.
JUDGE_PARSE_ATTEMPTS = int(os.environ.get("JUDGE_PARSE_ATTEMPTS", "3"))

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON bodies with text PostgreSQL cannot store are refused field by field (api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.StorableJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "60/min"),
        "user": os.environ.get("API_THROTTLE_USER", "1200/min"),
        # Exports stream whole campaigns and imports write many rows: tighter budgets.
        "export": os.environ.get("API_THROTTLE_EXPORT", "120/hour"),
        "import": os.environ.get("API_THROTTLE_IMPORT", "120/hour"),
    },
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# One import request (JSONL of outside conversations) may carry at most this many bytes.
API_IMPORT_MAX_BYTES = int(os.environ.get("API_IMPORT_MAX_BYTES", 20 * 1024 * 1024))
SPECTACULAR_SETTINGS = {
    "TITLE": "MHSD rating platform API",
    "DESCRIPTION": "Conversations, campaigns, ratings, agreement and exports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["api.permissions.CanUseApi"],
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # LiteLLM logs request details (including headers) at DEBUG: keep it at WARNING.
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}
