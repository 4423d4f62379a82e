"""Encryption at rest for provider admin API keys.

Keys come from settings.PROVIDER_KEY_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first): the newest
encrypts, all of them decrypt, and `manage.py rotate_provider_keys` re-encrypts every stored key with the newest.
They are independent of SECRET_KEY so either can rotate on its own. Only the embedded (non-production) run may
go without: it derives a stable dev key from SECRET_KEY and warns once. The plaintext is returned to the caller
only (the collector service); it is never logged, rendered or put in an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

_warned_about_dev_key = False


class KeyDecryptionError(Exception):
    """A stored key cannot be decrypted with any configured key (the encryption keys changed)."""


def _dev_key() -> bytes:
    digest = hashlib.sha256(b"tokenboard provider keys\x00" + settings.SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def encryption_keys() -> list[bytes]:
    global _warned_about_dev_key
    keys = [key.strip().encode() for key in settings.PROVIDER_KEY_ENCRYPTION_KEYS if key.strip()]
    if keys:
        return keys
    if getattr(settings, "IS_PRODUCTION", False):
        raise ImproperlyConfigured("PROVIDER_KEY_ENCRYPTION_KEYS must be set in production (Fernet keys).")
    if not _warned_about_dev_key:
        _warned_about_dev_key = True
        logger.warning(
            "PROVIDER_KEY_ENCRYPTION_KEYS is not set: provider API keys are encrypted with a development key "
            "derived from SECRET_KEY. Set PROVIDER_KEY_ENCRYPTION_KEYS before storing real keys."
        )
    return [_dev_key()]


def _multi_fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in encryption_keys()])
    except ValueError:
        # Fernet's message names no key material, but say which setting is wrong.
        raise ImproperlyConfigured(
            "PROVIDER_KEY_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded "
            "bytes; make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        ) from None


def api_key_encrypt(plaintext: str) -> bytes:
    if not plaintext:
        raise ValueError("an empty API key cannot be stored")
    return _multi_fernet().encrypt(plaintext.encode())


def api_key_decrypt(token: bytes | memoryview) -> str:
    try:
        return _multi_fernet().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise KeyDecryptionError(
            "the stored API key cannot be decrypted with PROVIDER_KEY_ENCRYPTION_KEYS (was a key removed?); "
            "enter the API key again"
        ) from None


def api_key_rotate(token: bytes | memoryview) -> bytes:
    """The same secret, re-encrypted with the newest key (MultiFernet.rotate)."""
    try:
        return _multi_fernet().rotate(bytes(token))
    except InvalidToken:
        raise KeyDecryptionError("the stored API key cannot be decrypted with PROVIDER_KEY_ENCRYPTION_KEYS") from None
