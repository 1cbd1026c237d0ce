"""SwarmDash: real-time, multi-node dashboard backend for swarms of bots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["PublishResult", "Publisher", "__version__"]

if TYPE_CHECKING:
    from .publisher import Publisher, PublishResult


def __getattr__(name: str) -> Any:
    # Lazy: importing swarmdash must not import redis/flask before an engine is patched.
    if name in ("Publisher", "PublishResult"):
        from . import publisher

        return getattr(publisher, name)
    raise AttributeError(name)
