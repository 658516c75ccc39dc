"""All settings live here; local, test and production only override."""

from config.env import BASE_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-only-key-change-me-0123456789abcdefghijklmnop")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "consent",
    "faceanalysis",
    "campaigns",
    "segments",
]

MIDDLEWARE = [
    "config.request_id.RequestIdMiddleware",
    # Outermost but one: the unread rest of a body is read before any answer, so that the client gets it.
    "config.request_body.DrainRequestBodyMiddleware",
    # Next: it sees every error answer under /api/, also those other middleware make.
    "config.api.middleware.ApiErrorShapeMiddleware",
    # NUL bytes in the path, query, headers or cookies: a 400 (or 404) before anything reads them.
    "config.request_checks.MalformedRequestMiddleware",
    # A view that finds the database away answers 503 in the error shape, never a 500 or a debug page.
    "config.outage.DatabaseOutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.capture_cors.CaptureCorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------------
# Embedded default: SQLite in var/. The full stack sets DATABASE_URL to PostgreSQL (psycopg 3).
(BASE_DIR / "var").mkdir(exist_ok=True)
def database_settings(database: dict) -> dict:
    """Complete a parsed DATABASE_URL with what every setting needs (production parses its own URL too)."""
    database["ATOMIC_REQUESTS"] = False
    database.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    if database["ENGINE"] == "django.db.backends.postgresql":
        # A database that does not answer costs a request this many seconds before its 503, not a hang.
        database.setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
        )
    elif database["ENGINE"] == "django.db.backends.sqlite3":
        # SQLite has one writer at a time. Without these, a transaction that reads and then writes (the analysis
        # task, a withdrawal) fails at once with "database is locked" when another writes, instead of waiting:
        # WAL lets readers go on beside the writer, IMMEDIATE takes the write lock when a transaction begins
        # (where the busy timeout applies), and writers wait up to the timeout for their turn.
        database["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env.float("VISAGE_SQLITE_TIMEOUT_SECONDS", default=20.0),
            **(database.get("OPTIONS") or {}),
        }
    return database


DATABASES = {
    "default": database_settings(env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'visage.sqlite3'}"))
}

# Empty REDIS_URL means the embedded default: in-process tasks, in-memory cache and frame store.
REDIS_URL = env("REDIS_URL", default="")

# Seconds a web request waits for the Redis cache (rate limits) before treating it as away.
VISAGE_REDIS_TIMEOUT_SECONDS = env.float("VISAGE_REDIS_TIMEOUT_SECONDS", default=1.0)
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "visage",
            # A Redis that is away must cost a request about a second, not a hang: the API fails open.
            "OPTIONS": {
                "socket_connect_timeout": VISAGE_REDIS_TIMEOUT_SECONDS,
                "socket_timeout": VISAGE_REDIS_TIMEOUT_SECONDS,
                # One retry (a pooled connection Redis closed meanwhile), not redis-py's three with backoff.
                "retry": Retry(NoBackoff(), 1),
            },
        }
    }
else:
    # In-process and per process: bounded, so that the decisions' cached face signals and campaign versions of many
    # visitors cannot grow the web process without limit (LocMem culls a third of its entries when it is full).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": env.int("VISAGE_LOCAL_CACHE_MAX_ENTRIES", default=5000)},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation ----------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [d for d in [BASE_DIR / "static"] if d.exists()]

# --- Admin and security ------------------------------------------------------------------------
ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Frames are small; anything larger than this never reaches a view.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=12 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# Uploads never spill to temp files: a frame's pixels must not outlive its analysis on disk.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]

# Debug pages, error mails and logs never show a frame: no request body, POST value or local variable that
# could hold one, in any setting (config/error_reports.py).
DEFAULT_EXCEPTION_REPORTER = "config.error_reports.FrameSafeExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.FrameSafeExceptionReporterFilter"

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasOrganization"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["config.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per API key, capture session, member or anonymous client address.
        "principal": env("API_THROTTLE_RATE", default="1200/min"),
        # All of one organization's callers together; never shared with another organization.
        "organization": env("API_ORGANIZATION_THROTTLE_RATE", default="6000/min"),
        # Decisions and events (one or more per page view) count apart from the rest, at the rate they are
        # built for (bench/decision_bench.py: 300 a second on one 2-core machine).
        "decisions_principal": env("API_DECISION_THROTTLE_RATE", default="18000/min"),
        "decisions_organization": env("API_DECISION_ORGANIZATION_THROTTLE_RATE", default="18000/min"),
    },
    # Anonymous callers are told apart by the address the trusted proxies saw (X-Forwarded-For otherwise
    # is the client's own word, and a new bucket per request).
    "NUM_PROXIES": env.int("VISAGE_TRUSTED_PROXY_HOPS", default=0),
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bodies are JSON (numbers beyond float range, duplicate keys, deep nesting and NUL refused); intake views
    # add multipart for files. A form or multipart body elsewhere is a 415, not a request read as empty (a
    # garbled multipart body parses to no fields at all).
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "config.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.VisageAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Visage API",
    "DESCRIPTION": (
        "Consent-first face analytics. Authenticate with `Authorization: Bearer <api key>`. "
        "Every error response has the shape of the `Error` component, "
        "`{\"error\": {\"code\", \"message\", \"details\"}}`, and each operation lists the error statuses "
        "it can answer. A JSON body is refused with a 400 `parse_error` when any string in it, also under a key "
        "the operation ignores, holds a NUL character or an unpaired surrogate, when a key repeats, when a number "
        "is beyond the float range, or when it nests deeper than 32 levels."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name get names of their own (instead of a hash suffix).
    "ENUM_NAME_OVERRIDES": {
        "CaptureSessionEndReasonEnum": "faceanalysis.models.CaptureSession.EndReason",
        "GrantEndReasonEnum": "consent.models.Grant.EndReason",
        "FrameStatusEnum": "faceanalysis.models.Frame.Status",
        "NoticeStatusEnum": "consent.models.NoticeVersion.Status",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "DecisionReasonEnum": "campaigns.models.Decision.Reason",
        "EventKindEnum": "campaigns.models.Event.Kind",
        "ExperimentKindEnum": "campaigns.models.Experiment.Kind",
        "ExperimentStatusEnum": "campaigns.models.Experiment.Status",
        "SegmentKindEnum": "segments.models.Segment.Kind",
        "SegmentRunKindEnum": "segments.models.SegmentRun.Kind",
        "DataRequestKindEnum": "consent.models.DataRequest.Kind",
        "DataRequestStateEnum": "consent.models.DataRequest.State",
    },
}

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
# Embedded default: tasks run in-process, in the request that queued them (after commit).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection around every task unless told to reuse it: a new
# PostgreSQL connection per task cost about 4 ms of a 30 ms analysis. Reused here; Django's own rules
# (CONN_MAX_AGE, a connection left unusable by an error) close it between tasks, as between requests.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "analysis", "analysis_gpu")
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=100)
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message taken by a worker that dies (SIGKILL, OOM, lost box) goes back to its queue after this many
# seconds. It must exceed the longest task's time limit; analysis tasks are limited to 30 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=180),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
    # A broker that is away costs a publish about a second (connect) before intake's 503, never a hang; the
    # read timeout stays above the worker's 1 s BRPOP poll.
    "socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=1.0),
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=3.0),
}
# Intake's publish gives the broker this long to (re)connect, with no retry loop on the request path.
VISAGE_BROKER_PUBLISH_TIMEOUT_SECONDS = env.float("VISAGE_BROKER_PUBLISH_TIMEOUT_SECONDS", default=1.0)
CELERY_TASK_ROUTES = {
    "faceanalysis.analyze_frame": {"queue": "analysis"},
    "faceanalysis.analyze_frame_gpu": {"queue": "analysis_gpu"},
}
# Later apps add their periodic work (retention purge, segment refresh) here.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# Consent: end expired grants and record it in the ledger (the guard refuses them at once regardless).
CELERY_BEAT_SCHEDULE["consent-expire-grants"] = {"task": "consent.expire_grants", "schedule": 3600.0}

# --- Logging -----------------------------------------------------------------------------------
LOG_LEVEL = env("DJANGO_LOG_LEVEL", default="INFO")
LOG_FORMAT = env("VISAGE_LOG_FORMAT", default="text")  # "json" in production
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_id.RequestIdLogFilter"}},
    "formatters": {
        "json": {"()": "config.logging.JsonFormatter"},
        "text": {
            "()": "config.logging.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # django.request logs the request object on errors; the formatter strips it to method and path.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# --- Visage ------------------------------------------------------------------------------------
# Reverse proxies in front of the app that append to X-Forwarded-For (0: use REMOTE_ADDR as it is).
VISAGE_TRUSTED_PROXY_HOPS = env.int("VISAGE_TRUSTED_PROXY_HOPS", default=0)
VISAGE_MODELS_DIR = env("VISAGE_MODELS_DIR", default=str(BASE_DIR / "var" / "models"))
# Where the public pages are reached (scheme and host, no path), for absolute URLs written outside a request: a
# consent receipt's policyUrl and jwksUrl when it is signed without one. A request's own host wins.
VISAGE_PUBLIC_URL = env("VISAGE_PUBLIC_URL", default="http://localhost:8000")

# Frame intake and the ephemeral frame store (faceanalysis). Empty store URL: in-memory, in-process only.
VISAGE_FRAME_STORE_URL = env("VISAGE_FRAME_STORE_URL", default=REDIS_URL)
# Frames not taken by a worker within this many seconds are gone; keep it above CELERY_VISIBILITY_TIMEOUT so
# that a frame whose worker died is still there when its message comes back.
VISAGE_FRAME_TTL_SECONDS = env.int("VISAGE_FRAME_TTL_SECONDS", default=300)
VISAGE_FRAME_MAX_BYTES = env.int("VISAGE_FRAME_MAX_BYTES", default=5 * 1024 * 1024)
VISAGE_FRAME_MAX_PIXELS = env.int("VISAGE_FRAME_MAX_PIXELS", default=3840 * 2160)
VISAGE_FRAME_BATCH_MAX = env.int("VISAGE_FRAME_BATCH_MAX", default=10)
VISAGE_CAPTURE_MAX_FPS = env.int("VISAGE_CAPTURE_MAX_FPS", default=15)
VISAGE_CAPTURE_TOKEN_TTL_SECONDS = env.int("VISAGE_CAPTURE_TOKEN_TTL_SECONDS", default=2 * 3600)
# The end user's capture page and the embeddable static/visage/capture.js: frames per second sent (at most
# VISAGE_CAPTURE_MAX_FPS) and how long the camera stays on before the script stops by itself.
VISAGE_CAPTURE_FPS = env.float("VISAGE_CAPTURE_FPS", default=2.0)
VISAGE_CAPTURE_MAX_SECONDS = env.int("VISAGE_CAPTURE_MAX_SECONDS", default=120)
# Partner page origins (e.g. https://shop.example) whose browsers may call the capture-token endpoints; empty:
# same origin only. Only those endpoints answer CORS, never with credentials.
VISAGE_CAPTURE_ALLOWED_ORIGINS = env.list("VISAGE_CAPTURE_ALLOWED_ORIGINS", default=[])
# Personalization: the request header a trusted proxy (Cloudflare, a load balancer) sets to the visitor's country
# (ISO 3166-1 alpha-2), read by the public decision endpoint for `request.country`. Empty: no country.
VISAGE_COUNTRY_HEADER = env("VISAGE_COUNTRY_HEADER", default="CF-IPCountry")
VISAGE_VIDEO_MAX_BYTES = env.int("VISAGE_VIDEO_MAX_BYTES", default=DATA_UPLOAD_MAX_MEMORY_SIZE)
VISAGE_VIDEO_SAMPLE_FPS = env.float("VISAGE_VIDEO_SAMPLE_FPS", default=2.0)
VISAGE_VIDEO_MAX_SAMPLE_FPS = env.float("VISAGE_VIDEO_MAX_SAMPLE_FPS", default=10.0)
VISAGE_VIDEO_MAX_FRAMES = env.int("VISAGE_VIDEO_MAX_FRAMES", default=300)
# "analysis" (CPU workers) or "analysis_gpu" (GPU workers, which batch frames across sessions).
VISAGE_ANALYSIS_QUEUE = env("VISAGE_ANALYSIS_QUEUE", default="analysis")
VISAGE_GPU_BATCH_MAX = env.int("VISAGE_GPU_BATCH_MAX", default=16)
# Under a backlog a session's aggregates are recounted at most this often; exact again once it drains.
VISAGE_AGGREGATES_REFRESH_MS = env.int("VISAGE_AGGREGATES_REFRESH_MS", default=1000)
# The consent ledger is evidence: `manage.py flush` may empty it (with every other table) only where this is on.
VISAGE_LEDGER_FLUSH_ALLOWED = env.bool("VISAGE_LEDGER_FLUSH_ALLOWED", default=False)
# Retention: every category (consent.retention) is deleted, or cut loose, once the organization's published
# period has passed, through a purge request with one part per purger and category (consent.purging). The run
# interval is also the audit's grace (manage.py retention_audit): a row may outlive its period by one interval.
VISAGE_RETENTION_RUN_SECONDS = env.float("VISAGE_RETENTION_RUN_SECONDS", default=3600.0)
CELERY_BEAT_SCHEDULE["retention-run"] = {"task": "retention.run", "schedule": VISAGE_RETENTION_RUN_SECONDS}
# Rows per retention batch, each batch its own transaction (its row locks last that long; see bench/retention_bench.py).
VISAGE_RETENTION_BATCH = env.int("VISAGE_RETENTION_BATCH", default=20000)
# A retention part stops after this long and is continued by beat's redispatch (below the task's soft time limit).
VISAGE_RETENTION_PART_SECONDS = env.float("VISAGE_RETENTION_PART_SECONDS", default=480.0)
# Purge parts still owed (a lost message, a killed worker, a purger that failed) are sent again.
CELERY_BEAT_SCHEDULE["consent-redispatch-owed-purges"] = {
    "task": "consent.redispatch_owed_purges",
    "schedule": env.float("VISAGE_PURGE_REDISPATCH_SECONDS", default=60.0),
}
CELERY_BEAT_SCHEDULE["faceanalysis-expire-frames"] = {
    "task": "pipeline.expire_frames",
    "schedule": env.float("VISAGE_EXPIRE_SWEEP_SECONDS", default=60.0),
}
# Campaigns: a scheduled campaign starts running at starts_at (when ready), a running or paused one ends at ends_at.
CELERY_BEAT_SCHEDULE["campaigns-advance-schedules"] = {"task": "campaigns.advance_schedules", "schedule": 60.0}
# Experiments: each running bandit is reweighted when its own cadence (Experiment.bandit_cadence_seconds) has
# passed; beat asks every minute.
CELERY_BEAT_SCHEDULE["campaigns-reweight-bandits"] = {"task": "campaigns.reweight_bandits", "schedule": 60.0}
# Segments: beat asks every minute which dynamic segments are due; each has its own cadence, which grows with
# how long its last run took (segments.services.next_cadence).
CELERY_BEAT_SCHEDULE["segments-recompute-due"] = {"task": "segments.recompute_due", "schedule": 60.0}
# A subject whose features or events arrived is brought up to date in the dynamic segments this many seconds
# after the first news (a burst of frames asks once).
VISAGE_SEGMENT_REFRESH_SECONDS = env.float("VISAGE_SEGMENT_REFRESH_SECONDS", default=5.0)

# Static files: WhiteNoise serves collected files in production; in DEBUG it finds them directly.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
