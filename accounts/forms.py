from django import forms

from .models import User
from .roles import Role


class UserCreateForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["role"].initial = Role.RATER

    def clean_username(self):
        from .sso import USERNAME_PREFIX

        username = self.cleaned_data["username"]
        # Single sign-on finds its users by this prefix; a local account must never be mistaken for one.
        if username.lower().startswith(USERNAME_PREFIX):
            raise forms.ValidationError(f"Usernames starting with '{USERNAME_PREFIX}' are kept for single sign-on.")
        return username


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop pandas'.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if self.user.api_tokens.filter(name=name, revoked_at__isnull=True).exists():
            raise forms.ValidationError("You already have an active token with this name.")
        return name
