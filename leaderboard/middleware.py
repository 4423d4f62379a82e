"""Request-wide settings of the read side."""

from usage.services.standings import one_generation


class OneStandingsGenerationMiddleware:
    """Each request reads the standings' generation once (usage.services.standings.one_generation)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with one_generation():
            return self.get_response(request)
