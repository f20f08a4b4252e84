"""Twilio's request signature (`X-Twilio-Signature`) over a form-encoded POST webhook.

Twilio signs the webhook URL exactly as configured (scheme, host, path and query string), followed
by every POST parameter as name then value, in order of name. We compute it over our configured
public URL, never one rebuilt from the request's Host header, which whoever sends the request
chooses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """The base64 HMAC-SHA1 Twilio puts in `X-Twilio-Signature` for `params` posted to `url`."""
    # Sorting the (name, value) pairs orders by name, then a repeated name's values by value;
    # the set drops a pair sent twice, as Twilio's own libraries (Python and Node) do.
    signed = url + "".join(name + value for name, value in sorted(set(params)))
    mac = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def valid_signature(
    auth_tokens: Sequence[str], url: str, params: Sequence[tuple[str, str]], given: str
) -> bool:
    """Whether `given` signs `params` at `url` with any of `auth_tokens`.

    Several tokens, so the secondary auth token is accepted while it is being promoted. An empty
    token is skipped: anyone can compute a signature with an empty key. The URL is also tried with
    its default port written out or left off, since Twilio signs either spelling.
    """
    given_bytes = given.encode()
    matched = False
    for token in filter(None, auth_tokens):
        for spelling in url_spellings(url):
            expected = signature(token, spelling, params).encode()
            matched |= hmac.compare_digest(expected, given_bytes)
    return matched


def url_spellings(url: str) -> list[str]:
    """`url` and, for http or https, the same URL with its default port added or removed.

    A port that is not the scheme's default is part of the address and is kept, unlike
    twilio-python's validator, which also tries the URL with any port removed.
    """
    parts = urlsplit(url)
    default_port = DEFAULT_PORTS.get(parts.scheme.lower())
    if default_port is None or not parts.netloc:
        return [url]
    userinfo, at, host_port = parts.netloc.rpartition("@")
    port_suffix = f":{default_port}"
    if host_port.endswith(port_suffix):
        other = host_port.removesuffix(port_suffix)
    elif ":" not in host_port or host_port.endswith("]"):  # no port (a bracketed IPv6 host)
        other = host_port + port_suffix
    else:
        return [url]
    # Splice the new host into the string as given, so nothing else in the URL is normalized.
    start = url.index("//") + 2
    end = start + len(parts.netloc)
    return [url, url[:start] + userinfo + at + other + url[end:]]
