"""Run with Label Studio's own Python (its virtualenv), not the platform's: migrate Label Studio's database and
create the comparison's organisation, annotators and project. Called by benchmarks/label_studio_next.py.

    <label-studio venv>/bin/python setup_label_studio.py <n annotators> <overlap k>

The environment gives the database (DJANGO_DB, POSTGRE_*) and LABEL_STUDIO_BASE_DATA_DIR. Prints one JSON
line: the project id and every user's API token (the first is the admin's, which imports the tasks).
"""
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")

import label_studio  # noqa: E402

# Label Studio's apps import each other as top-level packages (core, projects, users...), as its manage.py does.
sys.path.insert(0, os.path.dirname(label_studio.__file__))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

# One conversation as Label Studio shows a dialogue, and the six MultiSenseEval axes as single choices.
LABEL_CONFIG = """<View>
  <Paragraphs name="dialogue" value="$dialogue" layout="dialogue" nameKey="author" textKey="text"/>
  <Choices name="susceptibility" toName="dialogue" choice="single" required="true">
    <Choice value="1"/><Choice value="2"/><Choice value="3"/><Choice value="4"/></Choices>
  <Choices name="severity" toName="dialogue" choice="single" required="true">
    <Choice value="1"/><Choice value="2"/><Choice value="3"/><Choice value="4"/></Choices>
  <Choices name="benefits" toName="dialogue" choice="single" required="true">
    <Choice value="1"/><Choice value="2"/><Choice value="3"/><Choice value="4"/></Choices>
  <Choices name="diagnosis_hard" toName="dialogue" choice="single" required="true">
    <Choice value="0"/><Choice value="1"/></Choices>
  <Choices name="diagnosis_soft" toName="dialogue" choice="single" required="true">
    <Choice value="0"/><Choice value="1"/></Choices>
  <Choices name="flow" toName="dialogue" choice="single" required="true">
    <Choice value="1"/><Choice value="2"/><Choice value="3"/><Choice value="4"/></Choices>
  <Choices name="readability_judgement" toName="dialogue" choice="single" required="true">
    <Choice value="1"/><Choice value="2"/><Choice value="3"/><Choice value="4"/></Choices>
</View>"""


def main(n_annotators: int, overlap: int):
    call_command("migrate", verbosity=0)
    from organizations.models import Organization
    from projects.models import Project
    from users.models import User

    admin = User.objects.create_user(email="bench-admin@example.org", password="bench-password-not-used")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    org = Organization.create_organization(created_by=admin, title="Benchmark", legacy_api_tokens_enabled=True)
    admin.active_organization = org
    admin.save(update_fields=["active_organization"])
    annotators = []
    for i in range(n_annotators):
        user = User.objects.create_user(email=f"bench-annotator-{i}@example.org", password="bench-password-not-used")
        org.add_user(user)
        user.active_organization = org
        user.save(update_fields=["active_organization"])
        annotators.append(user)
    # k annotations per task for every task (overlap on 100 % of tasks), handed out in a random order as
    # the platform does (its per-rater shuffle).
    project = Project.objects.create(
        title="Benchmark", created_by=admin, organization=org, label_config=LABEL_CONFIG,
        maximum_annotations=overlap, overlap_cohort_percentage=100, sampling=Project.UNIFORM,
        show_skip_button=True, is_published=True,
    )
    print(json.dumps({"project": project.pk, "admin_token": admin.auth_token.key,
                      "tokens": [u.auth_token.key for u in annotators]}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
