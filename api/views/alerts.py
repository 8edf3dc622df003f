"""Pushed alerts (admin): channels, rules, and the alerts raised with their delivery state."""

from __future__ import annotations

import aiohttp

from api.paging import PageQuery
from api.routing import Call, Routes
from engine.alerts.delivery import post, test_notice
from engine.store.alert_models import (
    Alert,
    AlertQuery,
    Channel,
    ChannelInBody,
    ChannelPatch,
    Rule,
    RuleInBody,
    RulePatch,
    TestResult,
)
from engine.store.alerts import AlertStore
from engine.store.contact_models import Deleted
from engine.store.rows import Page

routes = Routes()


def _store(call: Call) -> AlertStore:
    return AlertStore(call.deps.pool, call.deps.box)


@routes.route("POST", "/alerts/channels", summary="Create an alert channel (webhook, wecom, dingtalk, slack)",
              access="admin", body=ChannelInBody, response=Channel, status=201, tag="alerts")
async def create_channel(call: Call) -> Channel:
    return await _store(call).create_channel(call.body)


@routes.route("GET", "/alerts/channels", summary="List alert channels (URLs and secrets masked)", access="admin",
              query=PageQuery, response=Page[Channel], tag="alerts")
async def list_channels(call: Call) -> Page[Channel]:
    return await _store(call).list_channels(call.query.limit, call.query.offset)


@routes.route("GET", "/alerts/channels/{id}", summary="Get an alert channel", access="admin", response=Channel,
              tag="alerts")
async def get_channel(call: Call) -> Channel:
    return await _store(call).get_channel(call.id())


@routes.route("PATCH", "/alerts/channels/{id}", summary="Change an alert channel; `secret: null` removes it",
              access="admin", body=ChannelPatch, response=Channel, tag="alerts")
async def update_channel(call: Call) -> Channel:
    return await _store(call).update_channel(call.id(), call.body)


@routes.route("DELETE", "/alerts/channels/{id}", summary="Delete an alert channel (and its deliveries)",
              access="admin", response=Deleted, tag="alerts")
async def delete_channel(call: Call) -> Deleted:
    await _store(call).delete_channel(call.id())
    return Deleted(call.id())


@routes.route("POST", "/alerts/channels/{id}/test", summary="Send a test message to a channel now",
              access="admin", response=TestResult, tag="alerts")
async def test_channel(call: Call) -> TestResult:
    channel, url, secret = await _store(call).open_channel(call.id())
    d = call.deps
    now = d.clock.now()
    async with aiohttp.ClientSession() as session:
        error = await post(session, channel.kind, url, secret, test_notice(channel.name, now), d.settings.tz, now,
                           timeout=10.0)
    return TestResult(error is None, error)


@routes.route("POST", "/alerts/rules", summary="Create an alert rule", access="admin", body=RuleInBody,
              response=Rule, status=201, tag="alerts")
async def create_rule(call: Call) -> Rule:
    return await _store(call).create_rule(call.body)


@routes.route("GET", "/alerts/rules", summary="List alert rules", access="admin", query=PageQuery,
              response=Page[Rule], tag="alerts")
async def list_rules(call: Call) -> Page[Rule]:
    return await _store(call).list_rules(call.query.limit, call.query.offset)


@routes.route("GET", "/alerts/rules/{id}", summary="Get an alert rule", access="admin", response=Rule,
              tag="alerts")
async def get_rule(call: Call) -> Rule:
    return await _store(call).get_rule(call.id())


@routes.route("PATCH", "/alerts/rules/{id}", summary="Change an alert rule; `channel_ids` replaces the set",
              access="admin", body=RulePatch, response=Rule, tag="alerts")
async def update_rule(call: Call) -> Rule:
    return await _store(call).update_rule(call.id(), call.body)


@routes.route("DELETE", "/alerts/rules/{id}", summary="Delete an alert rule (and its alerts)", access="admin",
              response=Deleted, tag="alerts")
async def delete_rule(call: Call) -> Deleted:
    await _store(call).delete_rule(call.id())
    return Deleted(call.id())


@routes.route("GET", "/alerts", summary="Alerts raised, newest first, with each channel's delivery state",
              access="admin", query=AlertQuery, response=Page[Alert], tag="alerts")
async def list_alerts(call: Call) -> Page[Alert]:
    q = call.query
    return await _store(call).list_alerts(q.state, q.limit, q.offset)
