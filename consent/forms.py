"""The customer's forms: the key with their name, and the consent boxes (all start unticked)."""

from __future__ import annotations

import unicodedata

from django import forms
from django.utils.translation import gettext_lazy as _

NAME_MAX_LENGTH = 100


class KeyForm(forms.Form):
    key = forms.CharField(
        label=_("Session key (7 digits)"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false",
                   "placeholder": "123 4567", "aria-describedby": "key-hint"}
        ),
    )
    name = forms.CharField(
        label=_("Your name"),
        max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "name", "aria-describedby": "name-hint"}),
        error_messages={
            "max_length": _("Please enter at most %(limit_value)d characters."),
        },
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if any(unicodedata.category(ch).startswith("C") for ch in name):
            raise forms.ValidationError(
                _("The name contains characters that cannot be used. Please type it again."),
                code="control_characters",
            )
        return name


class ConsentForm(forms.Form):
    terms_id = forms.IntegerField(widget=forms.HiddenInput)
    accepted_terms = forms.BooleanField(
        label=_("I accept the terms above, including the recording of the session and the "
                "rules on liability."),
        required=False,
    )
    it_permission = forms.BooleanField(
        label=_("My IT department permits remote access to this PC, or it is my private PC."),
        required=False,
    )
    share_screen = forms.BooleanField(
        label=_("I agree to share my screen with the adviser (view only)."), required=False
    )
    full_control = forms.BooleanField(
        label=_("Optional: I also allow the adviser full control with mouse and keyboard. "
                "I can withdraw this at any time."),
        required=False,
    )

    REQUIRED = ("accepted_terms", "it_permission", "share_screen")

    def clean(self):
        data = super().clean()
        for name in self.REQUIRED:
            if not data.get(name):
                self.add_error(name, _("Please tick this box to continue."))
        return data
