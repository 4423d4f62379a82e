"""Tokenboard settings: every knob is an environment variable whose default runs the embedded mode
(SQLite file, Celery's filesystem broker, no servers). Production uses leaderboard.settings_production."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

IS_PRODUCTION = False
DEBUG = env.bool("DEBUG", default=False)
# The embedded default is a local demo: a fixed dev key is fine here, and settings_production refuses it.
SECRET_KEY = env.str("SECRET_KEY", default="insecure-embedded-dev-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "auditlog",
    "axes",
    "csp",
    "usage",
    "leaderboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "usage.audit.AuditMiddleware",
    "leaderboard.middleware.OneStandingsGenerationMiddleware",
    # Last, so it sees the outcome of every authentication attempt (django-axes' lockout page).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "leaderboard.urls"
WSGI_APPLICATION = "leaderboard.wsgi.application"

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
                "leaderboard.context_processors.viewer",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the SQLite file: WAL + immediate transactions avoid "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Reads of the rankings' read models may go to a PostgreSQL read replica (leaderboard.routers).
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {**env.db("DATABASE_REPLICA_URL"), "TEST": {"MIRROR": "default"}}
DATABASE_ROUTERS = ["leaderboard.routers.ReadModelRouter"]
# PostgreSQL's default (4) prices a random read as on a spinning disk: at 85,000 people it read the whole
# standings table (5 GB) rather than 15 kept windows' rows by index for a custom range, 8 s against 0.8 s
# (docs/PERFORMANCE.md). 1.1 is the usual figure for SSD and cloud volumes; empty: the server's setting.
DATABASE_RANDOM_PAGE_COST = env.str("DATABASE_RANDOM_PAGE_COST", default="1.1")
for database in DATABASES.values():
    if database["ENGINE"] == "django.db.backends.postgresql":
        # PostgreSQL's JIT compiles any query it estimates as large: for a ranking, 100 ms and more of compiling
        # for a query that runs in less; the refresh runs as fast without it (docs/PERFORMANCE.md).
        options = database.setdefault("OPTIONS", {})
        planner = f" -c random_page_cost={float(DATABASE_RANDOM_PAGE_COST)}" if DATABASE_RANDOM_PAGE_COST else ""
        options["options"] = f"{options.get('options', '')} -c jit=off{planner}".strip()

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "leaderboard.redis_cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    # The worker's warm-up keeps several hundred answers a refresh (every metric's people and teams boards on
    # every period, titles, movers): Django's default of 300 entries culled them as they were written.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "tokenboard_cache",
            "OPTIONS": {"MAX_ENTRIES": 5000},
        }
    }
# Sessions are read from Redis and written through to the database (usage.sessions); without Redis the database
# cache would only add a query to the session's own.
SESSION_ENGINE = "usage.sessions" if REDIS_URL else "django.contrib.sessions.backends.db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"  # the first screen tells the story of the last 30 days
LOGOUT_REDIRECT_URL = "login"
# django-axes first (it refuses locked-out attempts), then SSO, then local passwords (usage.login).
AUTHENTICATION_BACKENDS = [
    "usage.login.LockoutBackend",
    "usage.sso.SsoBackend",
    "usage.login.PasswordBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from the app folders in the embedded run; production serves the collected, hashed files.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Celery -------------------------------------------------------------------------------------------
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Longer than the longest import, so an unacked (acks_late) import is not redelivered while running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
else:
    CELERY_QUEUE_DIR = Path(env.str("CELERY_QUEUE_DIR", default=str(VAR_DIR / "celery" / "queue")))
    CELERY_PROCESSED_DIR = CELERY_QUEUE_DIR.parent / "processed"
    CELERY_CONTROL_DIR = CELERY_QUEUE_DIR.parent / "control"  # kombu's default is ./control in the cwd
    for _folder in (CELERY_QUEUE_DIR, CELERY_PROCESSED_DIR, CELERY_CONTROL_DIR):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "processed_folder": str(CELERY_PROCESSED_DIR),
        "control_folder": str(CELERY_CONTROL_DIR),
        "store_processed": False,
    }

# --- REST API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "usage.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "leaderboard.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"writes": env.str("API_WRITE_RATE", default="60/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tokenboard API",
    "DESCRIPTION": "AI token usage rankings for people and teams.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "ENUM_NAME_OVERRIDES": {"ProviderEnum": "usage.models.Provider.choices"},
}

# --- Tokenboard ---------------------------------------------------------------------------------------
# Uploads: Django only decides when to spool to disk; the limit itself is enforced by usage.services.
TOKENBOARD_UPLOAD_MAX_BYTES = env.int("TOKENBOARD_UPLOAD_MAX_BYTES", default=512 * 1024 * 1024)
TOKENBOARD_DECOMPRESSED_MAX_BYTES = env.int("TOKENBOARD_DECOMPRESSED_MAX_BYTES", default=4 * 1024 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
TOKENBOARD_INBOX = env.path("TOKENBOARD_INBOX", default=VAR_DIR / "inbox")
# A dropped file is imported once its size and mtime have not changed for this long (still being written).
TOKENBOARD_INBOX_SETTLE_SECONDS = env.int("TOKENBOARD_INBOX_SETTLE_SECONDS", default=60)
TOKENBOARD_ATTRIBUTION_TAG_KEYS = env.list(
    "TOKENBOARD_ATTRIBUTION_TAG_KEYS", default=["user", "owner", "email", "created_by"]
)
# Team figures shown to engineers need this many active members, so a tiny team cannot single a person out.
TOKENBOARD_MIN_TEAM_SIZE = env.int("TOKENBOARD_MIN_TEAM_SIZE", default=3)
# Fernet keys (comma-separated, newest first) that encrypt stored provider API keys. Not SECRET_KEY, so
# either can rotate on its own. The embedded default derives one so a demo works; production requires it.
PROVIDER_KEY_ENCRYPTION_KEYS = env.list("PROVIDER_KEY_ENCRYPTION_KEYS", default=[])

# --- Sign-in: SSO (OpenID Connect), local passwords, lockout (docs/deployment.md) ---------------------------
# Off: the login page offers "Sign in with SSO" only; a superuser may still log in with a password (break-glass).
TOKENBOARD_PASSWORD_LOGIN = env.bool("TOKENBOARD_PASSWORD_LOGIN", default=True)
OIDC_ENABLED = env.bool("OIDC_ENABLED", default=False)
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
OIDC_VERIFY_KID = env.bool("OIDC_VERIFY_KID", default=True)
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT", default=10)
# The claim that lists the user's groups, and the groups whose members are admins (usage.access.sso_is_admin).
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_ADMIN_GROUPS = env.list("OIDC_ADMIN_GROUPS", default=[])
# People are linked by email, so only an email the provider says it verified may link (Entra ID: see the docs).
OIDC_REQUIRE_VERIFIED_EMAIL = env.bool("OIDC_REQUIRE_VERIFIED_EMAIL", default=True)
OIDC_AUTHENTICATION_CALLBACK_URL = "sso-callback"
LOGIN_REDIRECT_URL_FAILURE = "login"
# Failed logins: after AXES_FAILURE_LIMIT failures for a username from one address, that pair waits.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "usage.login.lockout_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The address counted is REMOTE_ADDR, which a client cannot forge; behind N trusted reverse proxies set
# TOKENBOARD_PROXY_COUNT=N to count the client's address from X-Forwarded-For instead.
TOKENBOARD_PROXY_COUNT = env.int("TOKENBOARD_PROXY_COUNT", default=0)
if TOKENBOARD_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = TOKENBOARD_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_VERBOSE = False

# --- Audit trail (usage.audit) -------------------------------------------------------------------------------
AUDITLOG_LOGENTRY_MODEL = "usage.AuditEntry"
# django-auditlog's own entry table is swapped out for usage.AuditEntry, but its migrations would still create it
# (with a foreign key to users that blocks flushing them); without migrations its only model, swapped, gets no table.
MIGRATION_MODULES = {"auditlog": None}
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_USE_FK_STRING_REPRESENTATION = True
# Entries older than this many days are deleted by the daily purge task (0 keeps them for ever).
TOKENBOARD_AUDIT_RETENTION_DAYS = env.int("TOKENBOARD_AUDIT_RETENTION_DAYS", default=400)
# Personal API tokens work for this many days unless the profile form asks for fewer.
TOKENBOARD_API_TOKEN_MAX_DAYS = env.int("TOKENBOARD_API_TOKEN_MAX_DAYS", default=365)

# --- Content-Security-Policy (django-csp): scripts and styles from our own static files only ---------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# --- Import reliability and bounds (docs/architecture.md, Reliability rules) ------------------------------
# A running import beats every HEARTBEAT seconds; one silent for STALE seconds (its worker was killed) is
# requeued by the sweep (usage.sweep_imports, every minute), up to MAX_ATTEMPTS runs in all.
TOKENBOARD_IMPORT_HEARTBEAT_SECONDS = env.int("TOKENBOARD_IMPORT_HEARTBEAT_SECONDS", default=30)
TOKENBOARD_IMPORT_STALE_SECONDS = env.int("TOKENBOARD_IMPORT_STALE_SECONDS", default=300)
TOKENBOARD_IMPORT_MAX_ATTEMPTS = env.int("TOKENBOARD_IMPORT_MAX_ATTEMPTS", default=3)
# Pathological files are refused early rather than absorbed: the longest line (or single JSON document) and
# the longest run of blank lines an export may hold.
TOKENBOARD_MAX_LINE_BYTES = env.int("TOKENBOARD_MAX_LINE_BYTES", default=32 * 1024 * 1024)
TOKENBOARD_MAX_BLANK_LINES = env.int("TOKENBOARD_MAX_BLANK_LINES", default=100_000)
# A prefork worker child that grew past 512 MB (in KiB) is replaced after its task.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=512 * 1024)

# --- Budgets, alerts and digests (issue 13) -------------------------------------------------------------
# The embedded run prints mail to the console; production settings read SMTP from the environment.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tokenboard@localhost")
# Links in alerts and digests point here (no request to build them from in a worker).
TOKENBOARD_BASE_URL = env.str(
    "TOKENBOARD_BASE_URL",
    # The web process's own PORT; `make run` sets this setting itself, honcho giving the worker another PORT.
    default=f"http://127.0.0.1:{env.int('PORT', default=8000)}",
).rstrip("/")
# Percentages of a person's allowance at which they and their managers are alerted (team budgets set their own).
TOKENBOARD_ALLOWANCE_THRESHOLDS = [int(p) for p in env.list("TOKENBOARD_ALLOWANCE_THRESHOLDS", default=[50, 80, 100])]

# Sort and hash memory of the standings refresh's transaction (PostgreSQL work_mem; empty: the server's setting).
# One refresh runs at a time; with the default 4 MB its per-window sorts and hashes spill to temporary files.
TOKENBOARD_REFRESH_WORK_MEM = env.str("TOKENBOARD_REFRESH_WORK_MEM", default="256MB")
# Connections that build `rebuild_rollups` at once on PostgreSQL: one per database core (docs/scaling.md).
TOKENBOARD_REBUILD_WORKERS = env.int("TOKENBOARD_REBUILD_WORKERS", default=2)
# The same for an import's store (merging its staged hours and records in key order); stores run one at a time.
TOKENBOARD_IMPORT_WORK_MEM = env.str("TOKENBOARD_IMPORT_WORK_MEM", default="128MB")
# The ranking API's answers are served from the shared cache for at most this many seconds
# (leaderboard.api.response_cache); a refresh or a directory change retires them sooner. 0 turns it off.
TOKENBOARD_RANKING_CACHE_SECONDS = env.int("TOKENBOARD_RANKING_CACHE_SECONDS", default=300)
# PostgreSQL: an import's hours are merged by a thread while its file is still being parsed, in a transaction open
# from the start of the parse (usage.services.imports._parse_and_store); false: parse, then store, as on SQLite.
TOKENBOARD_IMPORT_PIPELINE = env.bool("TOKENBOARD_IMPORT_PIPELINE", default=True)
# Formats with a columnar reader (Format.summed: Cursor team CSV) are read by pyarrow a block at a time, summed as
# they are read; a file it cannot read exactly is read row by row. False: always row by row.
TOKENBOARD_IMPORT_COLUMNAR = env.bool("TOKENBOARD_IMPORT_COLUMNAR", default=True)

# --- Fair play (issue 14): efficiency metrics, anomaly review, share-safe mode, titles (docs/admin-guide.md) ---
# Efficiency metrics rank only people with at least this many tokens in the window; 0 = the top half by volume.
TOKENBOARD_EFFICIENCY_MIN_TOKENS = env.int("TOKENBOARD_EFFICIENCY_MIN_TOKENS", default=0)
# Anomaly rules (usage.services.anomalies): a (person, day) is held for review when at least `min_rules` of the
# enabled rules fire. Checked at start-up (usage.checks): settings that would fire on everyone or no one fail.
TOKENBOARD_ANOMALY_RULES = {
    "enabled": ["baseline", "cadence", "input_without_output", "lone_key"],
    "min_rules": 2,
    "baseline": {"history_days": 28, "min_history_days": 7, "z_threshold": 6.0},
    "cadence": {"min_active_hours": 20, "max_variation": 0.25},
    "input_without_output": {"min_prompt_tokens": 1_000_000, "max_output_share": 0.002},
    "lone_key": {"min_share": 0.95, "min_active_hours": 16},
}
# Share-safe mode: no cost-ranked orders except for admins; CSV exports carry a watermark (who, when, filters).
TOKENBOARD_SHARE_SAFE = env.bool("TOKENBOARD_SHARE_SAFE", default=False)
# Titles for raw volume ("Top volume") can be switched off, leaving efficiency, outcome and habit titles.
TOKENBOARD_VOLUME_TITLES = env.bool("TOKENBOARD_VOLUME_TITLES", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
