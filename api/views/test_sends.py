"""Test sends: one rendered message of a campaign or template to one address through a chosen
service, counted like any send (the service's interval and daily quota, the owner's quota)."""

from __future__ import annotations

import uuid

import msgspec

from api.routing import Call, Routes
from engine.domain.commands import EngineCommands, TestSendResult
from engine.domain.errors import ServiceUnavailable
from engine.store.contact_models import Email

routes = Routes()


class CampaignTestIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Email
    service_id: uuid.UUID


class TemplateTestIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Email
    service_id: uuid.UUID
    # One of the template owner's senders: the from-address is `sender@service-domain`.
    sender: str


def _engine(call: Call) -> EngineCommands:
    if call.deps.engine is None:
        raise ServiceUnavailable("the dispatch engine is not running in this process")
    return call.deps.engine


@routes.route("POST", "/campaigns/{id}/test-send",
              summary="Send the campaign's first template, rendered for `to`, through one service (counted)",
              body=CampaignTestIn, response=TestSendResult, tag="campaigns")
async def campaign_test_send(call: Call) -> TestSendResult:
    b = call.body
    return await _engine(call).test_send(call.me.id, call.me.is_admin, b.service_id, b.to, campaign_id=call.id())


@routes.route("POST", "/templates/{id}/test-send",
              summary="Send the template, rendered for `to`, from one of your senders through one service (counted)",
              body=TemplateTestIn, response=TestSendResult, tag="templates")
async def template_test_send(call: Call) -> TestSendResult:
    b = call.body
    return await _engine(call).test_send(call.me.id, call.me.is_admin, b.service_id, b.to, template_id=call.id(),
                                         sender=b.sender)
