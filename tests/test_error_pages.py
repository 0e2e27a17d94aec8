"""Errors reach people as calm pages in German (or English), never as a stack trace."""

from django.test import override_settings
from django.urls import path


def broken_view(request):
    raise RuntimeError("secret internal detail")


urlpatterns = [path("broken/", broken_view)]


def test_an_unknown_page_is_a_plain_german_404(client, db):
    response = client.get("/does-not-exist/")
    assert response.status_code == 404
    assert "Seite nicht gefunden" in response.content.decode()


def test_the_english_404(client, db, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Page not found" in client.get("/does-not-exist/").content.decode()


@override_settings(ROOT_URLCONF="tests.test_error_pages")
def test_a_crash_shows_no_trace(client, db):
    client.raise_request_exception = False
    response = client.get("/broken/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Ein Fehler ist aufgetreten" in body and "Something went wrong" in body
    assert "secret internal detail" not in body and "Traceback" not in body
