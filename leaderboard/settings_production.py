"""Production settings: the embedded defaults, minus anything unsafe. Refuses to start without secrets."""

from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403
from .settings import env

IS_PRODUCTION = True
# Share-safe by default: exports watermarked, cost orders for admins only (issue 14).
TOKENBOARD_SHARE_SAFE = env.bool("TOKENBOARD_SHARE_SAFE", default=True)
DEBUG = False

SECRET_KEY = env.str("SECRET_KEY", default="").strip()
# Django's own deploy check (security.W009) only warns; a guessable key forges sessions, so refuse to start.
SECRET_KEY_MIN_LENGTH = 50
if not SECRET_KEY or SECRET_KEY.startswith(("insecure-", "django-insecure-")):
    raise ImproperlyConfigured("SECRET_KEY must be set to a long random value in production.")
if len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak ({len(SECRET_KEY)} characters, {len(set(SECRET_KEY))} different): use at least "
        f"{SECRET_KEY_MIN_LENGTH} random characters, e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
if not PROVIDER_KEY_ENCRYPTION_KEYS:  # noqa: F405
    raise ImproperlyConfigured("PROVIDER_KEY_ENCRYPTION_KEYS must be set in production (Fernet keys).")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
WHITENOISE_USE_FINDERS = False

# Mail for alerts and digests: SMTP from the environment (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER,
# EMAIL_HOST_PASSWORD, EMAIL_USE_TLS); never the console backend of the embedded run.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
