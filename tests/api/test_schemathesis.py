"""schemathesis over ``/openapi.json`` against a real server: every operation, with the root token, valid and
invalid input (its coverage and fuzzing phases, a fixed seed, deterministic generation): no answer is a 5xx, and
every answer matches what the document declares (status code, media type, the JSON schema of the body; a 405 names
the allowed methods; a request without a token is refused).

The path parameters are real more often than not (a user with mailboxes, messages and attachments), so the routes'
own code runs rather than only the id checks. Operations that would break that setup for the others get data of
their own: ``DELETE /users/:user`` a user of its own, and the routes that delete mailboxes, messages or addresses,
change the user (``PUT /users/:user``: it may disable it) or apply an action to every match (``POST
/users/:user/search``: it may delete them) a second user, with its own mailboxes and messages. The WebSocket has no
OpenAPI operation (it is ``x-websocket``); the EventSource on the same path is read for a moment (schemathesis cuts
an event stream short at its request timeout).
"""

from __future__ import annotations

import collections
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.api.conftest import ROOT_TOKEN, Api
from wildduck.api.docs import START_SCRIPT

pytestmark = pytest.mark.slow

#: test cases per operation in the fuzzing phase (the coverage phase adds its own, per parameter)
MAX_EXAMPLES = 15

WITH_ATTACHMENT = (
    b"From: Carol <carol@example.org>\r\nTo: Fuzz <fuzz@example.com>, undisclosed-recipients: ;\r\n"
    b"Cc: Dave <dave@example.net>\r\nReply-To: lists@example.org\r\nList-ID: Fuzzers <fuzz.example.org>\r\n"
    b"List-Unsubscribe: <mailto:leave@example.org>\r\nSubject: =?utf-8?q?r=C3=A9sum=C3=A9?=\r\n"
    b"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\nMessage-ID: <one@example.org>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <img src=\"cid:logo@x\"></p>\r\n"
    b"--b1\r\nContent-Type: image/png; name=logo.png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: inline; filename=logo.png\r\n\r\niVBORw0KGgo=\r\n"
    b"--b1\r\nContent-Type: text/plain; charset=iso-8859-1; name=notes.txt\r\nContent-Disposition: attachment\r\n"
    b"\r\nna\xefve\r\n--b1--\r\n"
)


async def upload(api: Api, user: str, mailbox: str, **body: Any) -> None:
    r = await api.root.post(f"/users/{user}/mailboxes/{mailbox}/messages", json=body)
    assert r.status_code == 200, r.text


async def user_with_mail(api: Api, name: str) -> dict[str, Any]:
    """A user with an address, a mailbox of its own besides the default ones, and messages in INBOX and in it."""
    user = await api.create_user(name, address=f"{name}@example.com")
    mailboxes = {m["path"]: m["id"] for m in (await api.root.get(f"/users/{user}/mailboxes")).json()["results"]}
    r = await api.root.post(f"/users/{user}/mailboxes", json={"path": "Fuzz/Deep"})
    assert r.status_code == 200, r.text
    own = r.json()["id"]
    for mailbox in (mailboxes["INBOX"], own):
        r = await api.root.post(f"/users/{user}/mailboxes/{mailbox}/messages", content=WITH_ATTACHMENT,
                                headers={"Content-Type": "message/rfc822"})
        assert r.status_code == 200, r.text
        await upload(api, user, mailbox, subject="plain", text="just text\n\n> quoted", flagged=True,
                     to=[{"name": "Eve", "address": "eve@example.com"}])
        await upload(api, user, mailbox, subject="composed", html="<b>bold</b>", unseen=True, attachments=[
            {"filename": "a.txt", "contentType": "text/plain", "content": "aGVsbG8="}])
    addresses = (await api.root.get(f"/users/{user}/addresses")).json()["results"]
    extra = await api.root.post(f"/users/{user}/addresses", json={"address": f"{name}.alias@example.com"})
    assert extra.status_code == 200, extra.text
    return {"id": user, "mailboxes": [mailboxes["INBOX"], own, mailboxes["Trash"]],
            "addresses": [a["id"] for a in addresses] + [extra.json()["id"]]}


def config(fuzz: dict[str, Any], scratch: dict[str, Any], victim: str) -> str:
    """schemathesis.toml: the token, the seed, the phases and checks, and which ids each operation is given."""
    def dictionary(name: str, values: list[str]) -> str:
        return f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n"

    def bindings(users: str, mailboxes: str, addresses: str) -> str:
        return (f'"path.user_id" = {{ dictionary = "{users}", probability = 0.85 }}\n'
                f'"path.mailbox_id" = {{ dictionary = "{mailboxes}", probability = 0.85 }}\n'
                f'"path.address_id" = {{ dictionary = "{addresses}", probability = 0.85 }}\n')

    own_data = ("update_user", "delete_mailbox", "empty_mailbox", "delete_message", "search_apply", "delete_address",
                "update_many", "update_one")
    # ids seen in earlier answers are not given to these (GET /users lists every user: DELETE would take them)
    no_reuse = "[operations.phases.fuzzing]\nextra-data-sources.responses = false\n"
    operations = "".join(
        f'[[operations]]\ninclude-operation-id = "{operation}"\n{no_reuse}[operations.parameters]\n'
        + bindings("scratch_users", "scratch_mailboxes", "scratch_addresses")
        + '"path.message_id" = { dictionary = "uids", probability = 0.85 }\n'
        for operation in own_data)
    return f"""
headers = {{ "X-Access-Token" = "{ROOT_TOKEN}" }}
workers = 1
request-timeout = 5.0
continue-on-failure = true
warnings = false

[generation]
mode = "all"
max-examples = {MAX_EXAMPLES}
deterministic = true
database = "none"
no-shrink = true
# the token is the root one above; what a request without one or with a wrong one gets, ignored_auth checks
with-security-parameters = false

[phases.examples]
enabled = false
# valid and invalid values at every parameter's boundaries (its own values: the ids below are not used)
[phases.coverage]
enabled = true
# valid requests, most with the ids of real resources: the routes' own code runs past the id checks
[phases.fuzzing]
enabled = true
generation.mode = "positive"
[phases.stateful]
enabled = false

[checks]
enabled = true
# "schema-valid input must be accepted": WildDuck's routes refuse some input no JSON schema can describe, with 400
# naming the field (a mailbox path with forbidden characters, an address without a domain, a PUT that changes
# nothing, "me" with the root token); what is refused is still checked: a 400 in WildDuck's shape, as documented
positive_data_acceptance.enabled = false
# invalid input is refused with 400 (or 404 for what names nothing); a request line or headers over Hypercorn's
# 16 KiB limit are refused by Hypercorn itself, with 431 (documented for every operation)
negative_data_rejection.expected-statuses = [400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429, 431]

{dictionary("users", [fuzz["id"]])}
{dictionary("mailboxes", fuzz["mailboxes"])}
{dictionary("addresses", fuzz["addresses"])}
{dictionary("scratch_users", [scratch["id"]])}
{dictionary("scratch_mailboxes", scratch["mailboxes"])}
{dictionary("scratch_addresses", scratch["addresses"])}
{dictionary("victims", [victim])}
{dictionary("uids", ["1", "2", "3", "1:*", "2,3"])}
{dictionary("attachments", ["ATT00001", "ATT00002", "att00003"])}
{dictionary("assets", ["swagger-ui.css", START_SCRIPT, "favicon-16x16.png"])}
{dictionary("usernames", ["fuzz", "fuzz@example.com"])}

[parameters]
{bindings("users", "mailboxes", "addresses")}"path.message_id" = {{ dictionary = "uids", probability = 0.85 }}
"path.attachment_id" = {{ dictionary = "attachments", probability = 0.85 }}
"path.asset" = {{ dictionary = "assets", probability = 0.85 }}
"path.username" = {{ dictionary = "usernames", probability = 0.85 }}

[[operations]]
include-operation-id = "delete_user"
[operations.phases.fuzzing]
extra-data-sources.responses = false
[operations.parameters]
"path.user_id" = {{ dictionary = "victims", probability = 0.85 }}

[[operations]]
include-operation-id = "stream"
request-timeout = 1.0

# a refused password costs a second (the failed-login penalty): fewer of them
[[operations]]
include-operation-id = "authenticate"
phases.coverage.generation.mode = "negative"
phases.fuzzing.generation.max-examples = 5

{operations}
"""


def statuses(ndjson: str) -> dict[str, collections.Counter[int]]:
    """Per operation (``GET /users``), how often each status came back in the fuzzing phase."""
    out: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for line in ndjson.splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None or finished["phase"] != "fuzzing":
            continue
        for interaction in finished["recorder"].get("interactions", {}).values():
            if interaction.get("response"):
                out[finished["recorder"]["label"]][interaction["response"]["status_code"]] += 1
    return out


async def test_every_operation_answers_as_documented(api: Api, tmp_path: Path) -> None:
    fuzz = await user_with_mail(api, "fuzz")
    scratch = await user_with_mail(api, "scratch")
    victim = await api.create_user("victim")
    await trio.Path(tmp_path / "schemathesis.toml").write_text(config(fuzz, scratch, victim))
    report = tmp_path / "report"
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(tmp_path / "schemathesis.toml"),
               "run", f"{api.base}/openapi.json", "--report", "junit,ndjson", "--report-dir", str(report),
               "--no-color"]
    with trio.fail_after(600):
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path)
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, output[-20000:]

    doc = (await api.root.get("/openapi.json")).json()
    # schemathesis leaves out the document's own operation (test_openapi checks it against its schema)
    operations = {f"{m.upper()} {path}" for path, item in doc["paths"].items() for m in item
                  if m in ("get", "post", "put", "delete")} - {"GET /openapi.json"}
    (junit,) = [ET.parse(f) for f in report.glob("junit-*.xml")]
    suite = junit.getroot()
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
    assert {case.get("name") for case in suite.iter("testcase")} == operations  # every one of them, none skipped
    (ndjson,) = [await trio.Path(f).read_text() for f in report.glob("ndjson-*.ndjson")]
    seen = statuses(ndjson)
    assert set(seen) == operations
    assert not [(op, status) for op, counts in seen.items() for status in counts if status >= 500]
    # the ids given were used: the routes answered for real resources, not only "no such user"
    for op in ("GET /users/{user_id}/mailboxes", "GET /users/{user_id}/mailboxes/{mailbox_id}",
               "GET /users/{user_id}/mailboxes/{mailbox_id}/messages",
               "GET /users/{user_id}/mailboxes/{mailbox_id}/messages/{message_id}",
               "GET /users/{user_id}/mailboxes/{mailbox_id}/messages/{message_id}/message.eml",
               "GET /users/{user_id}/mailboxes/{mailbox_id}/messages/{message_id}/attachments/{attachment_id}",
               "POST /users/{user_id}/mailboxes/{mailbox_id}/messages", "GET /users/{user_id}/search",
               "POST /users/{user_id}/search", "PUT /users/{user_id}/mailboxes/{mailbox_id}/messages/{message_id}",
               "GET /docs/{asset}", "DELETE /users/{user_id}"):
        assert seen[op][200] > 0, (op, seen[op])
    # and the data the other operations use survived the destructive ones
    r = await api.root.get(f"/users/{fuzz['id']}/mailboxes/{fuzz['mailboxes'][0]}/messages")
    assert r.status_code == 200 and r.json()["total"] >= 3, r.text
