from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """DRF page-number pagination; ?page_size= up to 500. A page past the end is a 400, not a 404."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        raw_size = request.query_params.get(self.page_size_query_param)
        if raw_size is not None and (
            not (raw_size.isascii() and raw_size.isdigit()) or not 1 <= int(raw_size) <= self.max_page_size
        ):
            raise ValidationError({"page_size": [f"must be an integer from 1 to {self.max_page_size}"]})
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:  # DRF's answer to a bad or out-of-range page
            page = request.query_params.get(self.page_query_param)
            raise ValidationError({"page": [f"{page!r} is not a page of this result"]}) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = "A page number; one past the last page is a 400."
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
                parameter["description"] = f"Results per page (default 50, at most {self.max_page_size})."
        return parameters


class RankingPagination(Pagination):
    """Pages of a ranking, with how current its figures are: `data_as_of` is when the standings were last
    refreshed (what the figures include), `refresh_failed` says the latest refresh failed and these are the
    last good standings, `refresh_pending` that newer usage is being added."""

    def get_paginated_response(self, data):
        from leaderboard.selectors import standings_freshness

        response = super().get_paginated_response(data)
        freshness = standings_freshness()
        response.data["data_as_of"] = freshness.standings_as_of
        response.data["refresh_failed"] = bool(freshness.failure)
        response.data["refresh_pending"] = freshness.behind
        response.data["providers"] = [
            {"provider": p.provider, "through": p.through, "requests": p.requests} for p in freshness.providers
        ]
        return response

    def get_paginated_response_schema(self, schema):
        response_schema = super().get_paginated_response_schema(schema)
        response_schema["properties"].update(
            data_as_of={"type": "string", "format": "date-time", "nullable": True},
            refresh_failed={"type": "boolean"},
            refresh_pending={"type": "boolean"},
            providers={
                "type": "array",
                "description": "Per provider with usage: the last day its usage reaches (`through`) and whether "
                "its sources report requests (`reported`, `partly`, `unreported`: request figures are null "
                "where unknown).",
                "items": {
                    "type": "object",
                    "properties": {
                        "provider": {"type": "string"},
                        "through": {"type": "string", "format": "date"},
                        "requests": {"type": "string", "enum": ["reported", "partly", "unreported"]},
                    },
                },
            },
        )
        return response_schema
