from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Value(_message.Message):
    __slots__ = ("s", "i", "f", "b")
    S_FIELD_NUMBER: _ClassVar[int]
    I_FIELD_NUMBER: _ClassVar[int]
    F_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    s: str
    i: int
    f: float
    b: bool
    def __init__(self, s: _Optional[str] = ..., i: _Optional[int] = ..., f: _Optional[float] = ..., b: _Optional[bool] = ...) -> None: ...

class ModelIdentity(_message.Message):
    __slots__ = ("name", "dim", "fingerprint")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    fingerprint: str
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class PeerStatus(_message.Message):
    __slots__ = ("node_id", "address", "state", "events_behind", "found_by")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_BEHIND_FIELD_NUMBER: _ClassVar[int]
    FOUND_BY_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    state: str
    events_behind: int
    found_by: str
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[str] = ..., events_behind: _Optional[int] = ..., found_by: _Optional[str] = ...) -> None: ...
