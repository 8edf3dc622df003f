"""The one router every view module registers on."""

from api.routing import Router

router = Router()
