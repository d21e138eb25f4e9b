"""The live event stream (`/ws/events`): records → messages, fan-out, and the WebSocket endpoint."""

from kt_trio.events.hub import EventHub, Subscription
from kt_trio.events.messages import EVENT_TYPES, SystemEvent
from kt_trio.events.stream import serve_event_stream

__all__ = ["EVENT_TYPES", "EventHub", "Subscription", "SystemEvent", "serve_event_stream"]
