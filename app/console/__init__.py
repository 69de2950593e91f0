"""The console at /console: server-rendered pages over the same services as the API.
Every route is named so that templates and redirects build URLs with url_for."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.console import (
    admin_pages,
    auth_pages,
    billing_pages,
    dead_letter_pages,
    endpoint_pages,
    event_pages,
    overview,
    replay_pages,
    settings_pages,
)
from app.console.render import HERE

GET, POST = ["GET"], ["POST"]

_PAGES: list[BaseRoute] = [
    Route("/", overview.overview, methods=GET, name="overview"),
    Route("/sign-in", auth_pages.sign_in_form, methods=GET, name="sign_in"),
    Route("/sign-in", auth_pages.sign_in, methods=POST),
    Route("/sign-out", auth_pages.sign_out, methods=POST, name="sign_out"),
    Route("/link/{token}", auth_pages.link_form, methods=GET, name="link"),
    Route("/link/{token}", auth_pages.use_link, methods=POST),
    Route("/tenant", auth_pages.switch_tenant, methods=POST, name="switch_tenant"),
    Route("/endpoints", endpoint_pages.endpoints, methods=GET, name="endpoints"),
    Route("/endpoints", endpoint_pages.create, methods=POST),
    Route("/endpoints/new", endpoint_pages.new_form, methods=GET, name="new_endpoint"),
    Route("/endpoints/{id}", endpoint_pages.detail, methods=GET, name="endpoint"),
    Route("/endpoints/{id}", endpoint_pages.update, methods=POST),
    Route("/endpoints/{id}/edit", endpoint_pages.edit_form, methods=GET, name="edit_endpoint"),
    Route("/endpoints/{id}/secret", endpoint_pages.reveal_secret, methods=POST, name="secret"),
    Route("/endpoints/{id}/rotate", endpoint_pages.rotate_secret, methods=POST, name="rotate"),
    Route("/endpoints/{id}/test", endpoint_pages.send_test, methods=POST, name="test"),
    Route("/endpoints/{id}/status", endpoint_pages.set_status, methods=POST, name="status"),
    Route("/events", event_pages.events, methods=GET, name="events"),
    Route("/events/{id}", event_pages.event, methods=GET, name="event"),
    Route("/events/{id}/resend", event_pages.resend, methods=POST, name="resend"),
    Route("/dead-letters", dead_letter_pages.dead_letters, methods=GET, name="dead_letters"),
    Route("/settings", settings_pages.settings, methods=GET, name="settings"),
    Route("/settings", settings_pages.save, methods=POST),
    Route("/replays", replay_pages.replays, methods=GET, name="replays"),
    Route("/replays", replay_pages.start, methods=POST),
    Route("/replays/preview", replay_pages.preview, methods=POST, name="replay_preview"),
    Route("/replays/{id}", replay_pages.replay, methods=GET, name="replay"),
    Route("/replays/{id}/cancel", replay_pages.cancel, methods=POST, name="cancel_replay"),
    Route("/billing", billing_pages.billing, methods=GET, name="billing"),
    Route("/billing/finalize", billing_pages.finalize, methods=POST, name="finalize"),
    Route("/invoices", billing_pages.invoices, methods=GET, name="invoices"),
    Route("/invoices/{number}", billing_pages.invoice, methods=GET, name="invoice"),
    Route(
        "/invoices/{number}/e-invoice.xml", billing_pages.e_invoice, methods=GET, name="e_invoice"
    ),
    Route(
        "/invoices/{number}/invoice.pdf", billing_pages.invoice_pdf, methods=GET, name="invoice_pdf"
    ),
    Route(
        "/credit-notes/{number}/e-invoice.xml",
        billing_pages.credit_note_e_invoice,
        methods=GET,
        name="credit_note_e_invoice",
    ),
    Route(
        "/credit-notes/{number}/credit-note.pdf",
        billing_pages.credit_note_pdf,
        methods=GET,
        name="credit_note_pdf",
    ),
    Route("/invoices/{number}/credit-notes", billing_pages.credit, methods=POST, name="credit"),
    Route("/admin", admin_pages.tenants, methods=GET, name="admin"),
    Route("/admin/tenants", admin_pages.create_tenant, methods=POST, name="create_tenant"),
    Route("/admin/tenants/{id}", admin_pages.tenant, methods=GET, name="tenant"),
    Route("/admin/tenants/{id}/keys", admin_pages.add_key, methods=POST, name="add_key"),
    Route(
        "/admin/tenants/{id}/keys/{key_id}/revoke",
        admin_pages.revoke_key,
        methods=POST,
        name="revoke_key",
    ),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]

ROUTES: list[BaseRoute] = [Mount("/console", routes=_PAGES, name="console")]
