"""Several hosts on one machine (../shared/NETLAB.md): network namespaces on a bridge,
processes inside them, a tcpdump capture of the bridge, and a reader that turns the
capture back into the bytes each TCP connection and each HTTP/2 stream carried.

Every name carries a random tag, so runs never collide, and everything made is
removed by :meth:`Netlab.teardown`, whatever happened before. ``Netlab.create`` raises
:class:`NetlabUnavailable` (with the reason) where namespaces cannot be made here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import selectors
import shutil
import signal
import struct
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class NetlabUnavailable(RuntimeError):
    """Namespaces, a bridge or tcpdump cannot be had on this machine."""


@dataclass(frozen=True)
class Host:
    index: int
    netns: str
    veth: str  # the host-side end, on the bridge
    ip: str


@dataclass
class Netlab:
    """``n`` hosts in namespaces on one bridge; the root namespace gets ``.254`` on it
    (so the test process can reach the hosts' APIs)."""

    n: int = 3
    tag: str = ""
    prefix: str = ""  # "10.A.B"
    bridge: str = ""
    hosts: list[Host] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    capture_banner: str = ""  # what tcpdump said before it listened
    _made: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) in order made

    @property
    def root_ip(self) -> str:
        return f"{self.prefix}.254"

    # -- set-up ---------------------------------------------------------------------

    @staticmethod
    def check_tools(*extra: str) -> None:
        if os.geteuid() != 0:
            raise NetlabUnavailable("network namespaces need root (this is uid "
                                    f"{os.geteuid()})")
        for tool in ("ip", *extra):
            if shutil.which(tool) is None:
                raise NetlabUnavailable(f"`{tool}` is not installed (apt-get install "
                                        "iproute2 tcpdump)")

    def create(self) -> Netlab:
        """Make the bridge, namespaces and veths; on failure undo what was made and
        raise NetlabUnavailable."""
        self.check_tools()
        self._pick_names()
        try:
            _ip("link", "add", self.bridge, "type", "bridge", "mcast_snooping", "0")
            self._made.append(("link", self.bridge))
            _ip("link", "set", self.bridge, "up")
            _ip("addr", "add", f"{self.root_ip}/24", "dev", self.bridge)
            for host in self.hosts:
                _ip("netns", "add", host.netns)
                self._made.append(("netns", host.netns))
                _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0",
                    "netns", host.netns)
                self._made.append(("link", host.veth))
                _ip("link", "set", host.veth, "master", self.bridge, "up")
                _ip("-n", host.netns, "link", "set", "lo", "up")
                _ip("-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
                _ip("-n", host.netns, "link", "set", "eth0", "multicast", "on", "up")
                _ip("-n", host.netns, "route", "add", "224.0.0.0/4", "dev", "eth0")
        except subprocess.CalledProcessError as exc:
            err = (exc.stderr or b"").decode(errors="replace").strip()
            self.teardown()
            raise NetlabUnavailable(f"cannot create namespaces here: `{' '.join(exc.cmd)}` "
                                    f"failed: {err}") from None
        return self

    def _pick_names(self) -> None:
        """A tag and a 10.A.B.0/24 derived from it that overlaps no route here."""
        taken = _root_networks()
        for _ in range(64):
            tag = secrets.token_hex(3)
            a, b = 64 + int(tag[:2], 16) % 128, int(tag[2:4], 16)
            net = ipaddress.ip_network(f"10.{a}.{b}.0/24")
            if not any(net.overlaps(t) for t in taken):
                break
        else:  # pragma: no cover - 64 random /24s of 10/8 all taken
            raise NetlabUnavailable("no free 10.x.y.0/24 on this machine")
        self.tag, self.prefix = tag, f"10.{a}.{b}"
        self.bridge = f"mmb{tag}"  # 9 characters: interface names are at most 15
        self.hosts = [Host(i, f"mm-{tag}-{i}", f"mm{tag}h{i}", f"{self.prefix}.{i}")
                      for i in range(1, self.n + 1)]

    # -- processes ------------------------------------------------------------------

    def spawn(self, cmd: Sequence[str], netns: str | None = None, *,
              stdout: int | None = subprocess.PIPE, stderr: int | None = subprocess.PIPE,
              ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` (inside ``netns`` if given) in its own process group; it is
        killed at teardown. ``ip netns exec`` execs the command, so the pid is its pid."""
        full = ["ip", "netns", "exec", netns, *cmd] if netns else list(cmd)
        proc = subprocess.Popen(full, stdout=stdout, stderr=stderr, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_capture(self, pcap: Path, bpf: str, timeout: float = 15.0,
                      ) -> subprocess.Popen[bytes]:
        """tcpdump on the bridge; returns once it reports that it is listening."""
        if shutil.which("tcpdump") is None:
            raise NetlabUnavailable("tcpdump is not installed (apt-get install tcpdump)")
        proc = self.spawn(["tcpdump", "-i", self.bridge, "--immediate-mode", "-U", "-s0",
                           "-B", "32768", "-n", "-w", str(pcap), bpf], stdout=subprocess.DEVNULL)
        seen = read_until(proc, "listening on", timeout, stream="stderr")
        if "listening on" not in seen:
            raise AssertionError(f"tcpdump did not start: {seen!r}")
        self.capture_banner = seen
        return proc

    # -- teardown -------------------------------------------------------------------

    def teardown(self) -> None:
        """Kill our processes (by process group), then delete veths, namespaces and the
        bridge. Never raises."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        made = list(reversed(self._made))
        for name in [n for k, n in made if k == "link" and n != self.bridge]:
            _ip("link", "del", name, check=False)  # the veth pair goes with its host end
        for name in [n for k, n in made if k == "netns"]:
            _ip("netns", "del", name, check=False)
        if ("link", self.bridge) in made:
            _ip("link", "del", self.bridge, check=False)
        self._made.clear()

    def leftovers(self) -> list[str]:
        """Names of this lab still present (for a test of the teardown itself)."""
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [w for w in {*links.split(), *netns.split()} if self.tag and self.tag in w]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", *args], capture_output=True, check=check, timeout=30)


def _root_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                         text=True).stdout
    nets = []
    for line in out.splitlines():
        words = line.split()
        for word in words[:2]:  # "10.1.2.0/24 dev ..." or "local 10.1.2.3 dev ..."
            try:
                nets.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    return [n for n in nets if isinstance(n, ipaddress.IPv4Network) and n.prefixlen > 0]


def read_until(proc: subprocess.Popen[bytes], marker: str, timeout: float,
               stream: str = "stdout") -> str:
    """Lines of ``proc``'s stream until one contains ``marker``, the stream closes, or
    the deadline passes (never blocks past it). Returns what was read."""
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(pipe, selectors.EVENT_READ)
        while marker.encode() not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


# -- reading a capture back -------------------------------------------------------------

FlowKey = tuple[str, int, str, int]  # src ip, src port, dst ip, dst port
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass
class TcpFlow:
    """One direction of one TCP connection, its payload in sequence order."""

    key: FlowKey
    data: bytes
    gaps: int  # holes in the sequence space (bytes the capture missed)
    packets: int


def read_pcap(path: Path) -> list[bytes]:
    """The frames of a classic pcap file (what ``tcpdump -w`` writes), Ethernet only."""
    raw = path.read_bytes()
    if len(raw) < 24:
        return []
    magic = raw[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None:
        raise ValueError(f"not a classic pcap file (magic {magic.hex()})")
    linktype = struct.unpack(endian + "I", raw[20:24])[0]
    if linktype != 1:
        raise ValueError(f"link type {linktype}, expected Ethernet (1)")
    frames, off = [], 24
    while off + 16 <= len(raw):
        incl = struct.unpack(endian + "I", raw[off + 8:off + 12])[0]
        frames.append(raw[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def tcp_flows(frames: Iterable[bytes]) -> dict[FlowKey, TcpFlow]:
    """Reassemble every TCP direction (IPv4 over Ethernet) from captured frames."""
    segments: dict[FlowKey, list[tuple[int, bytes]]] = defaultdict(list)
    isn: dict[FlowKey, int] = {}
    for frame in frames:
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6:  # not TCP
            continue
        src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
        # with offloads (TSO/GRO) the length field may be 0 for a super-packet
        ip_end = total if total else len(ip)
        tcp = ip[ihl:ip_end]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        flags = tcp[13]
        payload = tcp[(tcp[12] >> 4) * 4:]
        key = (str(src), sport, str(dst), dport)
        if flags & 0x02:  # SYN: the data starts at isn + 1
            isn[key] = (seq + 1) & 0xFFFFFFFF
        if payload:
            segments[key].append((seq, payload))
    flows = {}
    for key, segs in segments.items():
        base = isn.get(key, min(s for s, _ in segs))
        ordered = sorted(((s - base) & 0xFFFFFFFF, p) for s, p in segs)
        data, gaps = bytearray(), 0
        for start, payload in ordered:
            end = start + len(payload)
            if start > len(data):
                gaps += 1
                data += b"\0" * (start - len(data))
            if end > len(data):
                data += payload[len(data) - start:]
        flows[key] = TcpFlow(key, bytes(data), gaps, len(segs))
    return flows


@dataclass
class H2Direction:
    """The HTTP/2 frames one side of a connection sent."""

    data: dict[int, bytearray] = field(default_factory=lambda: defaultdict(bytearray))
    frames: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # by type
    header_bytes: int = 0
    trailing: int = 0  # bytes after the last whole frame (capture stopped mid-frame)

    def grpc_messages(self) -> list[tuple[int, bytes]]:
        """(compressed flag, message) of every whole gRPC message on every stream."""
        out = []
        for body in self.data.values():
            off = 0
            while off + 5 <= len(body):
                flag, size = body[off], struct.unpack("!I", body[off + 1:off + 5])[0]
                if off + 5 + size > len(body):
                    break
                out.append((flag, bytes(body[off + 5:off + 5 + size])))
                off += 5 + size
        return out


def http2_frames(data: bytes) -> H2Direction:
    """Split one direction of an HTTP/2 connection into frames; DATA payloads are
    joined per stream (padding removed), so a message split over frames is whole again."""
    out = H2Direction()
    off = len(H2_PREFACE) if data.startswith(H2_PREFACE) else 0
    while off + 9 <= len(data):
        length = int.from_bytes(data[off:off + 3], "big")
        ftype, flags = data[off + 3], data[off + 4]
        stream = int.from_bytes(data[off + 5:off + 9], "big") & 0x7FFFFFFF
        if off + 9 + length > len(data):
            break
        payload = data[off + 9:off + 9 + length]
        out.frames[ftype] += 1
        if ftype == 0:  # DATA
            if flags & 0x08:  # PADDED
                payload = payload[1:len(payload) - payload[0]]
            out.data[stream] += payload
        elif ftype in (1, 9):  # HEADERS, CONTINUATION
            out.header_bytes += length
        off += 9 + length
    out.trailing = len(data) - off
    return out
