#!/usr/bin/env python3
"""A reference client of the PsIpc pipe protocol (docs/protocol.md), Python standard library only.

Use it as a module:

    from psipc_client import PsIpcClient

    with PsIpcClient.connect("my-pipe", timeout=10) as pipe:      # connect + Hello exchange
        pipe.send_text("Hello, IPC!")                              # Text frame   -> [string]
        pipe.send_bytes(b"\\x00\\x01\\x02")                        # Bytes frame  -> [byte[]]
        pipe.send_json({"name": "python", "n": 1})                 # Json frame   -> [pscustomobject]
        message = pipe.receive(timeout=10)                         # Message(kind, value, payload)
        print(message.kind, message.value)
    # leaving the with block sends Goodbye and closes

or from the command line (the PowerShell side is examples/python-peer.ps1):

    python3 psipc_client.py NAME [--text T]... [--bytes HEX]... [--json JSON]...
                                 [--receive N] [--timeout S]
    python3 psipc_client.py HOST:PORT --tcp [--secret-env VAR] [--tls [--thumbprint SHA1]] ...

With --tcp it talks to a Start-IpcSocketServer (LengthPrefixed framing): TLS first with --tls, then
the shared-secret exchange (docs/protocol.md 11) when --secret-env names the environment variable
holding the secret (never the secret itself on the command line), then the Hello exchange.

Every --text/--bytes/--json is sent in the order given, then N messages are received and printed,
then the client says Goodbye. Exit code 0 on success, 1 on a protocol or connection error, 2 on a
usage error, 3 on a timeout.

What a PsIpc server expects from a client (docs/protocol.md has the whole story):

  * Unix: a stream socket at $TMPDIR/CoreFxPipe_<name> (/tmp when TMPDIR is unset), owned by the
    same user. Windows: the named pipe \\\\.\\pipe\\<name>.
  * Frames: u32 little-endian payload length, u8 type, payload.
  * The client sends Hello first; the server answers with its Hello or with an Error frame.
  * Goodbye (an empty frame of type 0x02) ends the conversation in both directions: receive every
    reply you want before you send it.
"""

import argparse
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import sys
import time
from collections import namedtuple

PROTOCOL_VERSION = 1
MAGIC = b"PSIPC"
HEADER = struct.Struct("<IB")          # payload length (u32 LE), frame type (u8)
HELLO = struct.Struct("<5sBBBII")      # magic, version, flags, reserved, process id, max message size
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

HELLO_TYPE, GOODBYE, ERROR = 0x01, 0x02, 0x03
AUTH_REQUEST, AUTH_CHALLENGE, AUTH_RESPONSE, AUTH_ACCEPTED = 0x04, 0x05, 0x06, 0x07
AUTH_VERSION = 1
AUTH_SERVER_LABEL, AUTH_CLIENT_LABEL = b"PSIPC-AUTH-SERVER", b"PSIPC-AUTH-CLIENT"
AUTH_KEY_SALT, AUTH_KEY_ITERATIONS = b"PsIpc shared secret v1", 100000


def auth_key(secret):
    """The HMAC key of the exchange: PBKDF2-HMAC-SHA256 of the secret (bytes), so that guessing a weak
    secret from a recorded exchange costs 100,000 HMACs a guess."""
    return hashlib.pbkdf2_hmac("sha256", secret, AUTH_KEY_SALT, AUTH_KEY_ITERATIONS)
TEXT, BYTES, CLIXML, JSON = 0x10, 0x11, 0x12, 0x13
KIND_NAMES = {TEXT: "Text", BYTES: "Bytes", CLIXML: "CliXml", JSON: "Json"}
KNOWN_TYPES = {HELLO_TYPE, GOODBYE, ERROR, TEXT, BYTES, CLIXML, JSON}

ERROR_CODES = {
    0: "Other",
    1: "ServerFull",
    2: "ProtocolError",
    3: "MessageTooLarge",
    4: "VersionMismatch",
    5: "AccessDenied",
    6: "AuthenticationRequired",
    7: "AuthenticationFailed",
    8: "HandshakeTimeout",
    9: "IdleTimeout",
}

Message = namedtuple("Message", "kind value payload")
Message.__doc__ = """A data frame: kind is 'Text', 'Bytes', 'CliXml' or 'Json'; value is str, bytes,
the XML text (str) or the parsed JSON; payload is the raw bytes."""

PeerHello = namedtuple("PeerHello", "version flags process_id max_message_size")


class PsIpcError(Exception):
    """A protocol or connection failure."""


class PsIpcRemoteError(PsIpcError):
    """The peer sent an Error frame (and closed the connection)."""

    def __init__(self, code, text):
        self.code = code
        self.code_name = ERROR_CODES.get(code, "Other")
        self.text = text
        super().__init__("the peer refused: %s (code %d): %s" % (self.code_name, code, text))


class PsIpcTimeout(PsIpcError):
    """A wait ran out of time."""


def pipe_path(name):
    """Where the pipe `name` lives: the path .NET's Path.GetTempPath() gives, as PsIpc uses it."""
    if os.name == "nt":
        return "\\\\.\\pipe\\" + name
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", "CoreFxPipe_" + name)


def encode_frame(frame_type, payload=b""):
    """One frame: the 5-byte header, then the payload."""
    return HEADER.pack(len(payload), frame_type) + payload


def encode_hello(max_message_size=DEFAULT_MAX_MESSAGE_SIZE, process_id=None):
    """A Hello frame (21 bytes: header + 16-byte payload)."""
    pid = os.getpid() if process_id is None else process_id
    return encode_frame(HELLO_TYPE, HELLO.pack(MAGIC, PROTOCOL_VERSION, 0, 0, pid, max_message_size))


def decode_hello(payload):
    if len(payload) < HELLO.size or payload[:5] != MAGIC:
        raise PsIpcError("the peer's first frame is not a PsIpc Hello")
    _, version, flags, _, pid, max_size = HELLO.unpack_from(payload)
    return PeerHello(version, flags, pid, max_size)


class _SocketStream:
    """Unix: a connected AF_UNIX stream socket."""

    def __init__(self, path, timeout):
        self._sock = _connect_unix(path, timeout)

    def read(self, n, deadline):
        self._sock.settimeout(_remaining(deadline))
        try:
            return self._sock.recv(n)
        except socket.timeout:
            raise PsIpcTimeout("timed out waiting for the peer") from None

    def write(self, data):
        self._sock.settimeout(None)
        self._sock.sendall(data)

    def shutdown_send(self):
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self._sock.close()


class _TcpStream(_SocketStream):
    """A TCP connection (Start-IpcSocketServer -Port), optionally wrapped in TLS."""

    def __init__(self, host, port, timeout, tls=None):
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap(sock, host)
        self._sock = sock


class TlsOptions:
    """How to check the server's certificate: the system's trust (default), a CA file, or exactly the
    certificate with a given SHA-1 thumbprint (a self-signed one; as Connect-IpcSocket -CertificateThumbprint)."""

    def __init__(self, cafile=None, thumbprint=None):
        self.cafile = cafile
        self.thumbprint = thumbprint.replace(":", "").replace(" ", "").lower() if thumbprint else None

    def wrap(self, sock, host):
        context = ssl.create_default_context(cafile=self.cafile)
        if self.thumbprint:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE      # checked below, against the pinned thumbprint
        wrapped = context.wrap_socket(sock, server_hostname=host)
        if self.thumbprint:
            seen = hashlib.sha1(wrapped.getpeercert(binary_form=True)).hexdigest()
            if not hmac.compare_digest(seen, self.thumbprint):
                wrapped.close()
                raise PsIpcError("the server's certificate has thumbprint %s, not the pinned %s" % (seen.upper(), self.thumbprint.upper()))
        return wrapped


def authenticate(stream, secret, deadline):
    """The shared-secret exchange of docs/protocol.md 11, before the Hello (server started with -Secret).
    Both sides prove they know `secret` (bytes: the UTF-8 of the text) without sending it."""
    def read_frame():
        buffer = b""
        while len(buffer) < HEADER.size:
            chunk = stream.read(HEADER.size - len(buffer), deadline)
            if not chunk:
                raise PsIpcError("the server closed the connection during authentication")
            buffer += chunk
        length, frame_type = HEADER.unpack(buffer)
        if length > 4096:
            raise PsIpcError("the server did not answer the shared-secret exchange (a %d-byte frame)" % length)
        payload = b""
        while len(payload) < length:
            chunk = stream.read(length - len(payload), deadline)
            if not chunk:
                raise PsIpcError("the server closed the connection during authentication")
            payload += chunk
        if frame_type == ERROR:
            raise _remote_error(payload)
        return frame_type, payload

    key = auth_key(secret)
    client_nonce = os.urandom(32)
    stream.write(encode_frame(AUTH_REQUEST, bytes([AUTH_VERSION]) + client_nonce))
    frame_type, payload = read_frame()
    if frame_type != AUTH_CHALLENGE or len(payload) != 64:
        raise PsIpcError("the server answered the AuthRequest with a frame of type 0x%02x" % frame_type)
    server_nonce, proof = payload[:32], payload[32:]
    expected = hmac.new(key, AUTH_SERVER_LABEL + client_nonce + server_nonce, hashlib.sha256).digest()
    if not hmac.compare_digest(proof, expected):
        stream.write(encode_frame(ERROR, bytes([7]) + b"The server's proof of the shared secret is wrong."))
        raise PsIpcError("the shared secret does not match the server's")
    stream.write(encode_frame(AUTH_RESPONSE, hmac.new(key, AUTH_CLIENT_LABEL + server_nonce + client_nonce, hashlib.sha256).digest()))
    frame_type, _ = read_frame()
    if frame_type != AUTH_ACCEPTED:
        raise PsIpcError("the server answered the AuthResponse with a frame of type 0x%02x" % frame_type)


class _WindowsPipeStream:
    """Windows: the named pipe opened as a file. Reads block (no timeout on a plain file handle)."""

    def __init__(self, path, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._file = open(path, "r+b", buffering=0)
                return
            except OSError as e:
                # 2: no such pipe yet; 231: every instance is busy (the server creates the next one
                # right after each accept). Anything else is a real failure.
                if getattr(e, "winerror", None) not in (2, 231):
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise PsIpcTimeout("timed out connecting to %s" % path) from None
                time.sleep(0.05)

    def read(self, n, deadline):
        return self._file.read(n)

    def write(self, data):
        self._file.write(data)
        self._file.flush()

    def shutdown_send(self):
        pass

    def close(self):
        self._file.close()


def _remaining(deadline):
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise PsIpcTimeout("timed out waiting for the peer")
    return left


def _connect_unix(path, timeout):
    """Connects, retrying while the server is not up yet (as New-IpcPipe -Connect does), and checks
    that the server runs as this user (PsIpc does the same with SO_PEERCRED)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.002
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            _check_peer_user(sock, path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            if deadline is not None and time.monotonic() >= deadline:
                why = "nobody listens on it" if isinstance(e, ConnectionRefusedError) else "no server has created it"
                raise PsIpcTimeout("timed out connecting to %s: %s" % (path, why)) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        except BaseException:
            sock.close()
            raise


def _check_peer_user(sock, path):
    uid = os.geteuid()
    peer_uid = None
    if hasattr(socket, "SO_PEERCRED"):     # Linux: struct ucred { pid, uid, gid }
        _, peer_uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    else:                                   # elsewhere: the socket file's owner
        peer_uid = os.stat(path).st_uid
    if peer_uid != uid:
        raise PsIpcError("%s is served by another user (uid %d); not attaching to it" % (path, peer_uid))


class PsIpcClient:
    """One connection to a PsIpc pipe server. Not thread-safe: one thread sends and receives."""

    def __init__(self, stream, max_message_size):
        self._stream = stream
        self._buffer = bytearray()
        self._ended = False
        self.max_message_size = max_message_size
        self.peer = None                  # PeerHello, once the handshake is done

    @classmethod
    def connect(cls, name, timeout=None, max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        """Connects to the pipe `name` and does the handshake: our Hello, then the server's answer.
        Raises PsIpcTimeout, PsIpcRemoteError (e.g. ServerFull when the server has -MaxClients
        clients already) or PsIpcError."""
        path = pipe_path(name)
        stream = _WindowsPipeStream(path, timeout) if os.name == "nt" else _SocketStream(path, timeout)
        return cls._open(stream, timeout, max_message_size)

    @classmethod
    def connect_tcp(cls, host, port, timeout=None, secret=None, tls=None, max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        """Connects to a Start-IpcSocketServer on TCP: TLS first when `tls` (a TlsOptions) is given, then
        the shared-secret exchange when `secret` (bytes) is, then the Hello exchange."""
        try:
            stream = _TcpStream(host, port, timeout, tls)
        except socket.timeout:
            raise PsIpcTimeout("timed out connecting to %s:%d" % (host, port)) from None
        return cls._open(stream, timeout, max_message_size, secret)

    @classmethod
    def _open(cls, stream, timeout, max_message_size, secret=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        client = cls(stream, max_message_size)
        try:
            if secret is not None:
                authenticate(stream, secret, deadline)
            stream.write(encode_hello(max_message_size))
            frame_type, payload = client._read_frame(deadline)
            if frame_type is None:
                raise PsIpcError("the server closed the connection without answering the Hello")
            if frame_type == ERROR:
                raise _remote_error(payload)
            if frame_type != HELLO_TYPE:
                raise PsIpcError("the server answered with a frame of type 0x%02x, not a Hello" % frame_type)
            client.peer = decode_hello(payload)
            if client.peer.version != PROTOCOL_VERSION:
                raise PsIpcError("the server speaks protocol version %d, this client %d" % (client.peer.version, PROTOCOL_VERSION))
            return client
        except BaseException:
            stream.close()
            raise

    # -- sending ------------------------------------------------------------------------------

    def send_text(self, text):
        """A Text frame: PowerShell receives a [string]."""
        self._send(TEXT, text.encode("utf-8"))

    def send_bytes(self, data):
        """A Bytes frame: PowerShell receives a [byte[]]."""
        self._send(BYTES, bytes(data))

    def send_json(self, value):
        """A Json frame: PowerShell receives what ConvertFrom-Json makes of it (objects are
        [pscustomobject], arrays object[], integers [long])."""
        self._send(JSON, json.dumps(value, separators=(",", ":")).encode("utf-8"))

    def send_clixml(self, xml_text):
        """A CliXml frame: PowerShell deserializes it with PSSerializer (as Import-Clixml would)."""
        self._send(CLIXML, xml_text.encode("utf-8"))

    def _send(self, frame_type, payload):
        if self._ended:
            raise PsIpcError("the connection has ended")
        if self.peer is not None and len(payload) > self.peer.max_message_size:
            raise PsIpcError("the message is %d bytes; the peer accepts at most %d" % (len(payload), self.peer.max_message_size))
        self._stream.write(encode_frame(frame_type, payload))

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, timeout=None):
        """The next data frame as a Message; None when the peer has gone (Goodbye, or the end of
        the stream at a frame boundary). Raises PsIpcRemoteError for an Error frame, PsIpcTimeout
        after `timeout` seconds (None waits forever), PsIpcError when the peer vanished mid-frame."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._ended:
            return None
        frame_type, payload = self._read_frame(deadline)
        if frame_type is None or frame_type == GOODBYE:
            self._ended = True
            return None
        if frame_type == ERROR:
            self._ended = True
            raise _remote_error(payload)
        if frame_type == HELLO_TYPE:
            raise PsIpcError("the peer sent a second Hello")
        return Message(KIND_NAMES[frame_type], _decode(frame_type, payload), payload)

    def __iter__(self):
        """Every message until the peer goes."""
        while True:
            message = self.receive()
            if message is None:
                return
            yield message

    def _read_frame(self, deadline):
        """(type, payload), or (None, None) at the end of the stream at a frame boundary. Nothing is
        consumed until the whole frame is there, so a timeout leaves the stream where it was."""
        if not self._fill(HEADER.size, deadline):
            return None, None
        length, frame_type = HEADER.unpack_from(self._buffer)
        if frame_type not in KNOWN_TYPES:
            self._refuse(2, "unknown frame type 0x%02x" % frame_type)
        if length > self.max_message_size:        # checked before the payload is read
            self._refuse(3, "a %d-byte frame; the limit is %d" % (length, self.max_message_size))
        self._fill(HEADER.size + length, deadline)
        payload = bytes(self._buffer[HEADER.size:HEADER.size + length])
        del self._buffer[:HEADER.size + length]
        return frame_type, payload

    def _fill(self, n, deadline):
        """Reads until the buffer holds n bytes. False at the end of the stream with nothing
        buffered (a frame boundary); PsIpcError at the end of the stream inside a frame."""
        while len(self._buffer) < n:
            chunk = self._stream.read(65536, deadline)
            if not chunk:
                if not self._buffer:
                    return False
                raise PsIpcError("the peer disconnected in the middle of a frame")
            self._buffer += chunk
        return True

    def _refuse(self, code, text):
        try:
            self._stream.write(encode_frame(ERROR, bytes([code]) + text.encode("utf-8")))
        finally:
            self._ended = True
            self._stream.close()
        raise PsIpcError(text)

    # -- ending -------------------------------------------------------------------------------

    def close(self):
        """Says Goodbye (the peer stops sending too: it drops what it had queued for us), shuts down
        our sending side and closes. Safe to call twice."""
        if self._stream is None:
            return
        try:
            if not self._ended:
                self._stream.write(encode_frame(GOODBYE))
                self._stream.shutdown_send()
        except OSError:
            pass
        finally:
            self._ended = True
            self._stream.close()
            self._stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _decode(frame_type, payload):
    if frame_type == TEXT or frame_type == CLIXML:
        return payload.decode("utf-8", errors="replace")
    if frame_type == JSON:
        return json.loads(payload.decode("utf-8"))
    return payload


def _remote_error(payload):
    if not payload:
        return PsIpcRemoteError(0, "")
    return PsIpcRemoteError(payload[0], payload[1:].decode("utf-8", errors="replace"))


def _show(message):
    if message.kind == "Bytes":
        return "Bytes  %s" % message.value.hex(" ")
    if message.kind == "Json":
        return "Json   %s" % json.dumps(message.value)
    if message.kind == "CliXml":
        return "CliXml %d bytes of XML" % len(message.payload)
    return "Text   %s" % message.value


def main(argv=None):
    parser = argparse.ArgumentParser(description="Talk to a PsIpc pipe (New-IpcPipe) or TCP socket server (Start-IpcSocketServer) from Python.")
    parser.add_argument("name", help="the pipe name ($pipe.Name in PowerShell), or HOST:PORT with --tcp")
    parser.add_argument("--tcp", action="store_true", help="NAME is HOST:PORT of a Start-IpcSocketServer")
    parser.add_argument("--secret-env", metavar="VAR", help="the server's shared secret (-Secret) is in this environment variable")
    parser.add_argument("--tls", action="store_true", help="speak TLS (a server started with -Certificate)")
    parser.add_argument("--thumbprint", help="with --tls: trust exactly the certificate with this SHA-1 thumbprint")
    parser.add_argument("--text", action="append", default=[], type=lambda v: ("text", v), dest="sends", metavar="TEXT", help="send a Text message")
    parser.add_argument("--bytes", action="append", type=lambda v: ("bytes", bytes.fromhex(v)), dest="sends", metavar="HEX", help="send a Bytes message, given in hexadecimal")
    parser.add_argument("--json", action="append", type=lambda v: ("json", json.loads(v)), dest="sends", metavar="JSON", help="send a Json message")
    parser.add_argument("--receive", type=int, default=0, metavar="N", help="then receive and print N messages")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the server and for each message (default 10)")
    args = parser.parse_args(argv)

    try:
        if args.tcp:
            host, _, port = args.name.rpartition(":")
            secret = os.environ[args.secret_env].encode("utf-8") if args.secret_env else None
            tls = TlsOptions(thumbprint=args.thumbprint) if args.tls or args.thumbprint else None
            connection = PsIpcClient.connect_tcp(host, int(port), timeout=args.timeout, secret=secret, tls=tls)
        else:
            connection = PsIpcClient.connect(args.name, timeout=args.timeout)
        with connection as pipe:
            print("python: connected to %r, server pid %d, max message %d bytes" % (args.name, pipe.peer.process_id, pipe.peer.max_message_size), flush=True)
            for kind, value in args.sends:
                getattr(pipe, "send_" + kind)(value)
                print("python: sent %-5s %r" % (kind, value), flush=True)
            for _ in range(args.receive):
                message = pipe.receive(timeout=args.timeout)
                if message is None:
                    print("python: the server has gone", flush=True)
                    break
                print("python: got  " + _show(message), flush=True)
            print("python: goodbye", flush=True)
        return 0
    except PsIpcTimeout as e:
        print("python: timeout: %s" % e, file=sys.stderr)
        return 3
    except (PsIpcError, OSError, ssl.SSLError) as e:
        print("python: error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
