"""A node's start-up objects, kept out of the garbage collector's full collections.

Before it serves anything, a node builds tens of thousands of objects that live as long as
the process: modules, the Flask app, the Socket.IO and Engine.IO servers, the settings,
the scripts. CPython's cyclic collector walks every one of them at each full (generation 2)
collection, and nothing else in the process runs while it walks. On the benchmark's medium
workload, full collections stopped a node for 75-165 ms each while dashboards connected,
and each time every client of that node waited. ``gc.freeze()`` moves the objects alive at
that moment to a permanent generation that collections skip (reference counting still frees
any of them that is released), and the same full collections then took 5-16 ms.

What start-up left as garbage is collected first, so none of it is kept for good. The
gunicorn worker freezes once the app is loaded (``post_worker_init`` in
:mod:`swarmdash.gunicorn_conf`), and so does ``swarmdash serve`` under eventlet and threading.
"""

from __future__ import annotations

import gc

from . import metrics


def freeze_start_up() -> int:
    """Collect start-up's garbage, then freeze every object left; return how many are
    frozen (also the ``swarmdash_gc_frozen_objects`` gauge)."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    metrics.GC_FROZEN.set(frozen)
    return frozen
