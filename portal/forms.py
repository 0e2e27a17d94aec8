"""The staff sign-in forms: they check the shape of the input; ``portal.two_factor`` checks it."""

from django import forms
from django.utils.translation import gettext_lazy as _

from portal import enrolment, two_factor


class PasswordForm(forms.Form):
    username = forms.CharField(
        label=_("User name"),
        max_length=150,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "autofocus": True}
        ),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=1024,  # hashing an arbitrarily long password is a denial of service
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CodeForm(forms.Form):
    """One field for either the six-digit code from the app or a backup code."""

    code = forms.CharField(
        label=_("Code from your authenticator app or a backup code"),
        max_length=two_factor.CODE_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )

    def clean_code(self) -> str:
        code = two_factor.normalise_code(self.cleaned_data["code"])
        if not two_factor.is_code(code):
            raise forms.ValidationError(
                _(
                    "Enter the 6-digit code from your authenticator app "
                    "or one of your backup codes."
                ),
                code="format",
            )
        return code


class EnrolmentForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code shown in your app"),
        max_length=two_factor.CODE_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        code = two_factor.normalise_code(self.cleaned_data["code"])
        if not two_factor.TOTP_CODE.fullmatch(code):
            raise forms.ValidationError(
                _("Enter the 6-digit code that your authenticator app shows."), code="format"
            )
        return code


class EnrolmentCodeForm(forms.Form):
    """The one-time code an administrator handed out; without it no secret is shown."""

    enrolment_code = forms.CharField(
        label=_("Enrolment code from your administrator"),
        max_length=enrolment.CODE_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )

    def clean_enrolment_code(self) -> str:
        code = enrolment.normalise_code(self.cleaned_data["enrolment_code"])
        if not enrolment.CODE.fullmatch(code):
            raise forms.ValidationError(
                _("Enter the enrolment code as you received it, e.g. abcd-efgh-ijkl-mnop."),
                code="format",
            )
        return code


class ReauthenticationForm(forms.Form):
    """The password once more, before a step that replaces a second factor."""

    password = forms.CharField(
        label=_("Your password, to confirm"),
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
