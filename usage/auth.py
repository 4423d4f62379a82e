"""Personal API tokens: `Authorization: Bearer <token>`; only the SHA-256 digest is stored. A token works until
it expires or its owner revokes it (profile page); either way the API answers 401 saying which."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from usage.models import ApiToken
from usage.services.audit import audit_record

TOKEN_PREFIX = "tb_"
TOKEN_LIFETIMES = (30, 90, 365)  # days offered on the profile page, capped by TOKENBOARD_API_TOKEN_MAX_DAYS


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_lifetime_choices() -> list[int]:
    cap = settings.TOKENBOARD_API_TOKEN_MAX_DAYS
    return sorted({min(days, cap) for days in TOKEN_LIFETIMES})


def api_token_create(*, user, name: str = "token", days: int | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user` that works for `days` (at most TOKENBOARD_API_TOKEN_MAX_DAYS, the default);
    returns the model and the token itself, which is never stored."""
    cap = settings.TOKENBOARD_API_TOKEN_MAX_DAYS
    days = cap if days is None else max(1, min(days, cap))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(
        user=user,
        name=name,
        digest=token_digest(token),
        prefix=token[:10],
        expires_at=timezone.now() + timedelta(days=days),
    )
    audit_record("api_token.create", target=record, data={"owner": user.get_username(), "days": days})
    return record, token


def api_token_revoke(*, user, token_id: int) -> ApiToken | None:
    """Revoke one of `user`'s working tokens; None if they have no such token."""
    record = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).first()
    if record is None:
        return None
    record.revoked_at = timezone.now()
    record.save(update_fields=["revoked_at"])
    audit_record("api_token.revoke", target=record, data={"owner": user.get_username()})
    return record


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
        now = timezone.now()
        refusal = record.refusal(now)
        if refusal:
            raise exceptions.AuthenticationFailed(refusal)
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
        return record.user, record

    def authenticate_header(self, request) -> str:
        return self.keyword
