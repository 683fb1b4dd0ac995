"""Loading a battery and launching a run from the pages: errors in the page, nothing half-done."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from probes.models import ProbeBattery, ProbeRun

from .test_probe_files import SHIPPED

pytestmark = pytest.mark.django_db


def upload(client, content: bytes, name="battery.jsonl"):
    return client.post(reverse("probes:battery_import"), {"file": SimpleUploadedFile(name, content)})


def test_a_bad_file_is_refused_in_the_page_with_line_and_field(world, client):
    client.force_login(world.admin)
    bad = SHIPPED.read_text().replace('"age": 34', '"age": "old"').replace('"key": "v2"', '"key": "V 2"')
    response = upload(client, bad.encode())
    html = response.content.decode()
    assert response.status_code == 200 and "Nothing was loaded: 2 errors" in html
    assert "line 6, field &#x27;age&#x27;: must be a whole number from 1 to 120" in html
    assert "line 7, field &#x27;key&#x27;" in html
    assert not ProbeBattery.objects.exclude(pk=world.objects["probe_battery"].pk).exists()


def test_load_then_launch(world, client):
    client.force_login(world.admin)
    response = upload(client, SHIPPED.read_bytes(), "stigma-v1.jsonl")  # the world loaded it: same content
    battery = ProbeBattery.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("probes:battery_detail", args=[battery.pk])
    detail = client.get(response["Location"]).content.decode()
    assert "Schizophrenia" in detail and "probably unwilling; definitely unwilling" in detail
    launch = reverse("probes:run_launch")
    model = world.objects["model_config"]
    refused = client.post(launch, {"battery": battery.pk, "model": model.pk, "samples": 0, "seed": 1,
                                   "max_concurrent_calls": 4})
    assert refused.status_code == 200 and "samples" in refused.context["form"].errors
    model.is_active = False
    model.save()
    inactive = client.post(launch, {"battery": battery.pk, "model": model.pk, "samples": 1, "seed": 1,
                                    "max_concurrent_calls": 4})
    assert inactive.status_code == 200 and not ProbeRun.objects.exists()
    model.is_active = True
    model.save()
    response = client.post(launch, {"battery": battery.pk, "model": model.pk, "samples": 2, "seed": 5,
                                    "max_concurrent_calls": 4})
    run = ProbeRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("probes:run_detail", args=[run.pk])
    assert run.items.count() == 4 * 6 * 10 * 2 and run.seed == 5
    assert run.created_by == world.admin and run.model_snapshot["name"] == model.name
    index = client.get(reverse("probes:index")).content.decode()
    assert run.name in index and "Stigma battery v1" in index
