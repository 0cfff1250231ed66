"""Auto-answer engine: rules in files, FAQ matching, business hours, no mail loops.

What the composition root uses:

    settings = read_settings(config.section("autoreply"), priorities=config.priorities)
    engine = Engine.from_settings(settings)          # implements inbox.ports.Triage
    reloader = Reloader(engine)                      # reload() on SIGHUP, watch() task
    decision = engine.decide(message, conversation, contact, now, inbound=inbound)
"""

from autoreply.admin import Explanation, check_files, explain
from autoreply.engine import Engine, decide
from autoreply.loops import auto_reply_headers, loop_reason
from autoreply.reload import Reloader, load_state
from autoreply.settings import AutoreplySettings, read_settings

__all__ = [
    "AutoreplySettings",
    "Engine",
    "Explanation",
    "Reloader",
    "auto_reply_headers",
    "check_files",
    "decide",
    "explain",
    "load_state",
    "loop_reason",
    "read_settings",
]
