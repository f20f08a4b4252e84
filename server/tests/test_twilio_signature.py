"""Twilio's webhook signature: Twilio's published values, and agreement with its own library."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from phonewagon_server.twilio.signature import signature, url_spellings, valid_signature

# The example in Twilio's "Secure webhooks" guide.
DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]
# twilio-python's tests/unit/test_request_validator.py: the same call from another number.
LIBRARY_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]


def test_twilio_documented_example() -> None:
    assert signature("12345", DOCS_URL, DOCS_PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert valid_signature(["12345"], DOCS_URL, DOCS_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_twilio_python_vector_in_any_parameter_order() -> None:
    assert signature("12345", DOCS_URL, LIBRARY_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    shuffled = LIBRARY_PARAMS[::-1]
    assert signature("12345", DOCS_URL, shuffled) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_repeated_name_signs_each_value_in_order() -> None:
    """twilio-python's vector for a parameter sent twice, values out of order."""
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert signature("12345", DOCS_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_a_pair_sent_twice_is_signed_once_as_twilio_libraries_do() -> None:
    once = [("Digits", "1234"), ("From", "+1")]
    twice = [*once, ("Digits", "1234")]
    assert signature("12345", DOCS_URL, twice) == signature("12345", DOCS_URL, once)


def test_empty_values_are_part_of_the_signature() -> None:
    with_blank = [*DOCS_PARAMS, ("FromZip", "")]
    assert signature("12345", DOCS_URL, with_blank) != signature("12345", DOCS_URL, DOCS_PARAMS)


def test_accepts_a_signature_by_the_second_token() -> None:
    by_second = signature("second", DOCS_URL, DOCS_PARAMS)
    assert valid_signature(["first", "second"], DOCS_URL, DOCS_PARAMS, by_second)
    assert not valid_signature(["first", "third"], DOCS_URL, DOCS_PARAMS, by_second)
    assert not valid_signature([], DOCS_URL, DOCS_PARAMS, by_second)


def test_an_empty_token_validates_nothing() -> None:
    """Anyone can sign with an empty key, so an unset token must not accept its signatures."""
    forged = signature("", DOCS_URL, DOCS_PARAMS)
    assert not valid_signature(["", "real"], DOCS_URL, DOCS_PARAMS, forged)


def test_a_signature_with_non_ascii_characters_is_rejected_not_raised() -> None:
    assert not valid_signature(["12345"], DOCS_URL, DOCS_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=é")


# twilio-python's values for the library vector signed over the URL with the default port.
def test_https_url_signed_with_port_443_is_accepted() -> None:
    assert valid_signature(["12345"], DOCS_URL, LIBRARY_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")


def test_http_url_signed_with_port_80_is_accepted() -> None:
    http_url = DOCS_URL.replace("https", "http")
    assert valid_signature(["12345"], http_url, LIBRARY_PARAMS, "0ZXoZLH/DfblKGATFgpif+LLRf4=")


def test_configured_default_port_accepts_the_url_signed_without_it() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert valid_signature(["12345"], with_port, DOCS_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_another_port_is_not_dropped() -> None:
    """Unlike twilio-python's validator, a non-default port stays part of the address."""
    with_port = "https://mycompany.com:8443/myapp.php?foo=1&bar=2"
    assert not valid_signature(["12345"], with_port, DOCS_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    signed = signature("12345", with_port, DOCS_PARAMS)
    assert valid_signature(["12345"], with_port, DOCS_PARAMS, signed)


def test_port_spellings_keep_the_rest_of_the_url_as_written() -> None:
    assert url_spellings("https://user@h.example:443/a%2Fb?x=1&y=#f") == [
        "https://user@h.example:443/a%2Fb?x=1&y=#f",
        "https://user@h.example/a%2Fb?x=1&y=#f",
    ]
    assert url_spellings("http://[::1]/p?") == ["http://[::1]/p?", "http://[::1]:80/p?"]
    assert url_spellings("ftp://h.example/p") == ["ftp://h.example/p"]


names = st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=12)
values = st.text(st.characters(codec="utf-8"), max_size=20)
tokens = st.text("0123456789abcdef", min_size=1, max_size=32)
urls = st.builds(
    "{}://{}{}/{}{}".format,
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,15}\.example", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.from_regex(r"[A-Za-z0-9_.~%/-]{0,20}", fullmatch=True),
    st.sampled_from(["", "?", "?a=1&b=2", "?x=%20y"]),
)


@given(tokens, urls, st.dictionaries(names, values, max_size=8))
def test_same_signature_as_twilio_python(token: str, url: str, params: dict[str, str]) -> None:
    expected = RequestValidator(token).compute_signature(url, params)
    assert signature(token, url, list(params.items())) == expected
    assert signature(token, url, list(reversed(params.items()))) == expected


@given(tokens, urls, st.dictionaries(names, values, min_size=1, max_size=8), st.data())
def test_accepts_what_twilio_signs_and_nothing_changed(
    token: str, url: str, params: dict[str, str], data: st.DataObject
) -> None:
    by_twilio = RequestValidator(token).compute_signature(url, params)
    pairs = list(params.items())
    assert valid_signature([token], url, pairs, by_twilio)

    changed_at = data.draw(st.integers(0, len(pairs) - 1), label="changed parameter")
    name, value = pairs[changed_at]
    changed = [*pairs[:changed_at], (name, value + "x"), *pairs[changed_at + 1 :]]
    new_name = data.draw(names.filter(lambda n: n not in params), label="added parameter")
    removed = [*pairs[:changed_at], *pairs[changed_at + 1 :]]
    for forged_params in (changed, [*pairs, (new_name, "")], removed):
        assert not valid_signature([token], url, forged_params, by_twilio)
    assert not valid_signature([token], url + "x", pairs, by_twilio)
    assert not valid_signature([token + "0"], url, pairs, by_twilio)
