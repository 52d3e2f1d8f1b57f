"""AWS Signature Version 4 checked the way AWS checks it, written from the published algorithm (not
botocore's signer), so the local SES stand-in refuses a request a real endpoint would refuse."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key_id>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def sigv4_problem(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
) -> str | None:
    """None when the request is signed by `access_key_id` for `region`/`service`; else what is wrong.

    `headers` has lower-case names.
    """
    match = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "Authorization header is not AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…"
    if match["key_id"] != access_key_id:
        return "The security token included in the request is invalid."
    if (match["region"], match["service"]) != (region, service):
        return f"Credential should be scoped to {region}/{service}"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(match["date"]):
        return "X-Amz-Date does not match the credential scope date"
    signed = match["signed"].split(";")
    if "host" not in signed or any(name not in headers for name in signed):
        return "SignedHeaders must include host and name only headers that were sent"
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].strip().split())}\n" for name in signed)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(query, keep_blank_values=True))
    )
    canonical_request = "\n".join(
        [
            method,
            quote(raw_path, safe="/-_.~%"),
            canonical_query,
            canonical_headers,
            match["signed"],
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{match['date']}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_access_key}".encode()
    for part in (match["date"], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None
