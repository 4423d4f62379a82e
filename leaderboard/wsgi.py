import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leaderboard.settings")
application = get_wsgi_application()
# What is loaded by now (Django, the apps and their modules) lives as long as the process. Frozen, it is out of
# the garbage collector's reach: a full collection walked it during a request, a 60-80 ms pause every few teams
# board requests (docs/PERFORMANCE.md).
gc.freeze()
