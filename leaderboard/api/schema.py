"""drf-spectacular extension: documents usage.auth.BearerTokenAuthentication as an HTTP bearer scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "usage.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token: `python manage.py api_token USERNAME` prints one.",
        }
