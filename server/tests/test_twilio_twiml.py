"""Our TwiML answers: the structure Twilio reads, with every value escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from phonewagon_server.twilio import twiml

HOSTILE = """<Hangup/>&amp; "quoted" 'single' </Say>"""


def parse(document: bytes) -> ET.Element:
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(document)


def test_forward_dials_the_number_and_records_both_legs() -> None:
    root = parse(
        twiml.forward(
            "+14155550100",
            caller_id="+18005551212",
            recording_callback_url="https://calls.example/twilio/recording?x=1&y=2",
        )
    )
    assert root.tag == "Response"
    [dial] = list(root)
    assert dial.tag == "Dial"
    assert dial.attrib == {
        "callerId": "+18005551212",
        "record": "record-from-answer-dual",
        "recordingStatusCallback": "https://calls.example/twilio/recording?x=1&y=2",
        "recordingStatusCallbackEvent": "completed",
        "recordingStatusCallbackMethod": "POST",
        "timeout": "30",
    }
    [number] = list(dial)
    assert (number.tag, number.text, list(number)) == ("Number", "+14155550100", [])


def test_forward_sets_the_ring_timeout() -> None:
    root = parse(
        twiml.forward("+1", caller_id="+2", recording_callback_url="u", timeout_seconds=12)
    )
    [dial] = list(root)
    assert dial.get("timeout") == "12"


@pytest.mark.parametrize("seconds", [0, 4, 601])
def test_forward_refuses_a_timeout_twilio_would_not_take(seconds: int) -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        twiml.forward("+1", caller_id="+2", recording_callback_url="u", timeout_seconds=seconds)


def test_forward_escapes_every_value() -> None:
    document = twiml.forward(HOSTILE, caller_id=HOSTILE, recording_callback_url=HOSTILE)
    root = parse(document)
    [dial] = list(root)
    assert dial.get("callerId") == HOSTILE
    assert dial.get("recordingStatusCallback") == HOSTILE
    [number] = list(dial)
    assert number.text == HOSTILE
    assert [element.tag for element in root.iter()] == ["Response", "Dial", "Number"]
    assert b"<Hangup" not in document


def test_decline_says_the_message_then_hangs_up() -> None:
    root = parse(twiml.decline("This number is no longer in service."))
    assert [(child.tag, child.text) for child in root] == [
        ("Say", "This number is no longer in service."),
        ("Hangup", None),
    ]


def test_decline_escapes_the_message() -> None:
    root = parse(twiml.decline(HOSTILE))
    assert [(child.tag, child.text) for child in root] == [("Say", HOSTILE), ("Hangup", None)]


def test_empty_is_a_response_with_nothing_in_it() -> None:
    root = parse(twiml.empty())
    assert (root.tag, list(root), root.attrib, root.text) == ("Response", [], {}, None)


def test_documents_are_utf_8_as_the_content_type_says() -> None:
    assert twiml.CONTENT_TYPE == "text/xml; charset=utf-8"
    document = twiml.decline("Café ☎")
    assert "Café ☎".encode() in document
    [say, _] = list(parse(document))
    assert say.text == "Café ☎"
