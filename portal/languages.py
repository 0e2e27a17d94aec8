"""German first: every page is German unless the visitor chose English with the switch.

The browser's Accept-Language is deliberately not consulted: a bank's customers and staff in
Germany expect the German page, whatever language their browser happens to be set to.
"""

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers


def chosen_language(request) -> str:
    language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


class LanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = chosen_language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ("Cookie",))
        return response
