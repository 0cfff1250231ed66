"""SMS channel (Twilio wire format): inbound/status webhooks, sender, opt-outs, segments."""

from channels.sms.media import MediaFetcher, MediaRefused, MediaStore, MemoryMediaStore
from channels.sms.optout import Keyword, MemoryOptOutStore, OptOutStore, keyword_of
from channels.sms.segments import segments
from channels.sms.sender import TwilioSender
from channels.sms.settings import SmsSettings, read_sms_settings
from channels.sms.signature import compute_signature, is_valid_signature
from channels.sms.webhook import STATUS_MAP, SmsWebhook

__all__ = [
    "STATUS_MAP",
    "Keyword",
    "MediaFetcher",
    "MediaRefused",
    "MediaStore",
    "MemoryMediaStore",
    "MemoryOptOutStore",
    "OptOutStore",
    "SmsSettings",
    "SmsWebhook",
    "TwilioSender",
    "compute_signature",
    "is_valid_signature",
    "keyword_of",
    "read_sms_settings",
    "segments",
]
