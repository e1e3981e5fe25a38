# Signs the requests of tests/s3_sigv4_test.ts with botocore's S3 SigV4
# signers (Debian's python3-botocore) at a fixed time, for comparison.
import datetime
import json
import sys

import botocore.auth as auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

cases = json.load(sys.stdin)
out = []
for case in cases:
    fixed = datetime.datetime.strptime(case["date"], "%Y%m%dT%H%M%SZ")

    class FixedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    # Older botocore reads datetime.datetime.utcnow(), newer get_current_datetime().
    auth.datetime = type("datetime", (), {"datetime": FixedDatetime})
    auth.get_current_datetime = lambda *args, **kwargs: fixed
    credentials = Credentials(
        case["accessKeyId"], case["secretAccessKey"], case.get("sessionToken")
    )
    request = AWSRequest(
        method=case["method"],
        url=case["url"],
        headers=case.get("headers", {}),
        data=case.get("body", "").encode(),
    )
    if case.get("unsigned"):
        # What botocore.config.Config(s3={"payload_signing_enabled": False}) sets.
        request.context["client_config"] = type(
            "Config", (), {"s3": {"payload_signing_enabled": False}}
        )()
    if "expiresIn" in case:
        auth.S3SigV4QueryAuth(
            credentials, "s3", case["region"], expires=case["expiresIn"]
        ).add_auth(request)
        out.append({"url": request.url})
    else:
        auth.S3SigV4Auth(credentials, "s3", case["region"]).add_auth(request)
        out.append({k.lower(): v for k, v in request.headers.items()})
json.dump(out, sys.stdout)
