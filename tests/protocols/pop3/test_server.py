"""The sans-I/O POP3 server: every command in every state, exact reply bytes, fed whole and byte by byte; the
RETR/TOP writer against a reference rendering in arbitrary chunkings."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck.protocols.pop3 import server as pop3
from wildduck.protocols.pop3.server import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Ended,
    Listing,
    Login,
    MessageWriter,
    POP3Server,
    Retrieve,
    StartTLS,
    State,
    Update,
)

HOST = "pop.example"
#: the maildrop's contents by UID: a dot-stuffed line, a line of one dot, one without a final CRLF
CONTENTS = {
    101: b"Subject: one\r\n\r\nbody one\r\n",
    102: b"Subject: two\r\n\r\n.dot line\r\nsecond\r\n.\r\n",
    103: b"Subject: three\r\n\r\nno final line end",
}
MAILDROP = [Listing(uid, len(content), f"uid-{uid}") for uid, content in CONTENTS.items()]
M1, M2, M3 = MAILDROP
TOTAL = sum(m.size for m in MAILDROP)
LOGGED_IN = f"+OK logged in, 3 messages ({TOTAL} octets)\r\n".encode()
BYE = b"+OK pop.example closing connection\r\n"
BASE_CAPS = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UTF8 USER"]
PLAINTEXT_REFUSED = (b"-ERR [AUTH] plaintext authentication is disallowed on non-secure connections; "
                     b"use STLS or the TLS port\r\n")


def new(**kw: object) -> POP3Server:
    return POP3Server(HOST, **kw)  # type: ignore[arg-type]


def plain(authz: str, authc: str, password: str) -> str:
    return base64.b64encode(f"{authz}\0{authc}\0{password}".encode()).decode()


def stuffed(data: bytes) -> bytes:
    """Reference dot-stuffing, line by line: a CRLF is added to data that does not end with one, every line that
    starts with "." gets another, then the terminating line."""
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data.split(b"\r\n")[:-1]
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


def top(message: bytes, n: int) -> bytes:
    """Reference TOP (RFC 1939 7): the header up to and including the first empty line, then ``n`` body lines;
    a message without an empty line is all header."""
    if message.startswith(b"\r\n"):
        start = 2
    else:
        at = message.find(b"\r\n\r\n")
        if at < 0:
            return message
        start = at + 4
    end = start
    for _ in range(n):
        at = message.find(b"\r\n", end)
        if at < 0:
            return message
        end = at + 2
    return message[:end]


def multi(first: str, lines: Sequence[str]) -> bytes:
    """A multi-line reply as RFC 1939 3 frames it (for lines that need no stuffing)."""
    return (first + "\r\n" + "".join(line + "\r\n" for line in lines) + ".\r\n").encode()


def parse_multiline(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(first line, the lines unstuffed, what follows the terminating line)."""
    first, _, rest = data.partition(b"\r\n")
    lines: list[bytes] = []
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        assert sep, "unterminated multi-line response"
        if line == b".":
            return first, lines, rest
        lines.append(line[1:] if line.startswith(b".") else line)


class Client:
    """Drives a :class:`POP3Server` as the session does and collects every byte the server sends.

    Logins with the password ``secret`` are accepted (with :data:`MAILDROP`); RETR/TOP send the content from
    :data:`CONTENTS` in 7-byte chunks through the writer (a UID missing there is refused); STLS is flushed then
    completed; QUIT's update succeeds.
    """

    def __init__(self, p: POP3Server | None = None, *, bytewise: bool = False,
                 contents: dict[int, bytes] = CONTENTS) -> None:
        self.p = p if p is not None else new()
        self.bytewise = bytewise
        self.contents = contents
        self.events: list[object] = []
        self.ended = False

    def send(self, data: bytes) -> bytes:
        """Feed ``data`` (whole or byte by byte) and return what the server sent meanwhile."""
        out = bytearray()
        for chunk in [data[i:i + 1] for i in range(len(data))] if self.bytewise else [data] if data else []:
            self.p.receive_data(chunk)
            out += self.drain()
        return bytes(out)

    def send_lines(self, *lines: str) -> bytes:
        return self.send("".join(line + "\r\n" for line in lines).encode())

    def drain(self) -> bytes:
        out = bytearray()
        while not self.ended:
            e = self.p.next_event()
            if e is NEED_DATA:
                break
            assert e is not PAUSED, "an answer is owed"
            self.events.append(e)
            if isinstance(e, Login):
                if e.password == "secret":
                    self.p.accept_login(MAILDROP)
                else:
                    self.p.refuse_login("invalid credentials")
            elif isinstance(e, StartTLS):
                out += self.p.data_to_send()  # the +OK goes out in the clear, then the handshake
                self.p.tls_started()
            elif isinstance(e, Retrieve):
                content = self.contents.get(e.message.uid)
                if content is None:
                    self.p.refuse_message(f"message {e.number} was deleted meanwhile")
                    continue
                first, writer = self.p.begin_message(e)
                out += first
                for i in range(0, len(content), 7):
                    out += writer.feed(content[i:i + 7])
                    if writer.done:
                        break
                out += writer.end()
                self.p.message_sent(e)
            elif isinstance(e, Update):
                self.p.update_done()
            else:
                assert isinstance(e, (Ended, ConnectionClosed)), e
                self.ended = True
        out += self.p.data_to_send()
        return bytes(out)

    def eof(self) -> bytes:
        self.p.receive_data(b"")
        return self.drain()

    def login(self) -> Client:
        assert self.send_lines("USER alice", "PASS secret") == b"+OK send your password\r\n" + LOGGED_IN
        return self


@pytest.fixture(params=[False, True], ids=["whole", "bytewise"])
def bytewise(request: pytest.FixtureRequest) -> bool:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def client(bytewise: bool) -> Client:
    return Client(bytewise=bytewise)


@pytest.fixture
def session(client: Client) -> Client:
    """A client logged in to :data:`MAILDROP`."""
    return client.login()


def test_events_and_sentinels_are_the_shared_ones() -> None:
    from wildduck.protocols import _base

    assert pop3.NEED_DATA is _base.NEED_DATA and pop3.PAUSED is _base.PAUSED
    assert pop3.ConnectionClosed is _base.ConnectionClosed


def test_greeting() -> None:
    assert new().greeting() == b"+OK pop.example wildduck POP3 ready\r\n"


# --- CAPA ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "extra"),
    [
        ({}, ["USER", "SASL PLAIN"]),
        ({"tls_available": True}, ["USER", "SASL PLAIN", "STLS"]),
        ({"tls_available": True, "plaintext_allowed": False}, ["STLS"]),
        ({"plaintext_allowed": False}, []),
        ({"tls_available": True, "tls_active": True, "plaintext_allowed": False}, ["USER", "SASL PLAIN"]),
        ({"tls_active": True, "plaintext_allowed": False}, ["USER", "SASL PLAIN"]),
    ],
    ids=["plaintext", "stls-offered", "stls-only", "no-login-possible", "tls-active", "implicit-tls"],
)
def test_capa_before_and_after_login(options: dict[str, bool], extra: list[str], bytewise: bool) -> None:
    c = Client(new(implementation="wildduck-9", **options), bytewise=bytewise)
    expected = multi("+OK capability list follows", [*BASE_CAPS, *extra, "IMPLEMENTATION wildduck-9"])
    assert c.send(b"CAPA\r\n") == expected
    if "USER" in extra:
        # RFC 2449 5: what is available in the AUTHORIZATION state is announced in both states
        c.login()
        assert c.send(b"capa\r\n") == expected


def test_capa_after_stls_offers_login_and_no_more_stls() -> None:
    c = Client(new(tls_available=True, plaintext_allowed=False))
    assert c.send(b"STLS\r\n") == b"+OK begin TLS negotiation\r\n"
    assert c.send(b"CAPA\r\n") == multi("+OK capability list follows",
                                         [*BASE_CAPS, "USER", "SASL PLAIN", "IMPLEMENTATION wildduck"])


def test_capa_takes_no_argument(client: Client) -> None:
    assert client.send(b"CAPA all\r\n") == b"-ERR CAPA takes no argument\r\n"


def test_capa_lines_parse_back_to_the_capabilities() -> None:
    """A capability is never mistaken for the terminating line, nor mangled by stuffing."""
    p = new(implementation=".hidden", tls_available=True)
    first, lines, rest = parse_multiline(Client(p).send(b"CAPA\r\n"))
    assert first == b"+OK capability list follows" and rest == b""
    assert lines == [c.encode() for c in p.capabilities()]
    assert lines[-1] == b"IMPLEMENTATION .hidden"


# --- USER / PASS -----------------------------------------------------------------------------------------------------
def test_user_pass_login(client: Client) -> None:
    assert client.send(b"USER alice\r\n") == b"+OK send your password\r\n"
    assert client.send(b"PASS secret\r\n") == LOGGED_IN
    assert client.events == [Login("alice", "secret", "USER")]
    assert client.p.state is State.TRANSACTION and client.p.messages == MAILDROP


def test_lowercase_commands_and_bare_lf(client: Client) -> None:
    assert client.send(b"user alice\npass secret\n") == b"+OK send your password\r\n" + LOGGED_IN
    assert client.send(b"sTaT\n") == f"+OK 3 {TOTAL}\r\n".encode()


def test_password_is_kept_verbatim(client: Client) -> None:
    """RFC 1939 7: spaces in PASS's argument may be part of the password; USER's argument is trimmed."""
    client.send(b"USER  alice \r\nPASS  correct horse  battery \r\n")
    assert client.events == [Login("alice", " correct horse  battery ", "USER")]


def test_pass_without_user(client: Client) -> None:
    assert client.send(b"PASS secret\r\n") == b"-ERR send USER first\r\n"
    assert client.events == []


@pytest.mark.parametrize("between", ["CAPA", "NOOP", "UTF8", "USER", "FOO"])
def test_pass_must_follow_user_immediately(client: Client, between: str) -> None:
    """RFC 1939 7: PASS "may only be given ... immediately after a successful USER command"."""
    client.send_lines("USER alice", between)
    assert client.send(b"PASS secret\r\n") == b"-ERR send USER first\r\n"
    assert client.events == []


def test_pass_after_a_refused_login_needs_user_again(client: Client) -> None:
    assert client.send_lines("USER alice", "PASS wrong") == (b"+OK send your password\r\n"
                                                             b"-ERR [AUTH] invalid credentials\r\n")
    assert client.send(b"PASS secret\r\n") == b"-ERR send USER first\r\n"
    assert client.send_lines("USER alice", "PASS secret").endswith(LOGGED_IN)


def test_user_and_pass_need_arguments(client: Client) -> None:
    assert client.send(b"USER\r\n") == b"-ERR USER needs a user name\r\n"
    assert client.send(b"USER   \r\n") == b"-ERR USER needs a user name\r\n"
    assert client.send_lines("USER alice", "PASS") == b"+OK send your password\r\n-ERR PASS needs a password\r\n"


def test_credentials_that_are_not_utf8_stay_distinct(client: Client) -> None:
    client.send(b"USER j\xc3\xb6rg\r\nPASS p\xe4ss\r\n")
    assert client.events == [Login("jörg", "p\ufffdss", "USER")]


def test_plaintext_login_refused_without_tls() -> None:
    c = Client(new(plaintext_allowed=False, tls_available=True))
    assert c.send(b"USER alice\r\n") == PLAINTEXT_REFUSED
    assert c.send(b"PASS secret\r\n") == b"-ERR send USER first\r\n"
    assert c.send(f"AUTH PLAIN {plain('', 'alice', 'secret')}\r\n".encode()) == PLAINTEXT_REFUSED
    assert c.send(b"AUTH PLAIN\r\n") == PLAINTEXT_REFUSED
    assert c.send(b"AUTH\r\n") == b"+OK mechanisms follow\r\n.\r\n"
    assert c.events == []


# --- AUTH ------------------------------------------------------------------------------------------------------------
def test_auth_without_argument_lists_mechanisms(client: Client) -> None:
    assert client.send(b"AUTH\r\n") == b"+OK mechanisms follow\r\nPLAIN\r\n.\r\n"


def test_auth_plain_with_initial_response(client: Client) -> None:
    assert client.send(f"auth plain {plain('', 'alice', 'secret')}\r\n".encode()) == LOGGED_IN
    assert client.events == [Login("alice", "secret", "PLAIN")]


def test_auth_plain_same_authzid_and_spaces_in_password(client: Client) -> None:
    client.send(f"AUTH PLAIN {plain('alice', 'alice', ' s e c ')}\r\n".encode())
    assert client.events == [Login("alice", " s e c ", "PLAIN")]


def test_auth_plain_challenge_then_response(client: Client) -> None:
    assert client.send(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert client.send(f"{plain('', 'alice', 'secret')}\r\n".encode()) == LOGGED_IN
    assert client.events == [Login("alice", "secret", "PLAIN")]


def test_auth_plain_challenge_pipelined(client: Client) -> None:
    out = client.send(f"AUTH PLAIN\r\n{plain('', 'alice', 'secret')}\r\nSTAT\r\n".encode())
    assert out == b"+ \r\n" + LOGGED_IN + f"+OK 3 {TOTAL}\r\n".encode()


def test_auth_cancelled(client: Client) -> None:
    assert client.send(b"AUTH PLAIN\r\n*\r\n") == b"+ \r\n-ERR authentication cancelled\r\n"
    assert client.send(b"*\r\n") == b"-ERR unknown command '*'\r\n"  # the exchange is over
    assert client.events == []


@pytest.mark.parametrize(
    ("response", "reply"),
    [
        (b"=", b"-ERR malformed PLAIN response: expected authzid NUL authcid NUL password\r\n"),
        (b"!!!notbase64", b"-ERR malformed PLAIN response: not base64\r\n"),
        (b"YWxpY2U", b"-ERR malformed PLAIN response: not base64\r\n"),  # bad padding
        (base64.b64encode(b"alice\0secret"), b"-ERR malformed PLAIN response: expected authzid NUL authcid NUL "
                                              b"password\r\n"),
        (plain("bob", "alice", "secret").encode(), b"-ERR logging in as another user is not supported\r\n"),
    ],
    ids=["empty", "not-base64", "bad-padding", "two-fields", "other-authzid"],
)
def test_auth_plain_bad_responses(client: Client, response: bytes, reply: bytes) -> None:
    assert client.send(b"AUTH PLAIN " + response + b"\r\n") == reply
    assert client.send(b"AUTH PLAIN\r\n" + response + b"\r\n") == b"+ \r\n" + reply
    assert client.events == []
    assert client.send_lines("USER alice", "PASS secret").endswith(LOGGED_IN)  # the session goes on


def test_auth_unsupported_mechanism(client: Client) -> None:
    assert client.send(b"AUTH CRAM-MD5\r\n") == b"-ERR unsupported mechanism 'CRAM-MD5'\r\n"
    assert client.send(b"AUTH X\rY\r\n") == b"-ERR unsupported mechanism 'X?Y'\r\n"  # control bytes not echoed


def test_overlong_challenge_response_ends_the_exchange() -> None:
    c = Client(new(max_line=300))
    assert c.send(b"AUTH PLAIN\r\n" + b"A" * 1000 + b"\r\n") == b"+ \r\n-ERR line too long\r\n"
    assert c.send(b"USER alice\r\n") == b"+OK send your password\r\n"  # a command again, not a response


# --- STLS ------------------------------------------------------------------------------------------------------------
def test_stls_discards_what_was_pipelined_behind_it() -> None:
    """RFC 2595 4 / the STARTTLS injection: bytes sent in the clear behind STLS are never executed."""
    c = Client(new(tls_available=True, plaintext_allowed=False))
    assert c.send(b"STLS\r\nUSER x\r\nPASS secret\r\nCAPA") == b"+OK begin TLS negotiation\r\n"
    assert c.events == [StartTLS()]
    assert len(c.p._rx) == 0
    assert c.p.tls_active
    assert c.send(b"PASS secret\r\n") == b"-ERR send USER first\r\n"  # no injected USER survived
    assert c.events == [StartTLS()]


def test_stls_handshake_then_login() -> None:
    p = new(tls_available=True, plaintext_allowed=False)
    p.receive_data(b"STLS\r\n")
    assert p.next_event() == StartTLS()
    assert p.next_event() is PAUSED  # nothing is read until the handshake is done
    assert p.data_to_send() == b"+OK begin TLS negotiation\r\n"
    p.tls_started()
    c = Client(p)
    c.login()


def test_user_given_before_stls_is_forgotten() -> None:
    c = Client(new(tls_available=True))
    assert c.send(b"USER alice\r\n") == b"+OK send your password\r\n"
    assert c.send(b"STLS\r\n") == b"+OK begin TLS negotiation\r\n"
    assert c.send(b"PASS secret\r\n") == b"-ERR send USER first\r\n"
    assert not any(isinstance(e, Login) for e in c.events)


@pytest.mark.parametrize(
    ("options", "reply"),
    [
        ({}, b"-ERR STLS is not available\r\n"),
        ({"tls_available": True, "tls_active": True}, b"-ERR STLS is not available (TLS is already active)\r\n"),
    ],
    ids=["no-certificate", "implicit-tls"],
)
def test_stls_refused(options: dict[str, bool], reply: bytes) -> None:
    c = Client(new(**options))
    assert c.send(b"STLS\r\nCAPA\r\n").startswith(reply + b"+OK capability list follows\r\n")
    assert c.events == []


def test_stls_twice_and_with_argument() -> None:
    c = Client(new(tls_available=True))
    assert c.send(b"STLS now\r\n") == b"-ERR STLS takes no argument\r\n"
    c.send(b"STLS\r\n")
    assert c.send(b"STLS\r\n") == b"-ERR STLS is not available (TLS is already active)\r\n"
    assert c.events == [StartTLS()]


def test_discard_buffer_returns_the_unread_bytes() -> None:
    p = new()
    p.receive_data(b"CAPA\r\nUSER x\r\nPA")
    p.receive_data(b"SS")
    assert p.next_event() is NEED_DATA  # the CAPA and USER are answered
    assert p.discard_buffer() == b"PASS"
    assert p.discard_buffer() == b""


# --- UTF8 ------------------------------------------------------------------------------------------------------------
def test_utf8(client: Client) -> None:
    assert client.send(b"UTF8 on\r\n") == b"-ERR UTF8 takes no argument\r\n"
    assert not client.p.utf8
    assert client.send(b"UTF8\r\n") == b"+OK UTF-8 mode on\r\n"
    assert client.p.utf8
    client.login()
    assert client.send(b"UTF8\r\n") == b"-ERR UTF8 is not valid after logging in\r\n"


# --- TRANSACTION: STAT, LIST, UIDL ----------------------------------------------------------------------------------
def test_stat_list_uidl(session: Client) -> None:
    assert session.send(b"STAT\r\n") == f"+OK 3 {TOTAL}\r\n".encode()
    assert session.send(b"LIST\r\n") == multi("+OK 3 messages", [f"{i} {m.size}" for i, m in enumerate(MAILDROP, 1)])
    assert session.send(b"UIDL\r\n") == multi("+OK 3 messages", ["1 uid-101", "2 uid-102", "3 uid-103"])
    assert session.send(b"LIST 2\r\n") == f"+OK 2 {M2.size}\r\n".encode()
    assert session.send(b"UIDL 3\r\n") == b"+OK 3 uid-103\r\n"
    assert session.send(b"LIST  0000000001\r\n") == f"+OK 1 {M1.size}\r\n".encode()  # extra spaces before it
    assert session.send(b"LIST 1 \r\n").startswith(b"-ERR")  # a trailing space is malformed (RFC 2449 3)


@pytest.mark.parametrize("command", ["STAT x", "RSET x", "NOOP x"])
def test_commands_without_arguments_refuse_one(session: Client, command: str) -> None:
    name = command.split()[0]
    assert session.send_lines(command) == f"-ERR {name} takes no argument\r\n".encode()


def test_empty_maildrop() -> None:
    p = new()
    p.receive_data(b"USER a\r\nPASS b\r\n")
    assert isinstance(p.next_event(), Login)
    p.accept_login([], "welcome")
    c = Client(p)
    assert p.data_to_send() == b"+OK send your password\r\n+OK welcome, 0 messages (0 octets)\r\n"
    assert c.send(b"STAT\r\nLIST\r\nUIDL\r\nLIST 1\r\n") == (
        b"+OK 0 0\r\n+OK 0 messages\r\n.\r\n+OK 0 messages\r\n.\r\n-ERR no such message, only 0 in maildrop\r\n")


def test_deleted_messages_are_hidden(session: Client) -> None:
    assert session.send(b"DELE 2\r\n") == b"+OK message 2 deleted\r\n"
    assert session.send(b"STAT\r\n") == f"+OK 2 {M1.size + M3.size}\r\n".encode()
    assert session.send(b"LIST\r\n") == multi("+OK 2 messages", [f"1 {M1.size}", f"3 {M3.size}"])
    assert session.send(b"UIDL\r\n") == multi("+OK 2 messages", ["1 uid-101", "3 uid-103"])
    for command in ("LIST 2", "UIDL 2", "RETR 2", "TOP 2 0", "DELE 2"):
        assert session.send_lines(command) == b"-ERR message 2 is deleted\r\n"
    assert session.send(b"RSET\r\n") == b"+OK maildrop has 3 messages\r\n"
    assert session.send(b"STAT\r\n") == f"+OK 3 {TOTAL}\r\n".encode()
    assert session.send(b"LIST 2\r\n") == f"+OK 2 {M2.size}\r\n".encode()


def test_noop(session: Client) -> None:
    assert session.send(b"NOOP\r\n") == b"+OK\r\n"


# --- RETR / TOP ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [1, 2, 3])
def test_retr(session: Client, number: int) -> None:
    m = MAILDROP[number - 1]
    out = session.send(f"RETR {number}\r\n".encode())
    assert out == f"+OK {m.size} octets\r\n".encode() + stuffed(CONTENTS[m.uid])
    assert session.events[-1] == Retrieve(number, m, None)


def test_retr_output_exactly() -> None:
    c = Client().login()
    assert c.send(b"RETR 2\r\n") == (f"+OK {M2.size} octets\r\n".encode()
                                     + b"Subject: two\r\n\r\n..dot line\r\nsecond\r\n..\r\n.\r\n")
    assert c.send(b"RETR 3\r\n") == (f"+OK {M3.size} octets\r\n".encode()
                                     + b"Subject: three\r\n\r\nno final line end\r\n.\r\n")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("TOP 2 0", b"Subject: two\r\n\r\n.\r\n"),
        ("TOP 2 1", b"Subject: two\r\n\r\n..dot line\r\n.\r\n"),
        ("TOP 2 3", b"Subject: two\r\n\r\n..dot line\r\nsecond\r\n..\r\n.\r\n"),
        ("TOP 2 9999999999", b"Subject: two\r\n\r\n..dot line\r\nsecond\r\n..\r\n.\r\n"),
        ("TOP 3 1", b"Subject: three\r\n\r\nno final line end\r\n.\r\n"),
        ("top 1 00", b"Subject: one\r\n\r\n.\r\n"),
    ],
)
def test_top(session: Client, command: str, expected: bytes) -> None:
    assert session.send_lines(command) == b"+OK top of message follows\r\n" + expected
    event = session.events[-1]
    assert isinstance(event, Retrieve) and event.lines == int(command.split()[2])


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("TOP 1", b"-ERR TOP needs a message number and a line count\r\n"),
        ("TOP", b"-ERR TOP needs a message number and a line count\r\n"),
        ("TOP 1 2 3", b"-ERR TOP needs a message number and a line count\r\n"),
        ("TOP 1 -1", b"-ERR invalid line count '-1'\r\n"),
        ("TOP 1 x", b"-ERR invalid line count 'x'\r\n"),
        ("TOP 1 99999999999", b"-ERR invalid line count '99999999999'\r\n"),
        ("TOP 0 1", b"-ERR no such message, only 3 in maildrop\r\n"),
        ("TOP x 1", b"-ERR invalid message number 'x'\r\n"),
    ],
)
def test_top_bad_arguments(session: Client, command: str, reply: bytes) -> None:
    assert session.send_lines(command) == reply


_BAD_NUMBERS = [
    ("0", b"-ERR no such message, only 3 in maildrop\r\n"),
    ("4", b"-ERR no such message, only 3 in maildrop\r\n"),
    ("9999999999", b"-ERR no such message, only 3 in maildrop\r\n"),
    ("-1", b"-ERR invalid message number '-1'\r\n"),
    ("+1", b"-ERR invalid message number '+1'\r\n"),
    ("99999999999999999999", b"-ERR invalid message number '99999999999999999999'\r\n"),
    ("00000000001", b"-ERR invalid message number '00000000001'\r\n"),
    ("one", b"-ERR invalid message number 'one'\r\n"),
    ("1.0", b"-ERR invalid message number '1.0'\r\n"),
    ("\uff11", b"-ERR invalid message number '?'\r\n"),  # a fullwidth digit: isdigit() but not ASCII
    ("1 2", b"-ERR invalid message number '1 2'\r\n"),
]


@pytest.mark.parametrize(
    ("command", "reply"),
    [(f"{name} {number}", reply) for name in ("RETR", "DELE", "LIST", "UIDL") for number, reply in _BAD_NUMBERS]
    + [(f"TOP {number} 1", reply) for number, reply in _BAD_NUMBERS if " " not in number],
)
def test_message_numbers(session: Client, command: str, reply: bytes) -> None:
    assert session.send_lines(command) == reply
    assert not any(isinstance(e, Retrieve) for e in session.events)
    assert session.p.deleted == set()


@pytest.mark.parametrize("command", ["RETR", "DELE"])
def test_commands_that_need_a_number(session: Client, command: str) -> None:
    assert session.send_lines(command) == b"-ERR invalid message number ''\r\n"


def test_dele_twice_and_retr_of_deleted(session: Client) -> None:
    assert session.send(b"DELE 1\r\nDELE 1\r\nRETR 1\r\n") == (
        b"+OK message 1 deleted\r\n-ERR message 1 is deleted\r\n-ERR message 1 is deleted\r\n")


def test_refused_message_keeps_the_session_going() -> None:
    c = Client(contents={101: CONTENTS[101]}).login()
    assert c.send(b"RETR 2\r\nNOOP\r\n") == b"-ERR message 2 was deleted meanwhile\r\n+OK\r\n"
    c.send(b"QUIT\r\n")
    assert c.events[-2] == Update((), ())  # a refused RETR is not retrieved


# --- QUIT and the UPDATE state ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("commands", "retrieved", "deleted"),
    [
        ([], (), ()),
        (["RETR 3", "RETR 1"], (M1, M3), ()),
        (["RETR 3", "TOP 1 0", "RETR 2", "DELE 2"], (M3,), (M2,)),
        (["DELE 3", "DELE 1"], (), (M1, M3)),
        (["DELE 1", "RSET", "DELE 2"], (), (M2,)),
        (["TOP 1 5", "TOP 2 0"], (), ()),
    ],
)
def test_quit_in_transaction(session: Client, commands: list[str], retrieved: tuple[Listing, ...],
                             deleted: tuple[Listing, ...]) -> None:
    session.send_lines(*commands)
    assert session.send(b"QUIT\r\n") == BYE
    assert session.events[-2:] == [Update(retrieved, deleted), Ended("closed")]
    assert session.p.state is State.CLOSED


def test_quit_before_login(client: Client) -> None:
    assert client.send(b"QUIT\r\nCAPA\r\n") == BYE
    assert client.events == [Ended("quit")]
    assert client.p.state is State.CLOSED
    assert isinstance(client.p.next_event(), Ended)  # and stays ended, reading nothing more
    assert client.p.data_to_send() == b""


def test_update_waits_for_its_answer() -> None:
    p = Client().login().p
    p.receive_data(b"DELE 1\r\nQUIT\r\nNOOP\r\n")
    assert p.next_event() == Update((), (M1,))
    assert p.next_event() is PAUSED
    assert p.data_to_send() == b"+OK message 1 deleted\r\n"  # nothing for QUIT yet
    assert p.state is State.UPDATE
    p.update_done("storage is unavailable")
    assert p.data_to_send() == b"-ERR [SYS/TEMP] storage is unavailable\r\n"
    assert isinstance(p.next_event(), Ended)
    assert p.data_to_send() == b""  # the NOOP behind QUIT is never answered


@pytest.mark.parametrize("logged_in", [False, True])
def test_eof_ends_without_update(logged_in: bool) -> None:
    """RFC 1939 6: a session that ends without QUIT does not enter the UPDATE state."""
    c = Client()
    if logged_in:
        c.login()
        c.send(b"DELE 1\r\nRETR 2\r\n")
    assert c.send(b"NOOP\r\nSTA") == (b"+OK\r\n" if logged_in else b"-ERR NOOP is not valid before logging in\r\n")
    assert c.eof() == b""
    assert c.events[-1] == ConnectionClosed()
    assert not any(isinstance(e, Update) for e in c.events)


# --- wrong state, unknown and malformed commands ---------------------------------------------------------------------
@pytest.mark.parametrize("command", ["STAT", "LIST", "UIDL 1", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP"])
def test_transaction_commands_before_login(client: Client, command: str) -> None:
    name = command.split()[0]
    assert client.send_lines(command) == f"-ERR {name} is not valid before logging in\r\n".encode()
    assert client.events == []


@pytest.mark.parametrize("command", ["USER alice", "PASS secret", "AUTH", "AUTH PLAIN", "STLS", "UTF8"])
def test_authorization_commands_after_login(command: str) -> None:
    c = Client(new(tls_available=True)).login()
    name = command.split()[0]
    assert c.send_lines(command) == f"-ERR {name} is not valid after logging in\r\n".encode()
    assert c.events == [Login("alice", "secret", "USER")]


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"FOO", b"-ERR unknown command 'FOO'"),
        (b"apop alice 0123456789abcdef", b"-ERR unknown command 'APOP'"),
        (b"", b"-ERR unknown command ''"),
        (b" STAT", b"-ERR unknown command ''"),
        (b"STAT\tx", b"-ERR unknown command 'STAT?X'"),
        ("ſtat".encode(), b"-ERR unknown command '?tat'"),  # U+017F uppercases to "S"
        (b"\xff\xfe", b"-ERR unknown command '??'"),
        (b"LISTLISTLISTLISTLISTLIST", b"-ERR unknown command 'LISTLISTLISTLISTLIST'"),
        (b"NO\x00OP", b"-ERR NUL byte in command"),
        (b"PASS se\x00cret", b"-ERR NUL byte in command"),
    ],
)
def test_unknown_and_malformed_commands(session: Client, line: bytes, reply: bytes) -> None:
    assert session.send(line + b"\r\n") == reply + b"\r\n"
    assert session.send(b"NOOP\r\n") == b"+OK\r\n"  # the session goes on
    assert session.events == [Login("alice", "secret", "USER")]


def test_overlong_line_is_refused_and_not_buffered() -> None:
    """10 MB without a line end, in 64 KiB pieces: refused once its end arrives, never held whole."""
    p = new(max_line=4096)
    piece = b"USER " + b"x" * (65536 - 5)
    for _ in range(160):
        p.receive_data(piece)
        assert p.next_event() is NEED_DATA
        assert len(p._rx) <= 4096 + 1
    assert p.data_to_send() == b""
    p.receive_data(b"x\r\nCAPA\r\n")
    assert p.next_event() is NEED_DATA
    assert p.data_to_send().startswith(b"-ERR line too long\r\n+OK capability list follows\r\n")
    assert len(p._rx) == 0


def test_line_length_limit_is_exact() -> None:
    c = Client(new(max_line=300))
    assert c.send(b"USER " + b"a" * 295 + b"\r\n") == b"+OK send your password\r\n"
    assert c.send(b"USER " + b"a" * 296 + b"\r\n") == b"-ERR line too long\r\n"


# --- limits: bad commands, login failures ----------------------------------------------------------------------------
def test_too_many_bad_commands_close_the_connection(bytewise: bool) -> None:
    c = Client(new(max_bad=3), bytewise=bytewise)
    out = c.send(b"FOO\r\nSTAT\r\n" + b"x" * 10_000 + b"\r\nCAPA\r\n")
    assert out == (b"-ERR unknown command 'FOO'\r\n-ERR STAT is not valid before logging in\r\n"
                   b"-ERR too many bad commands, closing connection\r\n")
    assert c.events == [Ended("too many bad commands")]
    assert c.p.state is State.CLOSED


def test_a_good_command_resets_the_bad_count() -> None:
    c = Client(new(max_bad=3))
    for _ in range(5):
        assert c.send(b"FOO\r\nFOO\r\nCAPA\r\n").startswith(b"-ERR unknown command 'FOO'\r\n" * 2 + b"+OK")
    assert c.events == []
    # a malformed answer to the AUTH challenge counts too
    assert c.send(b"AUTH PLAIN\r\n!\r\nFOO\r\n") == (b"+ \r\n-ERR malformed PLAIN response: not base64\r\n"
                                                    b"-ERR unknown command 'FOO'\r\n")
    assert c.send(b"FOO\r\n") == b"-ERR too many bad commands, closing connection\r\n"
    assert c.events == [Ended("too many bad commands")]


def test_too_many_login_failures_close_the_connection(bytewise: bool) -> None:
    c = Client(new(max_login_failures=2), bytewise=bytewise)
    bad = f"AUTH PLAIN {plain('', 'alice', 'wrong')}\r\n".encode()
    out = c.send(b"USER alice\r\nPASS wrong\r\n" + bad + b"CAPA\r\n")
    assert out == b"+OK send your password\r\n" + b"-ERR [AUTH] invalid credentials\r\n" * 2
    assert c.events == [Login("alice", "wrong", "USER"), Login("alice", "wrong", "PLAIN"),
                        Ended("too many failed logins")]


def test_refuse_login_says_when_to_close() -> None:
    p = new(max_login_failures=2)
    p.receive_data(b"USER a\r\nPASS b\r\nUSER a\r\nPASS b\r\n")
    assert isinstance(p.next_event(), Login)
    assert p.refuse_login("no") is False
    assert p.state is State.AUTHORIZATION
    assert isinstance(p.next_event(), Login)
    assert p.refuse_login("no") is True
    assert p.next_event() == Ended("too many failed logins")


# --- PIPELINING and the answers ------------------------------------------------------------------------------------
def test_pipelined_commands_are_answered_in_order(bytewise: bool) -> None:
    c = Client(bytewise=bytewise)
    out = c.send(b"CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nRETR 1\r\nNOOP\r\nTOP 2 1\r\nLIST 3\r\n"
                 b"DELE 1\r\nUIDL\r\nQUIT\r\n")
    assert out == b"".join([
        multi("+OK capability list follows", [*BASE_CAPS, "USER", "SASL PLAIN", "IMPLEMENTATION wildduck"]),
        b"+OK send your password\r\n",
        LOGGED_IN,
        f"+OK 3 {TOTAL}\r\n".encode(),
        f"+OK {M1.size} octets\r\n".encode() + stuffed(CONTENTS[101]),
        b"+OK\r\n",
        b"+OK top of message follows\r\nSubject: two\r\n\r\n..dot line\r\n.\r\n",
        f"+OK 3 {M3.size}\r\n".encode(),
        b"+OK message 1 deleted\r\n",
        multi("+OK 2 messages", ["2 uid-102", "3 uid-103"]),
        BYE,
    ])
    assert out.count(b"\n") == out.count(b"\r\n")  # every line ends with CRLF
    assert [type(e) for e in c.events] == [Login, Retrieve, Retrieve, Update, Ended]
    assert c.events[3] == Update((), (M1,))  # RETR 1 was retrieved, then deleted: only deleted


def test_begin_message_puts_the_replies_queued_before_it_first() -> None:
    """PIPELINING: a RETR behind STAT/NOOP is answered after them, even when its first line is sent by itself."""
    p = Client().login().p
    p.receive_data(b"STAT\r\nNOOP\r\nRETR 1\r\nNOOP\r\n")
    event = p.next_event()
    assert isinstance(event, Retrieve)
    first, writer = p.begin_message(event)
    assert first == f"+OK 3 {TOTAL}\r\n+OK\r\n+OK {M1.size} octets\r\n".encode()
    assert p.data_to_send() == b""
    assert writer.feed(CONTENTS[101]) + writer.end() == stuffed(CONTENTS[101])
    p.message_sent(event)
    assert p.next_event() is NEED_DATA
    assert p.data_to_send() == b"+OK\r\n"


def test_events_wait_for_their_answer() -> None:
    p = new()
    p.receive_data(b"USER alice\r\nPASS secret\r\nSTAT\r\nRETR 2\r\nNOOP\r\n")
    assert p.next_event() == Login("alice", "secret", "USER")
    assert p.next_event() is PAUSED
    assert p.next_event() is PAUSED
    assert p.data_to_send() == b"+OK send your password\r\n"  # STAT is not read before the login is answered
    p.accept_login(MAILDROP, "welcome alice")
    assert p.data_to_send() == f"+OK welcome alice, 3 messages ({TOTAL} octets)\r\n".encode()
    event = p.next_event()
    assert event == Retrieve(2, M2, None)
    assert p.next_event() is PAUSED
    assert isinstance(event, Retrieve)
    p.refuse_message("storage is unavailable", "SYS/TEMP")
    assert p.next_event() is NEED_DATA
    assert p.data_to_send() == f"+OK 3 {TOTAL}\r\n-ERR [SYS/TEMP] storage is unavailable\r\n+OK\r\n".encode()


def test_answering_the_wrong_event_raises() -> None:
    p = new(tls_available=True)
    with pytest.raises(RuntimeError):
        p.accept_login(MAILDROP)  # nothing is waiting
    p.receive_data(b"USER alice\r\nPASS secret\r\n")
    login = p.next_event()
    assert isinstance(login, Login)
    wrong_answers: list[Callable[[], object]] = [p.tls_started, p.update_done, lambda: p.refuse_message("x"),
                                                 lambda: p.message_sent(Retrieve(1, M1, None))]
    for wrong in wrong_answers:
        with pytest.raises(RuntimeError):
            wrong()
    assert p.state is State.AUTHORIZATION and p.next_event() is PAUSED
    p.accept_login(MAILDROP)
    with pytest.raises(RuntimeError):
        p.accept_login(MAILDROP)  # answered already
    p.receive_data(b"RETR 1\r\n")
    event = p.next_event()
    assert isinstance(event, Retrieve)
    with pytest.raises(RuntimeError):
        p.begin_message(Retrieve(1, M1, None))  # an equal event, not the one waiting
    wrong_answers = [lambda: p.refuse_login("x"), p.update_done, p.tls_started]
    for wrong in wrong_answers:
        with pytest.raises(RuntimeError):
            wrong()
    p.begin_message(event)
    p.message_sent(event)
    assert p.retrieved == {1}


def test_answer_formats() -> None:
    p = new(max_login_failures=10)
    p.receive_data(b"USER a\r\nPASS b\r\n" * 4)
    assert isinstance(p.next_event(), Login)
    p.refuse_login("invalid credentials")  # [AUTH] by default
    for text, code in [("no", None), ("try in 60 seconds", "LOGIN-DELAY"), ("already connected", "IN-USE")]:
        assert isinstance(p.next_event(), Login)
        p.refuse_login(text, code)
    assert p.data_to_send() == b"".join([
        b"+OK send your password\r\n-ERR [AUTH] invalid credentials\r\n",
        b"+OK send your password\r\n-ERR no\r\n",
        b"+OK send your password\r\n-ERR [LOGIN-DELAY] try in 60 seconds\r\n",
        b"+OK send your password\r\n-ERR [IN-USE] already connected\r\n",
    ])


@pytest.mark.parametrize(
    ("error", "code", "reply"),
    [(None, "SYS/TEMP", BYE), ("failed", "SYS/TEMP", b"-ERR [SYS/TEMP] failed\r\n"),
     ("failed", None, b"-ERR failed\r\n"), ("gone", "SYS/PERM", b"-ERR [SYS/PERM] gone\r\n")],
)
def test_update_done_formats(error: str | None, code: str | None, reply: bytes) -> None:
    p = Client().login().p
    p.receive_data(b"QUIT\r\n")
    assert isinstance(p.next_event(), Update)
    p.update_done(error, code)
    assert p.data_to_send() == reply
    assert p.state is State.CLOSED and isinstance(p.next_event(), Ended)


def test_reply_helpers() -> None:
    assert pop3.ok() == b"+OK\r\n"
    assert pop3.ok("fine") == b"+OK fine\r\n"
    assert pop3.err("no") == b"-ERR no\r\n"
    assert pop3.err("busy", "IN-USE") == b"-ERR [IN-USE] busy\r\n"
    assert pop3.err("jörg?") == "-ERR jörg?\r\n".encode()
    assert pop3.multiline(b"+OK\r\n", []) == b"+OK\r\n.\r\n"
    assert pop3.multiline(b"+OK\r\n", [".", ".a", "a.", ""]) == b"+OK\r\n..\r\n..a\r\na.\r\n\r\n.\r\n"


# --- MessageWriter ---------------------------------------------------------------------------------------------------
def write(lines: int | None, chunks: Sequence[bytes]) -> tuple[bytes, bool]:
    """What the writer sends for ``chunks`` (fed until it is done, as the session does), and whether it
    asked to stop before the content ended."""
    writer = MessageWriter(lines)
    out = b""
    stopped = False
    for chunk in chunks:
        out += writer.feed(chunk)
        if writer.done:
            stopped = True
            break
    return out + writer.end(), stopped


@pytest.mark.parametrize(
    ("message", "lines", "expected"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n", 2, b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n"),
        (b"A: 1\r\n\r\nl1\r\n", 0, b"A: 1\r\n\r\n.\r\n"),
        (b"A: 1\r\n\r\n", 3, b"A: 1\r\n\r\n.\r\n"),
        (b"A: 1\r\nB: 2\r\n", 0, b"A: 1\r\nB: 2\r\n.\r\n"),  # no empty line: all header
        (b"A: 1\r\nB: 2", 1, b"A: 1\r\nB: 2\r\n.\r\n"),
        (b"\r\nbody\r\nmore\r\n", 1, b"\r\nbody\r\n.\r\n"),  # an empty header
        (b"\r\nbody\r\n", 0, b"\r\n.\r\n"),
        (b"\r\n\r\n\r\nx\r\n", 2, b"\r\n\r\n\r\n.\r\n"),  # empty body lines count
        (b"A: 1\r\n\r\n.x\r\n.\r\n..\r\n", 9, b"A: 1\r\n\r\n..x\r\n..\r\n...\r\n.\r\n"),
        (b".A: 1\r\n\r\nb\r\n", 0, b"..A: 1\r\n\r\n.\r\n"),
        (b"A: 1\r\n\r\nno end", 5, b"A: 1\r\n\r\nno end\r\n.\r\n"),
        (b"", 5, b".\r\n"),
        (b"A: 1\n\nbody\r\n", 0, b"A: 1\n\nbody\r\n.\r\n"),  # only CRLF ends a line
    ],
)
def test_top_examples(message: bytes, lines: int, expected: bytes) -> None:
    assert stuffed(top(message, lines)) == expected  # the reference agrees
    assert write(lines, [message])[0] == expected
    assert write(lines, [message[i:i + 1] for i in range(len(message))])[0] == expected


def test_writer_stops_once_top_has_what_it_needs() -> None:
    writer = MessageWriter(1)
    assert writer.feed(b"A: 1\r\n\r\nfirst\r") == b"A: 1\r\n\r\nfirst\r"
    assert not writer.done
    assert writer.feed(b"\nsecond\r\n") == b"\n"
    assert writer.done
    assert writer.feed(b".more\r\n") == b""
    assert writer.end() == b".\r\n"


def test_retr_writer_never_stops_early() -> None:
    writer = MessageWriter(None)
    assert writer.feed(b"A: 1\r\n\r\n.") == b"A: 1\r\n\r\n.."
    assert not writer.done
    assert writer.feed(b"x") == b"x"
    assert writer.end() == b"\r\n.\r\n"


_LINE = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"", b".", b"..", b".x", b"x.", b"\r", b"\n", b"x\r", b"\rx", b". ", b"\x00"]),
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """Header lines, an optional empty line, body lines (random bytes, some starting with "."), CRLF line ends,
    perhaps without the final one."""
    header = draw(st.lists(_LINE.map(lambda b: b.lstrip(b"\r\n") or b"H"), max_size=5))
    body = draw(st.lists(st.tuples(st.booleans(), _LINE).map(lambda t: b"." * t[0] + t[1]), max_size=8))
    message = b"".join(line + b"\r\n" for line in header)
    if draw(st.booleans()):
        message += b"\r\n"
    message += b"".join(line + b"\r\n" for line in body)
    if message and draw(st.booleans()):
        message = message[:-draw(st.integers(1, 2))]
    return message


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at random points, into single bytes, or inside every (or some) CRLF and CRLF CRLF."""
    kind = draw(st.sampled_from(["random", "bytes", "line-ends"]))
    if kind == "bytes":
        return [data[i:i + 1] for i in range(len(data))]
    if kind == "line-ends":
        ends = [i for i in range(1, len(data)) if data[i - 1] in b"\r\n"]
        every = draw(st.booleans())
        cuts = set(ends) if every or not ends else draw(st.sets(st.sampled_from(ends)))
    else:
        cuts = draw(st.sets(st.integers(0, len(data))))
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in pairwise(points) if b > a]


@settings(max_examples=600)
@given(st.data(), messages(), st.integers(0, 10))
def test_writer_matches_the_reference_in_any_chunking(data: st.DataObject, message: bytes, lines: int) -> None:
    chunks = data.draw(chunkings(message))
    assert b"".join(chunks) == message
    assert write(None, chunks) == (stuffed(message), False)
    expected = top(message, lines)
    out, stopped = write(lines, chunks)
    assert out == stuffed(expected)
    if len(expected) < len(message):
        assert stopped  # the rest of the message is not read


@settings(max_examples=300)
@given(st.lists(st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"USER alice\r\n", b"PASS secret\r\n", b"PASS wrong\r\n", b"RETR 2\r\n", b"TOP 2 1\r\n",
                     b"DELE 1\r\n", b"STLS\r\n", b"AUTH PLAIN\r\n", b"*\r\n", b"LIST\r\n", b"UIDL 1\r\n", b"QUIT\r\n",
                     b"CAPA\r\n", b"RSET\r\n", b"\r\n", b"\n", b"\r", b"\x00"]),
), max_size=30))
def test_arbitrary_input_never_breaks_the_framing(chunks: list[bytes]) -> None:
    """Whatever arrives, every reply line ends with CRLF (no CR or LF is echoed), the events are the documented
    ones and the buffer stays bounded."""
    c = Client(new(tls_available=True, max_line=100, max_bad=1000, max_login_failures=1000))
    for chunk in chunks:
        out = c.send(chunk)
        assert out.count(b"\n") == out.count(b"\r\n") == out.count(b"\r")
        if not c.ended:
            assert len(c.p._rx) <= 101
    for e in c.events:
        assert isinstance(e, (Login, StartTLS, Retrieve, Update, Ended, ConnectionClosed))
