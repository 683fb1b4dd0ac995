"""Rubrics are data: JSON files loaded into versioned Rubric rows without code changes.

Loading the same content twice is a no-op; loading changed content under the same slug creates a new
version, so every rating keeps pointing at the exact rubric it was given under.
"""
import hashlib
import json
import re
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from audit.services import record
from core.text import describe, find_unstorable

from .models import Rubric, RubricAxis

RUBRIC_DIR = Path(__file__).resolve().parent / "rubrics"
DEFAULT_RUBRIC_FILE = RUBRIC_DIR / "multisenseeval-v1.json"
KINDS = {k.value for k in RubricAxis.Kind}
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
LEVEL_FOR_KIND = {"ordinal": "ordinal", "binary": "nominal", "computed": "interval", "nominal": "nominal"}
# Digits 1-9 then 0 choose a category on the rating page, so a nominal axis has at most ten.
MAX_CATEGORIES = 10
REFERENCE = re.compile(r"condition|metadata\.[A-Za-z0-9_-]{1,100}")


class RubricFileError(ValueError):
    pass


AGREEMENT_LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _validate(data: dict) -> list[dict]:
    """The file's axes, or RubricFileError listing every problem of the file at once."""
    unstorable = describe(find_unstorable(data))
    if unstorable:
        raise RubricFileError("; ".join(unstorable))
    errors = _header_errors(data)
    axes = data.get("axes") or []
    if not isinstance(axes, list):
        axes = []  # reported by _header_errors
    seen = set()
    for i, axis in enumerate(axes):
        errors += _axis_errors(f"axes[{i}]", axis, seen)
    if errors:
        raise RubricFileError("; ".join(errors))
    return axes


def _header_errors(data: dict) -> list[str]:
    errors = [f"missing field '{field}'" for field in ("slug", "name", "axes") if not data.get(field)]
    if not isinstance(data.get("axes") or [], list):
        errors.append("'axes' must be a list of axis objects")
    for name, limit in (("slug", 80), ("name", 200)):
        if data.get(name) and (not isinstance(data[name], str) or len(data[name]) > limit):
            errors.append(f"'{name}' must be text of at most {limit} characters")
    slug = data.get("slug")
    if slug and not (isinstance(slug, str) and SLUG.fullmatch(slug)):
        errors.append(f"'slug' must be lower-case letters, digits, '-' or '_', got {slug!r}")
    return errors


def _axis_errors(where: str, axis, seen: set) -> list[str]:
    """What is wrong with one axis object; `seen` collects the keys so far (duplicates are errors)."""
    if not isinstance(axis, dict):
        return [f"{where}: must be an object"]
    errors = []
    key, kind = axis.get("key"), axis.get("kind")
    if not key:
        errors.append(f"{where}: missing 'key'")
    elif not isinstance(key, str):
        errors.append(f"{where}: 'key' must be text")
        key = None
    elif key in seen:
        errors.append(f"{where}: duplicate key '{key}'")
    seen.add(key)
    if not isinstance(axis.get("points") or [], list):
        errors.append(f"{where}: 'points' must be a list")
        axis = {**axis, "points": []}
    if kind not in KINDS:
        errors.append(f"{where}: 'kind' must be one of {sorted(KINDS)}, got {kind!r}")
    errors += _kind_errors(where, axis, kind)
    errors += _field_type_errors(where, axis, key)
    if kind == "nominal":
        errors += _category_errors(where, axis)
    else:
        errors += _point_errors(where, axis, kind)
        for name in ("categories", "reference"):
            if name in axis:
                errors.append(f"{where}: '{name}' is only for nominal axes (\"kind\": \"nominal\")")
    return errors


def _category_errors(where: str, axis: dict) -> list[str]:
    """A nominal axis: named categories (key, label, optional description and high_risk), no scale or points,
    and optionally where its reference label comes from."""
    errors = [f"{where}: nominal axes take 'categories', not '{name}'" for name in ("scale", "points") if name in axis]
    if axis.get("agreement_level", "nominal") != "nominal":
        errors.append(f"{where}: a nominal axis is analysed at the nominal level, got 'agreement_level' "
                      f"{axis['agreement_level']!r}")
    reference = axis.get("reference")
    if reference is not None and not (isinstance(reference, str) and REFERENCE.fullmatch(reference)):
        errors.append(f"{where}: 'reference' must be \"condition\" or \"metadata.<name>\", got {reference!r}")
    categories = axis.get("categories")
    if not isinstance(categories, list) or not 2 <= len(categories) <= MAX_CATEGORIES:
        return errors + [f"{where}: nominal axes need 'categories': a list of 2 to {MAX_CATEGORIES} category "
                         "objects (digits 1-9 and 0 choose them on the rating page)"]
    seen = set()
    for j, category in enumerate(categories):
        at = f"{where}.categories[{j}]"
        if not isinstance(category, dict):
            errors.append(f"{at}: must be an object with 'key' and 'label'")
            continue
        key = category.get("key")
        if not (isinstance(key, str) and len(key) <= 80 and SLUG.fullmatch(key)):
            errors.append(f"{at}: 'key' must be lower-case letters, digits, '-' or '_' (at most 80), got {key!r}")
        elif key in seen:
            errors.append(f"{at}: duplicate category key '{key}'")
        seen.add(key)
        for name, limit, needed in (("label", 200, True), ("description", 2000, False)):
            text = category.get(name)
            if (needed or name in category) and not (isinstance(text, str) and text.strip() and len(text) <= limit):
                errors.append(f"{at}: '{name}' must be text of 1 to {limit} characters")
        if "high_risk" in category and not isinstance(category["high_risk"], bool):
            errors.append(f"{at}: 'high_risk' must be true or false, got {category['high_risk']!r}")
        unknown = sorted(set(category) - {"key", "label", "description", "high_risk"})
        if unknown:
            errors.append(f"{at}: unknown field(s) {unknown}")
    return errors


def _is_scale(scale) -> bool:
    return isinstance(scale, list) and len(scale) == 2 and all(isinstance(v, int) for v in scale)


def _kind_errors(where: str, axis: dict, kind) -> list[str]:
    """What the axis's kind requires: a scale for ordinal axes, a computing function for computed ones."""
    errors = []
    if kind == "ordinal":
        scale = axis.get("scale")
        if not (_is_scale(scale) and scale[0] < scale[1]):
            errors.append(f"{where}: ordinal axes need 'scale': [min, max] with integers, min < max")
    if kind == "computed" and not axis.get("computed_by"):
        errors.append(f"{where}: computed axes need 'computed_by'")
    # The agreement statistics accept only these; a typo here would break every recomputation.
    level = axis.get("agreement_level")
    if level is not None and level not in AGREEMENT_LEVELS:
        errors.append(f"{where}: 'agreement_level' must be one of {list(AGREEMENT_LEVELS)}, got {level!r}")
    return errors


def _field_type_errors(where: str, axis: dict, key) -> list[str]:
    errors = []
    for flag in ("required", "shows_ground_truth"):
        if flag in axis and not isinstance(axis[flag], bool):
            errors.append(f"{where}: '{flag}' must be true or false, got {axis[flag]!r}")
    if key and not (isinstance(key, str) and SLUG.fullmatch(key)):
        errors.append(f"{where}: 'key' must be lower-case letters, digits, '-' or '_', got {key!r}")
    for name, limit in (("key", 80), ("name", 200), ("group", 80), ("computed_by", 40)):
        if not isinstance(axis.get(name, ""), str) or len(axis.get(name, "")) > limit:
            errors.append(f"{where}: '{name}' must be text of at most {limit} characters")
    return errors


def _point_errors(where: str, axis: dict, kind) -> list[str]:
    """Each labelled point needs a value and a label, and its value must lie on the axis's scale."""
    errors = []
    if kind == "binary" and axis.get("scale") not in (None, [0, 1]):
        errors.append(f"{where}: binary axes are scored 0 or 1 ('scale' must be [0, 1] or absent)")
    scale = axis.get("scale") if kind == "ordinal" else ([0, 1] if kind == "binary" else None)
    for j, point in enumerate(axis.get("points") or []):
        if not isinstance(point, dict) or "value" not in point or "label" not in point:
            errors.append(f"{where}.points[{j}]: needs 'value' and 'label'")
            continue
        value = point["value"]
        if _is_scale(scale) and not (isinstance(value, int) and scale[0] <= value <= scale[1]):
            errors.append(f"{where}.points[{j}]: value {value!r} is outside the scale {scale}")
    return errors


def content_hash(data: dict) -> str:
    relevant = {k: data.get(k) for k in ("slug", "name", "description", "instructions", "citation", "axes")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def load_rubric(data: dict, *, actor=None, origin: str = "", make_default: bool = False) -> tuple[Rubric, bool]:
    """Create the rubric version for `data` unless identical content is already loaded; (rubric, created).

    Every upload path (the Rubrics page, `manage.py load_rubric`, the demo seed) comes through here, and
    every change is audited: "rubric.load" for a new version, "rubric.make_default" when an existing
    one becomes the default. `actor` is None for commands; `origin` says where the content came from
    (a file name, the command). Loading content that is already there changes nothing and records nothing."""
    axes = _validate(data)
    digest = content_hash(data)
    slug = data["slug"]
    existing = Rubric.objects.select_for_update().filter(slug=slug)
    same = next((r for r in existing if r.source.get("sha256") == digest), None)
    if same is not None:
        rubric, created = same, False
    else:
        version = (existing.aggregate(v=Max("version"))["v"] or 0) + 1
        rubric = Rubric.objects.create(
            slug=slug,
            version=version,
            name=data["name"],
            description=data.get("description", ""),
            instructions=data.get("instructions", ""),
            citation=data.get("citation", ""),
            source={"sha256": digest, "file_version": data.get("version")},
        )
        for order, axis in enumerate(axes):
            kind = axis["kind"]
            scale = axis.get("scale") or ([0, 1] if kind == "binary" else [None, None])
            points = axis.get("points") or []
            if kind == "nominal":
                points = [{"key": c["key"], "label": c["label"], "description": c.get("description", ""),
                           "high_risk": c.get("high_risk", False)} for c in axis["categories"]]
            RubricAxis.objects.create(
                rubric=rubric,
                key=axis["key"],
                name=axis.get("name", axis["key"]),
                kind=kind,
                group=axis.get("group", ""),
                scale_min=scale[0],
                scale_max=scale[1],
                points=points,
                reference=axis.get("reference", ""),
                help_text=axis.get("help_text", ""),
                required=axis.get("required", kind != "computed"),
                shows_ground_truth=axis.get("shows_ground_truth", False),
                computed_by=axis.get("computed_by", ""),
                agreement_level=axis.get("agreement_level", LEVEL_FOR_KIND[kind]),
                order=order,
            )
        created = True
    became_default = make_default and not rubric.is_default
    if became_default:
        Rubric.objects.filter(is_default=True).update(is_default=False)
        rubric.is_default = True
        rubric.save(update_fields=["is_default"])
    if created:
        record(actor, "rubric.load", rubric, origin=origin, new={
            "slug": rubric.slug, "version": rubric.version, "name": rubric.name, "sha256": digest,
            "axes": [axis["key"] for axis in axes], "default": rubric.is_default})
    elif became_default:
        record(actor, "rubric.make_default", rubric, origin=origin, new={"default": True})
    return rubric, created


def load_rubric_file(path, *, actor=None, origin: str = "", make_default: bool = False) -> tuple[Rubric, bool]:
    """load_rubric for a JSON file; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RubricFileError(f"{path.name}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    try:
        return load_rubric(data, actor=actor, origin=origin or path.name, make_default=make_default)
    except RubricFileError as exc:
        raise RubricFileError(f"{path.name}: {exc}") from exc


def default_rubric() -> Rubric:
    rubric = Rubric.objects.filter(is_default=True).first()
    if rubric is None:
        rubric, _ = load_rubric_file(DEFAULT_RUBRIC_FILE, origin=f"{DEFAULT_RUBRIC_FILE.name} (first use)",
                                     make_default=True)
    return rubric
