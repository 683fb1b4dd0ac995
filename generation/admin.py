from django.contrib import admin

from core.admin_base import ReadOnlyTabularInline

from .models import CaseStudy, Conversation, GenerationJob, Message, ModelConfig, Persona


class LockedOnceUsedAdmin(admin.ModelAdmin):
    """Read-only and undeletable once a conversation was generated from the object: results, exports
    and campaign filters refer to what the conversation was made with, so editing it would silently
    rewrite the study."""

    conversation_field = ""  # the Conversation foreign key that points at this model

    def _in_use(self, obj):
        return obj is not None and Conversation.objects.filter(**{self.conversation_field: obj}).exists()

    def get_readonly_fields(self, request, obj=None):
        if self._in_use(obj):
            return [f.name for f in obj._meta.fields]
        return super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._in_use(obj) and super().has_delete_permission(request, obj)


@admin.register(CaseStudy)
class CaseStudyAdmin(LockedOnceUsedAdmin):
    conversation_field = "case"
    list_display = ("external_id", "ground_truth_diagnosis", "condition", "intent", "goal", "facts_status", "is_demo")
    list_filter = ("facts_status", "condition", "is_demo", "intent", "goal")
    search_fields = ("external_id", "ground_truth_diagnosis", "text")


@admin.register(Persona)
class PersonaAdmin(LockedOnceUsedAdmin):
    conversation_field = "persona"
    list_display = ("__str__", "trait", "literacy", "intent", "goal")
    list_filter = ("trait", "literacy", "intent", "goal")


@admin.register(ModelConfig)
class ModelConfigAdmin(admin.ModelAdmin):
    list_display = ("name", "model", "temperature", "max_tokens", "api_base", "api_key_env", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "model")


class ConversationInline(ReadOnlyTabularInline):
    model = Conversation
    fields = ("id", "case", "persona", "status", "failure_reason", "llm_calls", "cost_usd")
    readonly_fields = fields
    show_change_link = True


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    """Jobs are launched from the generation pages; once launched their settings are history."""

    list_display = ("name", "status", "sensemaker_model", "created_by", "created_at", "finished_at")
    list_filter = ("status",)
    readonly_fields = (
        "patient_model", "sensemaker_model", "helper_model", "prompt_version", "seed", "settings_snapshot",
        "created_by", "created_at", "started_at", "finished_at", "cancel_requested_at", "status",
    )
    inlines = [ConversationInline]

    def has_add_permission(self, request):
        return False


class MessageInline(ReadOnlyTabularInline):
    model = Message
    fields = ("index", "role", "stage", "text", "smog_grade")
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Read-only: ratings refer to these exact messages; changing them would corrupt the study."""

    list_display = ("id", "source", "job", "case", "persona", "sensemaker_model", "status", "is_simulated")
    list_filter = ("source", "status", "is_simulated", "sensemaker_model")
    search_fields = ("id", "external_id", "case__external_id")
    inlines = [MessageInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("conversation", "index", "role", "stage", "smog_grade")
    list_filter = ("role", "stage")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
