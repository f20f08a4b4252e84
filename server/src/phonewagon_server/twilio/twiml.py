"""The TwiML documents we answer Twilio's webhooks with.

Built with ElementTree rather than strings, so a number, caller ID or message containing `<`, `&`
or a quote is escaped and cannot change the instructions Twilio follows.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET

CONTENT_TYPE = "text/xml; charset=utf-8"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
MIN_DIAL_TIMEOUT, MAX_DIAL_TIMEOUT = 5, 600  # the range Twilio accepts for <Dial timeout>


def forward(
    to_number: str,
    *,
    caller_id: str,
    recording_callback_url: str,
    timeout_seconds: int = 30,
) -> bytes:
    """Connect the caller to `to_number`, recording both legs from the moment it answers.

    Twilio posts the finished recording to `recording_callback_url`.
    """
    if not MIN_DIAL_TIMEOUT <= timeout_seconds <= MAX_DIAL_TIMEOUT:
        raise ValueError(
            f"timeout_seconds must be {MIN_DIAL_TIMEOUT}..{MAX_DIAL_TIMEOUT}, not {timeout_seconds}"
        )
    response = ET.Element("Response")
    dial = ET.SubElement(
        response,
        "Dial",
        {
            "callerId": caller_id,
            "record": "record-from-answer-dual",
            "recordingStatusCallback": recording_callback_url,
            "recordingStatusCallbackEvent": "completed",
            "recordingStatusCallbackMethod": "POST",
            "timeout": str(timeout_seconds),
        },
    )
    ET.SubElement(dial, "Number").text = to_number
    return _document(response)


@functools.lru_cache(maxsize=16)  # one message in practice: the same bytes for every such call
def decline(message: str) -> bytes:
    """Tell the caller `message`, then hang up: for a number that forwards nowhere."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = message
    ET.SubElement(response, "Hangup")
    return _document(response)


def empty() -> bytes:
    """Nothing to do: the answer to status and recording callbacks."""
    return EMPTY


def _document(root: ET.Element) -> bytes:
    # tostring() would write the declaration with single quotes; Twilio's own is double-quoted.
    body: bytes = ET.tostring(root, encoding="utf-8")
    return DECLARATION + body


EMPTY = _document(ET.Element("Response"))  # the same bytes for every callback
