"""Personal API tokens: `Authorization: Bearer <token>`; only the SHA-256 digest is stored."""

import hashlib
import secrets

from django.utils import timezone
from rest_framework import authentication, exceptions

from usage.models import ApiToken

TOKEN_PREFIX = "tb_"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user, name: str = "token") -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the model and the token itself, which is never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(user=user, name=name, digest=token_digest(token), prefix=token[:10])
    return record, token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        record = ApiToken.objects.select_related("user").filter(digest=token_digest(header[1])).first()
        if record is None or not record.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=timezone.now())
        return record.user, record

    def authenticate_header(self, request) -> str:
        return self.keyword
