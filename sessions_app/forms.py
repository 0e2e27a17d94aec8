"""The staff console's forms: they check the shape of the input; the actions check the rules."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import MaxValueValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.roles import SUPPORT_STAFF
from sessions_app import business_hours

DURATIONS = (15, 30, 45, 60, 90)


def _duration_choices() -> list[tuple[int, str]]:
    # Built per form, so that each label is in the language of the request.
    return [(m, _("%(minutes)d minutes") % {"minutes": m}) for m in DURATIONS]


def _this_minute() -> datetime:
    # Most sessions start right after the call: a later default start would lock the key out.
    return timezone.localtime(timezone.now(), business_hours.local_zone()).replace(
        second=0, microsecond=0
    )


def support_staff():
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=SUPPORT_STAFF)
        .order_by("username")
        .distinct()
    )


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        full = obj.get_full_name()
        return f"{full} ({obj.get_username()})" if full else obj.get_username()


class ScheduleForm(forms.Form):
    customer_name = forms.CharField(
        label=_("Customer or company"), max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    call_note = forms.CharField(
        label=_("Phone call note or ticket number"), max_length=500,
        help_text=_("Sessions only follow a phone call."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    # The browser's date and time pickers send and expect ISO values, whatever the language.
    day = forms.DateField(
        label=_("Day"), input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    start = forms.TimeField(
        label=_("Start"), input_formats=["%H:%M", "%H:%M:%S"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    duration = forms.TypedChoiceField(
        label=_("Duration"), choices=_duration_choices, coerce=int, initial=30
    )
    assigned_to = StaffChoiceField(
        label=_("Staff member"), queryset=get_user_model().objects.none(), empty_label=None,
        required=False, help_text=_("Leave as it is to run the session yourself."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].queryset = support_staff()
        if not self.is_bound:
            start = _this_minute()
            self.initial.update(day=start.date(), start=start.strftime("%H:%M"),
                                assigned_to=user.pk)

    def slot(self) -> tuple[datetime, datetime]:
        """The slot as aware datetimes in the portal's time zone."""
        data = self.cleaned_data
        start = datetime.combine(data["day"], data["start"], business_hours.local_zone())
        return start, start + timedelta(minutes=data["duration"])


class IssueKeyForm(forms.Form):
    lifetime = forms.IntegerField(
        label=_("Key valid for (minutes)"), min_value=1,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["lifetime"]
        field.max_value = settings.KEY_LIFETIME_MAX
        field.validators.append(MaxValueValidator(settings.KEY_LIFETIME_MAX))
        field.widget.attrs["max"] = settings.KEY_LIFETIME_MAX
        field.help_text = _("At most %(max)d minutes, and never beyond the slot.") % {
            "max": settings.KEY_LIFETIME_MAX
        }
        self.initial.setdefault("lifetime", settings.KEY_LIFETIME_DEFAULT)
