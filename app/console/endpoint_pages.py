"""Endpoint pages: the list with health, the form (create and edit), one endpoint's health,
chart and deliveries, and the buttons that change it (secret, test, disable/enable)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from app.access import Session
from app.console import charts
from app.console.event_pages import known_types
from app.console.guard import changing, confirmed, form_text, viewing
from app.console.render import done, page
from app.errors import ValidationFailed
from app.hub import Hub
from app.inputs import parse
from app.models import EndpointCreate, EndpointPatch
from app.records import DELIVERY_STATUSES, Endpoint

BROKER_FIELDS = ("exchange", "routing_key", "subject", "stream", "maxlen")
PAGE_SIZE = 50
HOUR_MS = 3_600_000
BACKLOG_CAP = 1000  # pending a list row counts at most


@viewing
async def endpoints(request: Request, hub: Hub, found: Session) -> Response:
    cursor = request.query_params.get("cursor") or None
    items = await hub.endpoints.list(found.tenant, cursor, PAGE_SIZE + 1)
    rows = [(e, await hub.endpoints.glance(e, BACKLOG_CAP)) for e in items[:PAGE_SIZE]]
    more = items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None
    return page(request, found, "endpoints.html", rows=rows, next_cursor=more, cap=BACKLOG_CAP)


@viewing
async def new_form(request: Request, hub: Hub, found: Session) -> Response:
    return await _form(request, hub, found, None, {"types": "all"})


@viewing
async def edit_form(request: Request, hub: Hub, found: Session) -> Response:
    endpoint = await hub.endpoints.get(found.tenant, request.path_params["id"])
    return await _form(request, hub, found, endpoint, _values_of(endpoint))


@changing
async def create(request: Request, hub: Hub, found: Session) -> Response:
    form = await request.form()
    try:
        spec = parse(
            EndpointCreate, {"type": form_text(form, "type") or "webhook", **_fields(form)}
        )
        endpoint = await hub.endpoints.create(found.tenant, spec)
    except ValidationFailed as exc:
        return await _form(request, hub, found, None, _sent(form), exc)
    return _to(request, endpoint.id, "created")


@changing
async def update(request: Request, hub: Hub, found: Session) -> Response:
    endpoint = await hub.endpoints.get(found.tenant, request.path_params["id"])
    form = await request.form()
    try:
        fields = _fields(form)
        if endpoint.type == "webhook":
            del fields["config"]  # a webhook has none
        changes = parse(EndpointPatch, fields)
        await hub.endpoints.update(found.tenant, endpoint.id, changes)
    except ValidationFailed as exc:
        return await _form(request, hub, found, endpoint, _sent(form), exc)
    return _to(request, endpoint.id, "saved")


@viewing
async def detail(request: Request, hub: Hub, found: Session) -> Response:
    endpoint = await hub.endpoints.get(found.tenant, request.path_params["id"])
    status = request.query_params.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationFailed.field("status", f"one of {', '.join(DELIVERY_STATUSES)}")
    cursor = request.query_params.get("cursor") or None
    items = await hub.endpoints.deliveries(found.tenant, endpoint.id, status, cursor, PAGE_SIZE + 1)
    activity = await hub.events.activity(found.tenant, HOUR_MS, endpoint.id)
    return page(
        request, found, "endpoint.html",
        endpoint=endpoint, health=await hub.endpoints.health(found.tenant, endpoint.id),
        glance=await hub.endpoints.glance(endpoint, BACKLOG_CAP),
        deliveries=items[:PAGE_SIZE], shown_status=status, statuses=DELIVERY_STATUSES,
        next_cursor=items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None,
        attempts_chart=charts.attempts(activity, "Last hour: attempts per minute"),
        latency_chart=charts.latency(activity, "Last hour: latency p50 and p99"),
        activity=activity, rotate_text=ROTATE, disable_text=DISABLE,
    )  # fmt: skip


@changing
async def reveal_secret(request: Request, hub: Hub, found: Session) -> Response:
    """Shown on a page of its own, answered to a POST: never in a URL, history or cache."""
    endpoint = await hub.endpoints.get(found.tenant, request.path_params["id"])
    return page(request, found, "secret.html", endpoint=endpoint)


@changing
async def rotate_secret(request: Request, hub: Hub, found: Session) -> Response:
    await hub.endpoints.get(found.tenant, request.path_params["id"])  # 404 first
    confirmed(await request.form(), ROTATE)
    endpoint = await hub.endpoints.rotate_secret(found.tenant, request.path_params["id"])
    return page(request, found, "secret.html", endpoint=endpoint, rotated=True)


@changing
async def send_test(request: Request, hub: Hub, found: Session) -> Response:
    endpoint = await hub.endpoints.get(found.tenant, request.path_params["id"])
    attempt = await hub.events.send_test(found.tenant, endpoint.id, hub.deliverer)
    return page(request, found, "test_sent.html", endpoint=endpoint, attempt=attempt)


@changing
async def set_status(request: Request, hub: Hub, found: Session) -> Response:
    form = await request.form()
    wanted = form_text(form, "status")
    await hub.endpoints.get(found.tenant, request.path_params["id"])  # 404 first
    if wanted == "disabled":
        confirmed(form, DISABLE)
    changes = parse(EndpointPatch, {"status": wanted})
    endpoint = await hub.endpoints.update(found.tenant, request.path_params["id"], changes)
    return _to(request, endpoint.id, "enabled" if wanted == "active" else "disabled")


# What the confirmation boxes say (endpoint.html shows the same words).
ROTATE = "a new signing secret; the current one keeps signing for 24 hours beside it"
DISABLE = "nothing is sent to this endpoint until it is enabled; what comes meanwhile is kept"


def _to(request: Request, endpoint_id: str, notice: str) -> Response:
    return done(request, notice, "console:endpoint", id=endpoint_id)


async def _form(
    request: Request, hub: Hub, found: Session, endpoint: Endpoint | None,
    values: dict[str, Any], error: ValidationFailed | None = None,
) -> Response:  # fmt: skip
    picked = set(values.get("event_types") or ())
    types = sorted(set(await known_types(hub, found.tenant)) | picked)
    status = 422 if error else 200
    return page(request, found, "endpoint_form.html", status, endpoint=endpoint, values=values,
                types=types, picked=picked, problems=_problems(error))  # fmt: skip


def _problems(error: ValidationFailed | None) -> dict[str, str]:
    """Field name → message, for the form to show beside each field."""
    if error is None:
        return {}
    found: dict[str, str] = {}
    for detail in error.details:
        loc = [str(p) for p in detail.get("loc", [])] if isinstance(detail, dict) else []
        name = next((p for p in loc if p not in ("body", "filter", "config")), "form")
        found.setdefault(name, str(detail.get("msg", "")) if isinstance(detail, dict) else "")
    return found or {"form": error.message}


def _fields(form: FormData) -> dict[str, Any]:
    """The form as the API's JSON body: empty fields are absent, "all types" is null."""
    chosen = [str(t) for t in form.getlist("event_types") if str(t).strip()]
    extra = [t.strip() for t in (form_text(form, "other_types") or "").split(",") if t.strip()]
    fields: dict[str, Any] = {
        "url": form_text(form, "url") or "",
        "description": form_text(form, "description") or "",
        "event_types": None if form.get("types") != "some" else chosen + extra,
        "filter": {
            "customerNumber": form_text(form, "customerNumber"),
            "externalContractId": form_text(form, "externalContractId"),
        },
        "ordered": form.get("ordered") == "on",
        "format": form_text(form, "format") or "standard",
        "cloudevents_mode": form_text(form, "cloudevents_mode") or "binary",
        "config": _config(form),
    }
    rate = form_text(form, "rate_limit_per_s")  # empty: no limit (on edit, removes it)
    fields["rate_limit_per_s"] = int(rate) if rate and rate.isascii() and rate.isdigit() else rate
    return fields


def _config(form: FormData) -> dict[str, Any]:
    """A broker's settings from the fields given (app/destinations.py checks them)."""
    config: dict[str, Any] = {}
    for name in BROKER_FIELDS:
        value = form_text(form, name)
        if value:
            config[name] = int(value) if name == "maxlen" and value.isdigit() else value
    return config


def _sent(form: FormData) -> dict[str, Any]:
    """What was typed, to show again beside the problems."""
    return {**{k: v for k, v in form.items() if isinstance(v, str)},
            "event_types": [str(t) for t in form.getlist("event_types")]}  # fmt: skip


def _values_of(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "types": "all" if endpoint.event_types is None else "some",
        "event_types": list(endpoint.event_types or ()),
        "customerNumber": endpoint.filter.get("customerNumber", ""),
        "externalContractId": endpoint.filter.get("externalContractId", ""),
        "ordered": "on" if endpoint.ordered else "",
        "rate_limit_per_s": endpoint.rate_limit_per_s or "",
        "type": endpoint.type,
        "format": endpoint.format,
        "cloudevents_mode": endpoint.cloudevents_mode,
        **{name: endpoint.config.get(name, "") for name in BROKER_FIELDS},
    }
