"""Clients of a remote ``loopline server``: the same service interfaces, over HTTP."""

from loopline.client.http import HttpTransport
from loopline.client.remote_tracking import RemoteTrackingService

__all__ = ["HttpTransport", "RemoteTrackingService"]
